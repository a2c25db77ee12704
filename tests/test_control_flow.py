"""cond and while_loop: eager, graph and traced; scopes; gradients (SPEC section 10)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf
from scopeflow._control_flow import ControlFlowGraph


def _f(x: Any) -> float:
    return float(np.asarray(x))


def _run_graph(build: Callable[[], Any], feeds: dict[str, Any] | None = None) -> Any:
    """Build in a fresh graph (placeholders named in ``feeds``), init variables, run."""
    g = sf.Graph()
    with g.as_default():
        out = build()
        init = sf.global_variables_initializer()
    with sf.Session(g) as sess:
        sess.run(init)
        feed = {g.get_tensor_by_name(f"{k}:0"): v for k, v in (feeds or {}).items()}
        return sess.run(out, feed)


MODES = ["eager", "graph", "function"]


def _in_mode(mode: str, fn: Callable[[], Any]) -> Any:
    if mode == "eager":
        return fn()
    if mode == "function":
        return sf.function(fn)()
    return _run_graph(fn)


# -- cond ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_cond_picks_the_branch(mode: str) -> None:
    def build() -> Any:
        x = sf.constant(3.0)
        a = sf.cond(x > 2.0, lambda: x * 2.0, lambda: x + 100.0)
        b = sf.cond(x > 5.0, lambda: x * 2.0, lambda: x + 100.0)
        return [a, b]

    assert [_f(v) for v in _in_mode(mode, build)] == [6.0, 103.0]


@pytest.mark.parametrize("mode", MODES)
def test_only_the_taken_branch_has_side_effects(mode: str) -> None:
    def build() -> Any:
        v = sf.Variable(0.0)
        w = sf.Variable(0.0)
        ran = [
            sf.cond(sf.constant(flag), lambda: v.assign_add(1.0), lambda: w.assign_add(1.0))
            for flag in (True, False, True)
        ]
        # A plain graph runs what is fetched: make the reads depend on the conds.
        with sf.control_dependencies(ran):
            return [v.read_value(), w.read_value()]

    assert [_f(x) for x in _in_mode(mode, build)] == [2.0, 1.0]


def test_cond_structures_and_nesting_in_a_graph() -> None:
    def build() -> Any:
        x = sf.placeholder(sf.float32, shape=(), name="x")
        return sf.cond(
            x > 0.0,
            lambda: {"v": x, "pair": (x * 2.0, sf.cond(x > 10.0, lambda: x, lambda: -x))},
            lambda: {"v": -x, "pair": (x * 3.0, x)},
        )

    out = _run_graph(build, {"x": 4.0})
    assert _f(out["v"]) == 4.0
    assert [_f(v) for v in out["pair"]] == [8.0, -4.0]
    out = _run_graph(build, {"x": -1.0})
    assert [_f(out["v"]), *(_f(v) for v in out["pair"])] == [1.0, -3.0, -1.0]


def test_cond_argument_errors() -> None:
    with pytest.raises(TypeError, match="pred must be a bool tensor, got dtype float32"):
        sf.cond(sf.constant(1.0), lambda: 1, lambda: 2)
    with pytest.raises(ValueError, match=r"pred must be a scalar, got shape \(2,\)"):
        sf.cond(sf.constant([True, False]), lambda: 1, lambda: 2)
    with pytest.raises(TypeError, match="takes two callables"):
        sf.cond(True, 1, 2)  # type: ignore[arg-type]
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.bool_, shape=())
        with pytest.raises(ValueError, match="must return the same structure"):
            sf.cond(p, lambda: (1.0, 2.0), lambda: 1.0)
        with pytest.raises(TypeError, match=r"different dtypes .*float32 from true_fn, int32"):
            sf.cond(p, lambda: 1.0, lambda: 1)


# -- while_loop ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_while_loop_values(mode: str) -> None:
    def build() -> Any:
        i, total = sf.while_loop(lambda i, t: i < 5, lambda i, t: (i + 1, t + i), [0, 0])
        capped = sf.while_loop(lambda i: i < 100, lambda i: i + 1, [0], maximum_iterations=7)
        return [i, total, capped[0]]

    assert [int(v) for v in _in_mode(mode, build)] == [5, 10, 7]


@pytest.mark.parametrize("mode", MODES)
def test_a_loop_that_assigns_n_times_increments_n_times(mode: str) -> None:
    def build() -> Any:
        v = sf.Variable(0.0)

        def body(i: Any) -> Any:
            v.assign_add(10.0)
            return i + 1

        (n,) = sf.while_loop(lambda i: i < 4, body, [0])
        with sf.control_dependencies([n]):
            return v.read_value() + 0.0

    assert _f(_in_mode(mode, build)) == 40.0


def test_loop_reads_outer_tensors_and_variables_and_nests() -> None:
    def build() -> Any:
        x = sf.placeholder(sf.float32, shape=(), name="x")
        scale = sf.Variable(2.0)

        def body(i: Any, acc: Any) -> Any:
            inner = sf.cond(i < 2, lambda: acc * scale, lambda: acc + x)
            (j,) = sf.while_loop(lambda j: j < i, lambda j: j + 1, [0])
            return i + 1, inner + sf.cast(j, sf.float32) * 0.0

        return sf.while_loop(lambda i, a: i < 4, body, [0, sf.constant(1.0)])[1]

    # acc: 1 -> 2 -> 4 -> 4+x -> 4+2x
    assert _f(_run_graph(build, {"x": 5.0})) == 14.0


def test_while_loop_argument_errors() -> None:
    with pytest.raises(TypeError, match="changed dtype from int32 to float32"):
        sf.while_loop(lambda i: i < 3, lambda i: sf.cast(i, sf.float32), [0])
    with pytest.raises(ValueError, match=r"changed shape from \(\) to \(2,\)"):
        sf.while_loop(lambda x: sf.reduce_sum(x) < 3.0, lambda x: sf.stack([x, x]), [1.0])
    with pytest.raises(ValueError, match="must return the structure of loop_vars"):
        sf.while_loop(lambda i, j: i < 3, lambda i, j: i + 1, [0, 0])
    with pytest.raises(TypeError, match="loop_vars must be a non-empty list or tuple"):
        sf.while_loop(lambda i: i < 3, lambda i: i + 1, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="maximum_iterations must be >= 0"):
        sf.while_loop(lambda i: i < 3, lambda i: i + 1, [0], maximum_iterations=-1)
    g = sf.Graph()
    with g.as_default():
        with pytest.raises(ValueError, match=r"changed shape from \(\) to \(2,\)"):
            sf.while_loop(lambda x: x < 3.0, lambda x: sf.stack([x, x]), [1.0])
        with pytest.raises(TypeError, match="cond must be a bool tensor"):
            sf.while_loop(lambda i: i, lambda i: i + 1, [0])


# -- control-flow scopes ---------------------------------------------------------------


def test_branch_and_body_ops_belong_to_their_scope() -> None:
    g = sf.Graph()
    seen: dict[str, sf.Graph] = {}
    with g.as_default():
        x = sf.constant(1.0, name="x")

        def body(i: Any) -> Any:
            seen["body"] = sf.get_default_graph()
            return i + 1

        sf.while_loop(lambda i: i < 3, body, [0])
        sf.cond(x > 0.0, lambda: seen.setdefault("true", sf.get_default_graph()) and x, lambda: x)
    assert isinstance(seen["body"], ControlFlowGraph)
    assert seen["body"].outer_graph is g
    assert "body" in repr(seen["body"])
    assert isinstance(seen["true"], ControlFlowGraph)
    # as in TensorFlow: neither runs a stateful op, so both are the stateless op types
    assert {op.type for op in g.get_operations()} == {
        "Const",
        "Greater",
        "StatelessWhile",
        "StatelessIf",
    }


@pytest.mark.parametrize("escape", ["init_scope", "control_dependencies(None)"])
def test_escaped_ops_run_once_unconditionally(escape: str) -> None:
    g = sf.Graph()
    with g.as_default():
        counter = sf.Variable(0.0, name="counter")
        made: list[Any] = []

        def body(i: Any) -> Any:
            with sf.init_scope() if escape == "init_scope" else sf.control_dependencies(None):
                assert not isinstance(sf.get_default_graph(), ControlFlowGraph)
                made.append(counter.assign_add(1.0))
            return i + 1

        (n,) = sf.while_loop(lambda i: i < 5, body, [0])
        never = sf.cond(sf.constant(False), lambda: body(sf.constant(0)) * 0, lambda: 0)
        init = sf.global_variables_initializer()
    assert [t.graph for t in made] == [g, g]
    with sf.Session(g) as sess:
        sess.run(init)
        sess.run([n, never, *made])
        assert _f(sess.run(counter)) == 2.0  # each op ran exactly once


def test_tensor_from_a_loop_body_used_outside_is_an_error() -> None:
    g = sf.Graph()
    leaked: list[Any] = []
    with g.as_default():

        def body(i: Any) -> Any:
            leaked.append(i * 2)
            return i + 1

        sf.while_loop(lambda i: i < 3, body, [0])
        with pytest.raises(
            ValueError, match=r"^Mul: Tensor '.*' was produced inside the while_loop body"
        ):
            sf.multiply(leaked[0], 3)


def test_threads_building_loops_in_one_graph_do_not_mix() -> None:
    g = sf.Graph()
    barrier = threading.Barrier(2, timeout=5)
    bodies: dict[int, sf.Graph] = {}
    errors: list[BaseException] = []

    def build(k: int) -> None:
        try:
            with g.as_default(), sf.name_scope(f"t{k}"):

                def body(i: Any) -> Any:
                    barrier.wait()  # both bodies are being built at the same time
                    bodies[k] = sf.get_default_graph()
                    out = i + k
                    barrier.wait()
                    return out

                sf.while_loop(lambda i: i < 10, body, [0])
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=build, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert bodies[1] is not bodies[2]
    for k in (1, 2):
        consts = [op for op in bodies[k].get_operations() if op.type == "Const"]
        assert [int(op.get_attr("value")) for op in consts] == [k]


@pytest.mark.anyio
async def test_tasks_building_control_flow_in_one_graph_keep_their_scopes() -> None:
    g = sf.Graph()
    results: dict[str, Any] = {}

    async def build(name: str, n: int) -> None:
        async with g.as_default(), sf.name_scope(name):
            await anyio.sleep(0)
            (out,) = sf.while_loop(lambda i: i < n, lambda i: i + 1, [0], name=f"loop_{name}")
            await anyio.sleep(0)
            picked = sf.cond(out > 2, lambda: out * 10, lambda: out)
            await anyio.sleep(0)
            assert sf.get_default_graph() is g
            results[name] = (out, picked)

    async with anyio.create_task_group() as tg:
        tg.start_soon(build, "a", 2)
        tg.start_soon(build, "b", 5)
    assert results["a"][0].op.name.startswith("a/")
    assert results["b"][0].op.name.startswith("b/")
    sess = sf.Session(g)
    assert [int(v) for v in sess.run(list(results["a"]))] == [2, 2]
    assert [int(v) for v in sess.run(list(results["b"]))] == [5, 50]


# -- gradients -------------------------------------------------------------------------


def _numeric(fn: Callable[[float], float], x: float, eps: float = 1e-6) -> float:
    return (fn(x + eps) - fn(x - eps)) / (2 * eps)


def _cond_fn(x: Any) -> Any:
    return sf.cond(x > 1.0, lambda: x * x * 3.0, lambda: sf.tanh(x))


def _loop_fn(x: Any) -> Any:
    # y = x**4 computed as four multiplications
    return sf.while_loop(
        lambda i, y: i < 4, lambda i, y: (i + 1, y * x), [0, sf.constant(1.0, sf.float64)]
    )[1]


@pytest.mark.parametrize("fn", [_cond_fn, _loop_fn], ids=["cond", "while_loop"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("x0", [0.5, 2.0])
def test_gradients_match_finite_differences(fn: Callable[[Any], Any], mode: str, x0: float) -> None:
    def value(x: float) -> float:
        return _f(fn(sf.constant(x, sf.float64)))

    expected = _numeric(value, x0)
    if mode == "eager":
        x = sf.constant(x0, sf.float64)
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        got = _f(tape.gradient(y, x))
    elif mode == "function":

        @sf.function
        def grad(x: Any) -> Any:
            with sf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x)
            return tape.gradient(y, x)

        got = _f(grad(sf.constant(x0, sf.float64)))
    else:
        g = sf.Graph()
        with g.as_default():
            xp = sf.placeholder(sf.float64, shape=())
            (dx,) = sf.gradients(fn(xp), [xp])
        got = _f(sf.Session(g).run(dx, {xp: x0}))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_gradient_with_respect_to_variables_through_control_flow() -> None:
    w = sf.Variable(3.0, dtype=sf.float64)

    @sf.function
    def loss(x: Any) -> Any:
        y = sf.cond(x > 0.0, lambda: w * x, lambda: w * w)
        return sf.while_loop(lambda i, a: i < 2, lambda i, a: (i + 1, a * w), [0, y])[1]

    x = sf.constant(2.0, sf.float64)
    with sf.GradientTape() as tape:
        out = loss(x)
    # out = w * x * w * w = x * w**3 -> d/dw = 3 * x * w**2 = 54
    assert _f(out) == 54.0
    np.testing.assert_allclose(_f(tape.gradient(out, w)), 54.0)


@pytest.mark.parametrize("where", ["cond", "while_loop"])
def test_an_exception_while_building_a_branch_or_body_leaves_every_scope(where: str) -> None:
    def boom(*_: Any) -> Any:
        raise KeyError("broken branch")

    g = sf.Graph()
    with g.as_default(), sf.name_scope("outer"):
        before = (sf.context_switches(), sf.get_default_graph(), sf.get_name_scope())
        build: Callable[[], Any] = (
            (lambda: sf.cond(sf.constant(True), lambda: 1.0, boom))
            if where == "cond"
            else (lambda: sf.while_loop(lambda i: i < 3, boom, [0]))
        )
        with pytest.raises(KeyError, match="broken branch"):
            build()
        assert (sf.context_switches(), sf.get_default_graph(), sf.get_name_scope()) == before
        assert not sf.executing_eagerly()
