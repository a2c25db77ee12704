"""Review of run-time axes and run-time ``while_loop`` bounds: the cases an adversarial
reading found broken, each pinned after its fix.

Gradients of mirror pads of scalars, namedtuple loop variables, variables as loop bounds,
and saved models whose new ops (``Dynamic*``) or their static twins carry attributes the
kernels cannot use: loading refuses them, naming the file and the op.
"""

from __future__ import annotations

import collections
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow import _saved_model_format as fmt
from scopeflow.errors import InvalidArgumentError

# -- pad ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["CONSTANT", "REFLECT", "SYMMETRIC"])
def test_the_gradient_of_a_padded_scalar_is_a_scalar(mode: str) -> None:
    x = sf.constant(3.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = sf.pad(x, np.zeros((0, 2), np.int32), mode) * 2.0
    grad = tape.gradient(y, x)
    assert grad.shape == ()
    assert float(grad) == 2.0
    g = sf.Graph()
    with g.as_default():
        xp = sf.placeholder(sf.float64, ())
        p = sf.placeholder(sf.int32, (None, 2))
        (dx,) = sf.gradients(sf.pad(xp, p, mode) * 2.0, [xp])
    assert dx.shape == ()
    with sf.Session(g) as session:
        got = session.run(dx, {xp: 3.0, p: np.zeros((0, 2), np.int32)})
    assert np.shape(got) == ()
    assert got == 2.0


@pytest.mark.parametrize("run_time_paddings", [False, True])
def test_a_fill_value_fed_as_a_vector_is_refused(run_time_paddings: bool) -> None:
    # NumPy would read [1, 2] as (before, after) fill values; TensorFlow wants a scalar.
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, (2,))
        c = sf.placeholder(sf.float32, None)
        p = sf.placeholder(sf.int32, (1, 2)) if run_time_paddings else [[1, 1]]
        y = sf.pad(x, p, constant_values=c)
    feed = {x: [5.0, 6.0], c: [1.0, 2.0]}
    if run_time_paddings:
        feed[p] = [[1, 1]]
    with sf.Session(g) as session:
        with pytest.raises(InvalidArgumentError, match="constant_values must be a scalar"):
            session.run(y, feed)
        feed[c] = 1.0
        np.testing.assert_array_equal(session.run(y, feed), [1.0, 5.0, 6.0, 1.0])


def test_paddings_listing_run_time_tensors_are_packed() -> None:
    # As tf.pad does: the nested list becomes one int tensor read when the graph runs.
    x = np.arange(6.0).reshape(2, 3)
    g = sf.Graph()
    with g.as_default():
        xp = sf.placeholder(sf.float64, (2, 3))
        n = sf.placeholder(sf.int32, ())
        y = sf.pad(xp, [[0, 0], [n, 1]], "SYMMETRIC")
        folded = sf.pad(xp, [[0, 0], [sf.constant(1), 1]])
        (dx,) = sf.gradients(sf.reduce_sum(y * y), [xp])
    assert y.op.type == "DynamicPad"
    assert folded.op.type == "Pad"
    assert folded.shape == (2, 5)
    with sf.Session(g) as session:
        got, grad = session.run([y, dx], {xp: x, n: 2})
    np.testing.assert_array_equal(got, np.pad(x, [[0, 0], [2, 1]], "symmetric"))
    assert grad.shape == (2, 3)


def test_a_python_int_that_does_not_fit_the_packed_dtype_is_a_value_error() -> None:
    with sf.Graph().as_default():
        a = sf.placeholder(sf.uint8, ())
        x = sf.placeholder(sf.float32, (2, 3))
        with pytest.raises(ValueError, match="-1 does not fit the uint8"):
            sf.reduce_sum(x, [a, -1])
        with pytest.raises(ValueError, match="-1 does not fit the uint8"):
            sf.reshape(x, [a, -1])


# -- while_loop ------------------------------------------------------------------------------

Pair = collections.namedtuple("Pair", "count value")


def _pair_loop(bound: Any) -> Any:
    return sf.while_loop(
        lambda c, v: v < 100.0,
        lambda c, v: Pair(c + 1, v * 2.0),
        Pair(sf.constant(0), sf.constant(1.0)),
        maximum_iterations=bound,
    )


def test_namedtuple_loop_vars_come_back_as_that_namedtuple() -> None:
    out = _pair_loop(3)  # eagerly
    assert type(out) is Pair
    assert (int(out.count), float(out.value)) == (3, 8.0)
    g = sf.Graph()
    with g.as_default():
        n = sf.placeholder(sf.int32, ())
        static = _pair_loop(4)
        run_time = _pair_loop(n)
        stopped = sf.while_loop(
            lambda c, v: c < 2, lambda c, v: Pair(c + 1, v), Pair(0, 1.0), back_prop=False
        )
    assert type(static) is Pair
    assert type(run_time) is Pair
    assert type(stopped) is Pair
    with sf.Session(g) as session:
        got = session.run([static.value, run_time.count, run_time.value, stopped.count], {n: 5})
    assert [float(v) for v in got] == [16.0, 5.0, 32.0, 2.0]


def test_a_variable_bound_is_read_when_the_loop_runs() -> None:
    bound = sf.Variable(2)

    @sf.function
    def f(x: Any) -> Any:
        return sf.while_loop(lambda v: v < 100, lambda v: v + 1, [x], bound)[0]

    assert int(f(sf.constant(0))) == 2
    bound.assign(5)
    assert int(f(sf.constant(0))) == 5  # not the value seen when tracing
    assert f.trace_count == 1
    eager = sf.while_loop(lambda v: v < 100, lambda v: v + 1, [sf.constant(0)], bound)
    assert int(eager[0]) == 5
    g = sf.Graph()
    with g.as_default():
        limit = sf.Variable(3)
        (out,) = sf.while_loop(lambda v: v < 100, lambda v: v + 1, [0], limit)
        init = sf.global_variables_initializer()
    with sf.Session(g) as session:
        session.run(init)
        assert int(session.run(out)) == 3


# -- saved models with hostile attributes --------------------------------------------------

_SPEC = [
    sf.TensorSpec(None, sf.float32, name="x"),
    sf.TensorSpec((), sf.int32, name="axis"),
    sf.TensorSpec((None, 2), sf.int32, name="p"),
]


class _Model(sf.Module):
    @sf.function(input_signature=_SPEC)
    def __call__(self, x: Any, axis: Any, p: Any) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = sf.reduce_sum(sf.gather(x, [[1, 0]], axis=axis)) + sf.reduce_sum(
                sf.reduce_prod(x, axis)
            )
        return {
            "grad": tape.gradient(y, x),
            "dsum": sf.reduce_sum(x, axis, keepdims=True),
            "dconcat": sf.concat([x, x], axis),
            "dpad": sf.pad(x, p, constant_values=1.5),
            "dpad_fill": sf.pad(x, p, constant_values=sf.reduce_sum(x)),
            "sum": sf.reduce_max(x, [1], keepdims=True),
            "concat": sf.concat([x, x], 1),
            "argmax": sf.argmax(x, 1),
            "pad": sf.pad(x, [[1, 0], [0, 1], [0, 0]], constant_values=2.5),
        }


@pytest.fixture(scope="module")
def saved_doc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("hostile") / "model"
    sf.saved_model.save(_Model(), str(path))
    return path, json.loads((path / fmt.DOCUMENT).read_text())


def _named(doc: dict[str, Any], name: str) -> dict[str, Any]:
    for fn in doc["functions"].values():
        for op in fn["ops"]:
            if op["name"] == name:
                return op  # type: ignore[no-any-return]
    raise AssertionError(name)


def _attr(name: str, key: str, value: Any) -> Any:
    return lambda doc: _named(doc, name)["attrs"].__setitem__(key, value)


def _inputs(name: str, edit: Any) -> Any:
    return lambda doc: _named(doc, name).__setitem__("inputs", edit(_named(doc, name)["inputs"]))


_ATTACKS = {
    "dsum keepdims str": (_attr("DynamicSum", "keepdims", "yes"), "'keepdims' must be a bool"),
    "dsum keepdims float": (_attr("DynamicSum", "keepdims", 2.5), "'keepdims' must be a bool"),
    "dsum keepdims int": (_attr("DynamicSum", "keepdims", 1), "'keepdims' must be a bool"),
    "max keepdims list": (_attr("Max", "keepdims", [1]), "'keepdims' must be a bool"),
    "max axis str": (_attr("Max", "axis", {"tuple": ["a"]}), "'axis' must be null or a tuple"),
    "max axis huge": (_attr("Max", "axis", {"tuple": [2**40]}), "'axis' must be null or a tup"),
    "concat axis null": (_attr("Concat", "axis", None), "'axis' must be an integer in"),
    "concat axis str": (_attr("Concat", "axis", "a"), "'axis' must be an integer in"),
    "argmax axis null": (_attr("ArgMax", "axis", None), "'axis' must be an integer in"),
    "argmax axis huge": (_attr("ArgMax", "axis", 2**40), "'axis' must be an integer in"),
    "dconcat N float": (_attr("DynamicConcat", "N", 2.0), "attribute N is 2.0 but"),
    "dconcat no values": (
        lambda d: (
            _inputs("DynamicConcat", lambda i: i[-1:])(d),
            _attr("DynamicConcat", "N", 0)(d),
        ),
        "concatenates no inputs",
    ),
    "dpad fill str": (
        _attr("DynamicPad", "constant_values", "x"),
        "'constant_values' must be null or a numeric scalar array",
    ),
    "dpad fill pair": (
        _attr("DynamicPad", "constant_values", [1, 2]),
        "'constant_values' must be null or a numeric scalar array",
    ),
    "pad fill pair": (
        _attr("Pad", "constant_values", {"tuple": [1, 2]}),
        "'constant_values' must be null or a numeric scalar array",
    ),
    "pad fill bool": (
        _attr("Pad", "constant_values", True),
        "'constant_values' must be null or a numeric scalar array",
    ),
    "pad two fills": (
        _inputs("Pad", lambda i: [*i, "x:0", "x:0"]),
        "takes at most one fill value input, got 2",
    ),
    "gather grad batch_dims": (
        _attr("DynamicGatherGrad", "batch_dims", "x"),
        "batch_dims must be an int >= 0, got 'x'",
    ),
    "gather grad float indices": (
        _inputs("DynamicGatherGrad", lambda i: [i[0], i[1], "x:0", i[3]]),
        "indices must be integers",
    ),
    "gather grad arity": (_inputs("DynamicGatherGrad", lambda i: i[:3]), "not enough values"),
    "prod others arity": (
        _inputs("DynamicProdOthers", lambda i: [i[0], *i]),
        "the op takes 2 inputs, got 3",
    ),
    "dpad two fills": (
        _inputs("DynamicPad_1", lambda i: [*i, i[-1]]),
        "takes at most one fill value input, got 2",
    ),
}


@pytest.mark.parametrize("attack", list(_ATTACKS))
def test_hostile_attributes_of_axis_ops_are_refused_on_load(
    attack: str, saved_doc: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    source, doc = saved_doc
    path = tmp_path / "model"
    path.mkdir()
    for name in (fmt.VARIABLES_FILE, fmt.CONSTANTS_FILE):
        if (source / name).exists():
            (path / name).write_bytes((source / name).read_bytes())
    doc = json.loads(json.dumps(doc))
    edit, pattern = _ATTACKS[attack]
    edit(doc)
    doc["integrity"]["document"] = fmt.document_digest(doc)
    (path / fmt.DOCUMENT).write_bytes(fmt.canonical(doc))
    with pytest.raises(ValueError, match=pattern) as info:
        sf.saved_model.load(str(path))
    assert str(path / fmt.DOCUMENT) in str(info.value)


def test_the_unedited_model_loads_and_runs(saved_doc: tuple[Path, dict[str, Any]]) -> None:
    path, _ = saved_doc
    loaded = sf.saved_model.load(str(path))
    x = np.arange(1, 25, dtype=np.float32).reshape(2, 3, 4)
    pads = np.array([[1, 0], [0, 1], [1, 1]], np.int32)
    got = loaded(x, np.int32(1), pads)
    np.testing.assert_array_equal(got["dsum"].numpy(), x.sum(1, keepdims=True))
    want_grad = np.prod(x, 1, keepdims=True) / x
    want_grad[:, :2] += 1.0
    np.testing.assert_allclose(got["grad"].numpy(), want_grad, rtol=1e-6)
    np.testing.assert_array_equal(got["dpad"].numpy(), np.pad(x, pads, constant_values=1.5))
    want = np.pad(x, [[1, 0], [0, 1], [0, 0]], constant_values=2.5)
    np.testing.assert_array_equal(got["pad"].numpy(), want)


@pytest.mark.parametrize(
    ("invariants", "error", "pattern"),
    [
        ([(), ()], ValueError, r"shape_invariants is \[\(\), \(\)\], which does not match"),
        ({"a": ()}, ValueError, r"shape_invariants is \{'a': \(\)\}, which does not match"),
        ((3,), TypeError, r"invariant of loop variable 0 \('v:0'\) must be a shape"),
    ],
    ids=["too many", "dict", "not a shape"],
)
def test_bad_shape_invariants_are_named_as_the_caller_wrote_them(
    invariants: Any, error: type[Exception], pattern: str
) -> None:
    # The counter of a run-time bound is an extra loop variable: messages must not show it.
    for bound in (3, "run time"):
        with sf.Graph().as_default():
            n = sf.placeholder(sf.int32, ()) if bound == "run time" else bound
            v = sf.constant(1.0, name="v")
            with pytest.raises(error, match=pattern):
                sf.while_loop(
                    lambda v: v < 9.0, lambda v: v + 1.0, [v], n, shape_invariants=invariants
                )


def test_a_loop_variable_changing_shape_is_numbered_as_in_loop_vars() -> None:
    with sf.Graph().as_default():
        n = sf.placeholder(sf.int32, ())
        with pytest.raises(ValueError, match=r"loop variable 1 \('grow:0'\) changed shape"):
            sf.while_loop(
                lambda a, b: a < 3,
                lambda a, b: (a + 1, sf.concat([b, b], 0)),
                [0, sf.constant([1.0], name="grow")],
                maximum_iterations=n,
            )


# -- concurrency -------------------------------------------------------------------------


def test_threads_run_one_graph_and_one_trace_with_different_axes() -> None:
    x_value = np.random.default_rng(0).random((3, 4, 5))
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float64, (3, 4, 5))
        a = sf.placeholder(sf.int32, ())
        total = sf.reduce_sum(x, a)
        (dx,) = sf.gradients(sf.reduce_sum(sf.concat([x, x], a) ** 2), [x])
    session = sf.Session(g)

    @sf.function
    def biggest(t: Any, axis: Any) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(t)
            y = sf.reduce_max(t * t, axis)
        return y, tape.gradient(y, t)

    x_eager = sf.constant(x_value)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(30):
                axis = (k + i) % 3
                got, grad = session.run([total, dx], {x: x_value, a: axis})
                np.testing.assert_allclose(got, x_value.sum(axis))
                np.testing.assert_allclose(grad, 4.0 * x_value)
                y, _ = biggest(x_eager, sf.constant(axis))
                np.testing.assert_allclose(y.numpy(), (x_value * x_value).max(axis))
        except BaseException as err:  # reported below, with the thread's axis
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    session.close()
    assert not errors, errors
    assert biggest.trace_count == 1
