"""Regression tests from a review of the robustness fixes (issue 8): ordering of stateful
ops in function graphs, control dependencies on variables, re-entered tapes, what
``copy_scopes`` carries, and what cached traces keep alive."""

from __future__ import annotations

import contextvars
import gc
import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf
from threads_helpers import run_threads

# -- stateful ops of a function graph: one chain, only ops that exist ------------------


def test_a_refused_stateful_op_does_not_join_a_finished_function() -> None:
    v = sf.Variable(1.0)

    @sf.function
    def f(x: Any) -> Any:
        v.assign_add(x)
        return v.read_value()

    cf = f.get_concrete_function(sf.constant(1.0))
    before = list(cf.graph.control_outputs)
    with (
        pytest.raises(sf.errors.FinalizedGraphError, match=r"^Cannot add an operation to"),
        cf.graph.as_default(),
    ):
        v.assign_add(cf.graph.inputs[0])  # a leaked graph: refused, and must leave no trace
    assert cf.graph.control_outputs == before
    assert all(op in cf.graph.get_operations() for op in cf.graph.control_outputs)
    assert float(f(sf.constant(1.0))) == 2.0
    assert float(f(sf.constant(1.0))) == 3.0


def test_a_stateful_op_with_a_taken_name_does_not_join_the_chain() -> None:
    v = sf.Variable(0.0)
    seen: list[int] = []

    @sf.function
    def f(x: Any) -> Any:
        v.assign_add(x, name="bump/")
        with pytest.raises(ValueError, match=r"^An operation named 'bump' already exists"):
            v.assign_add(x * 10.0, name="bump/")
        seen.append(len(sf.get_default_graph().control_outputs))  # type: ignore[attr-defined]
        return v.read_value()

    assert float(f(sf.constant(1.0))) == 1.0
    assert seen == [1]


def test_threads_adding_stateful_ops_to_one_function_graph_build_one_chain(
    fast_switching: None,
) -> None:
    v = sf.Variable(0.0)
    n_threads, per_thread = 8, 25

    @sf.function
    def f(x: Any) -> Any:
        barrier = threading.Barrier(n_threads)
        ctx = contextvars.copy_context()

        def build(_: int) -> None:
            def work() -> None:
                barrier.wait()
                for _ in range(per_thread):
                    v.assign_add(x)

            ctx.copy().run(work)

        run_threads(n_threads, build)
        return v.read_value()

    fg = f.get_concrete_function(sf.constant(1.0)).graph
    chain = fg.control_outputs
    assert len(chain) == n_threads * per_thread + 1
    # Each stateful op runs after the one before it: one chain, never a fork.
    for before, op in itertools.pairwise(chain):
        assert before in op.control_inputs or any(t.op is before for t in op.inputs)
    assert float(f(sf.constant(1.0))) == n_threads * per_thread


# -- control_dependencies on a variable ----------------------------------------------


def test_control_dependencies_on_a_graph_variable_depend_on_its_read() -> None:
    g = sf.Graph()
    with g.as_default():
        v = sf.Variable(1.0, name="v")
        with sf.control_dependencies([v]):
            c = sf.constant(2.0, name="c")
        assert [op.name for op in c.op.control_inputs] == ["v/Read/ReadVariableOp"]
        with sf.Session() as sess:
            sess.run(sf.global_variables_initializer())
            assert float(sess.run(c)) == 2.0


def test_control_dependencies_on_a_graph_variable_inside_a_function_are_captured() -> None:
    g = sf.Graph()
    with g.as_default():
        v = sf.Variable(1.0, name="v")

        @sf.function
        def f(x: Any) -> Any:
            with sf.control_dependencies([v]):
                return sf.identity(x)

        out = f(sf.constant(3.0))
        assert v._snapshot.op in out.op.control_inputs  # type: ignore[union-attr]
        with sf.Session() as sess:
            sess.run(sf.global_variables_initializer())
            assert float(sess.run(out)) == 3.0


def test_control_dependencies_on_an_eager_variable() -> None:
    v = sf.Variable(1.0)

    @sf.function
    def f(x: Any) -> Any:
        with sf.control_dependencies([v]):  # its value exists already: nothing to wait for
            return x + 1.0

    assert float(f(sf.constant(1.0))) == 2.0
    with sf.control_dependencies([v]):
        assert float(sf.constant(1.0)) == 1.0
    with sf.Graph().as_default() as g:
        frame_before = sf.get_default_graph()
        with (
            pytest.raises(TypeError, match=r"^control_dependencies\(\) takes operations"),
            sf.control_dependencies([v]),
        ):
            pass
        assert sf.get_default_graph() is frame_before is g


# -- a tape entered while it records ------------------------------------------------


def test_entering_a_recording_tape_again_raises_value_error_as_tensorflow() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        with pytest.raises(ValueError, match=r"^This GradientTape is still recording"):
            tape.__enter__()
        with pytest.raises(RuntimeError, match=r"Tape is still recording"):
            tape.__enter__()
        y = x * x
    assert float(tape.gradient(y, x)) == 4.0


# -- copy_scopes carries the whole context ------------------------------------------


def _in_plain_thread(fn: Callable[[], Any]) -> Any:
    out: list[Any] = []
    run_threads(1, lambda _: out.append(fn()))
    return out[0]


def test_run_in_scopes_carries_the_random_seed_like_scoped_executor() -> None:
    sf.random.set_seed(1234)
    snapshot = sf.copy_scopes()
    there = _in_plain_thread(
        lambda: sf.run_in_scopes(snapshot, lambda: sf.random.normal([4]).numpy())
    )
    again = sf.run_in_scopes(snapshot, lambda: sf.random.normal([4]).numpy())
    here = sf.random.normal([4]).numpy()
    # The snapshot is the caller's state at copy time: each run draws what the caller
    # drew next, and no run changes the caller or the snapshot.
    np.testing.assert_array_equal(there, here)
    np.testing.assert_array_equal(again, here)


def test_run_in_scopes_inside_a_trace_still_checks_variable_creation() -> None:
    created: list[Any] = []

    @sf.function
    def f(x: Any) -> Any:
        snapshot = sf.copy_scopes()
        created.append(_in_plain_thread(lambda: sf.run_in_scopes(snapshot, sf.Variable, 2.0)))
        return x * created[-1]

    assert float(f(sf.constant(1.0))) == 2.0
    with pytest.raises(ValueError, match=r"^A variable was created while tracing"):
        f(sf.constant([1.0, 2.0]))  # a second trace may not create variables
    assert len(created) == 1


# -- what cached traces keep alive --------------------------------------------------


def test_eager_traces_do_not_keep_the_graph_that_was_default_alive() -> None:
    @sf.function
    def f(x: Any) -> Any:
        return x * 2.0

    refs = []
    for i in range(3):
        g = sf.Graph()
        with g.as_default(), sf.eager_mode():  # eager code inside a per-request graph
            assert f(sf.constant([1.0] * (i + 1))).numpy().tolist() == [2.0] * (i + 1)
        refs.append(weakref.ref(g))
        del g
    old_global = weakref.ref(sf.get_default_graph())
    f(sf.constant([1.0] * 10))
    sf.reset_default_graph()
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
    assert old_global() is None
    assert f(sf.constant([1.0] * 10)).numpy().tolist() == [2.0] * 10  # the trace still runs


def test_a_function_graph_keeps_its_outer_graph_while_tracing_and_reports_it() -> None:
    g = sf.Graph()
    seen: list[Any] = []

    @sf.function
    def f(x: Any) -> Any:
        gc.collect()
        seen.append(sf.get_default_graph().outer_graph)  # type: ignore[attr-defined]
        return x + 1.0

    with g.as_default():
        out = f(sf.constant(1.0))
        cf = f.get_concrete_function(sf.constant(1.0))
    assert seen == [g]
    assert cf.graph.outer_graph is g
    assert out.graph is g


# -- a session closed by its last exit while another thread enters -------------------


def test_a_session_closing_on_its_last_exit_never_lets_another_thread_in() -> None:
    g = sf.Graph()
    with g.as_default():
        c = sf.constant(1.0)
    sess = sf.Session(g)
    closing = threading.Event()

    def slow(original: Callable[[], None]) -> Callable[[], None]:
        def close() -> None:
            closing.set()
            closing.wait()
            threading.Event().wait(0.2)  # room for the other thread to enter meanwhile
            original()

        return close

    for name in ("close", "_close_locked"):
        if hasattr(sess, name):
            setattr(sess, name, slow(getattr(sess, name)))
    outcome: list[str] = []

    def enter_later(_: int) -> None:
        closing.wait(5)
        try:
            with sess:
                outcome.append(f"ran {float(sess.run(c))}")
        except RuntimeError as err:
            outcome.append(str(err))

    worker = threading.Thread(target=enter_later, args=(0,))
    worker.start()
    with sess:
        pass  # the last exit closes the session
    worker.join(5)
    assert outcome == ["Attempted to enter a closed Session"]


# -- a task spawned inside a tape does not keep the tape alive ------------------------


@pytest.mark.anyio
async def test_a_task_spawned_in_a_tape_block_does_not_keep_the_tape_alive() -> None:
    x = sf.constant(2.0)
    release = anyio.Event()
    recorded: list[Any] = []

    async def child() -> None:
        await release.wait()
        recorded.append(x * x)  # after the block: recorded by no tape

    async with anyio.create_task_group() as tg:
        tape = sf.GradientTape(persistent=True)
        with tape:
            tape.watch(x)
            y = x * x * x
            tg.start_soon(child)
            await anyio.sleep(0)
        assert float(tape.gradient(y, x)) == 12.0
        ref = weakref.ref(tape)
        del tape
        gc.collect()
        assert ref() is None  # the child still runs, and holds no reference to the tape
        release.set()
    assert float(recorded[0]) == 4.0


def test_a_misnested_tape_is_still_reported_by_name() -> None:
    tape = sf.GradientTape()
    scope = sf.name_scope("outer")
    scope.__enter__()
    tape.__enter__()
    with pytest.raises(
        sf.ScopeNestingError,
        match=r"^name_scope\(.outer.\) was left while <sf\.GradientTape persistent=False",
    ):
        scope.__exit__(None, None, None)
    assert sf.get_name_scope() == ""
    with pytest.raises(sf.ScopeNestingError, match=r"is not open in this context"):
        tape.__exit__(None, None, None)


# -- lists of tensors are packed (differentiably), as in TensorFlow -------------------


def test_a_list_of_eager_tensors_keeps_its_gradient() -> None:
    x = sf.constant(2.0)
    v = sf.Variable(3.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        loss = sf.reduce_sum([x * 2.0, x * 3.0, 1.0])  # a list, not a tensor
        reg = sf.reduce_sum([sf.square(v), v])  # the L2 idiom over a list of variables
        packed = sf.convert_to_tensor([[x, x], [x, 2.0]])
        hinted = sf.convert_to_tensor([x, x], dtype_hint=sf.float64)  # tensors keep theirs
    assert float(loss) == 11.0
    assert float(tape.gradient(loss, x)) == 5.0
    assert float(tape.gradient(reg, v)) == 7.0
    assert packed.shape == (2, 2)
    assert float(tape.gradient(packed, x)) == 3.0
    assert hinted.dtype == np.float32
    assert float(tape.gradient(hinted, x)) == 2.0


def test_a_list_of_symbolic_tensors_is_packed_in_functions_and_graphs() -> None:
    @sf.function
    def f(a: Any) -> Any:
        return sf.reduce_sum([a * 2.0, a * 3.0])

    x = sf.constant(2.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    assert float(y) == 10.0
    assert float(tape.gradient(y, x)) == 5.0
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, [])
        packed = sf.convert_to_tensor([p, 1.0])
        (dp,) = sf.gradients(sf.reduce_sum(packed * packed), [p])
        with sf.Session() as sess:
            assert sess.run(packed, {p: 3.0}).tolist() == [3.0, 1.0]
            assert float(sess.run(dp, {p: 3.0})) == 6.0


def test_packing_tensors_of_different_shapes_or_dtypes_is_a_clear_error() -> None:
    x = sf.constant([1.0, 2.0])
    with pytest.raises(ValueError, match=r"^Sum: Stack: "):
        sf.reduce_sum([x, sf.constant(1.0)])
    with pytest.raises(TypeError, match=r"^convert_to_tensor\(\): the packed tensors have"):
        sf.convert_to_tensor([x, x], dtype=sf.int32)


# -- optimizers and checkpoints copy and pickle with the model that holds them --------


class _Model(sf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = sf.Variable([1.0, 2.0])
        self.opt = sf.optimizers.Adam(0.1)

    def step(self) -> None:
        with sf.GradientTape() as tape:
            loss = sf.reduce_sum(self.w * self.w)
        self.opt.apply_gradients([(tape.gradient(loss, self.w), self.w)])


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_model_with_its_optimizer_copies_by_value(how: str) -> None:
    import copy
    import pickle

    model = _Model()
    model.step()
    twin = copy.deepcopy(model) if how == "deepcopy" else pickle.loads(pickle.dumps(model))
    assert twin.opt.get_slot(twin.w, "m") is not model.opt.get_slot(model.w, "m")
    np.testing.assert_allclose(twin.opt.get_slot(twin.w, "m").numpy(), [0.2, 0.4], rtol=1e-6)
    twin.step()  # continues from the copied slots, and leaves the original alone
    model.step()
    np.testing.assert_allclose(twin.w.numpy(), model.w.numpy())
    assert int(twin.opt.iterations.numpy()) == int(model.opt.iterations.numpy()) == 2
    assert len(twin.opt.variables) == 3
    ckpt = copy.deepcopy(sf.train.Checkpoint(model=twin))
    assert int(ckpt.save_counter.numpy()) == 0


# -- a function calling itself through init_scope is refused, not a deadlock ----------


def test_a_function_calling_itself_through_init_scope_raises_instead_of_hanging() -> None:
    @sf.function
    def f(x: Any) -> Any:
        with sf.init_scope():  # eager again: the same cache and key as the outer call
            f(sf.constant(1.0))
        return x

    outcome: list[BaseException] = []

    def call() -> None:
        try:
            f(sf.constant(2.0))
        except BaseException as err:  # checked below
            outcome.append(err)

    worker = threading.Thread(target=call, daemon=True)  # a hang must not block the run
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the call waited for its own trace"
    assert len(outcome) == 1
    assert isinstance(outcome[0], RuntimeError)
    assert str(outcome[0]).startswith("f called itself while being traced")


@pytest.mark.anyio
async def test_an_async_function_awaiting_itself_through_init_scope_raises() -> None:
    @sf.function
    async def f(x: Any) -> Any:
        await anyio.sleep(0)
        with sf.init_scope():
            await f(sf.constant(1.0))
        return x

    with anyio.fail_after(10), pytest.raises(RuntimeError, match=r"^f called itself while"):
        await f(sf.constant(2.0))


def test_a_graph_name_must_be_a_string() -> None:
    with pytest.raises(TypeError, match=r"^A graph's name must be a string or None, got 3$"):
        sf.Graph(3)  # type: ignore[arg-type]
    assert repr(sf.Graph("g")) == "<sf.Graph 'g'>"


# -- Python scalar operands: the direct conversion keeps the checked rules -------------


def test_scalar_operands_convert_exactly_or_raise() -> None:
    f32 = sf.constant([1.0])
    assert (f32 + 1.5).numpy().tolist() == [2.5]
    assert (f32 * 2).numpy().dtype == np.float32
    assert (f32 * 2**24).numpy().tolist() == [2.0**24]
    with pytest.raises(TypeError, match=r"without changing its value"):
        f32 + (2**24 + 1)  # not representable in float32
    assert np.isinf((f32 * 1e300).numpy()).all()  # float overflow gives inf, quietly
    i32 = sf.constant([1])
    assert (i32 + 2).numpy().tolist() == [3]
    with pytest.raises(TypeError, match=r"without changing its value"):
        i32 + 2**40
    with pytest.raises(TypeError, match=r"without changing its value"):
        i32 + 1.5
    u8 = sf.constant(np.array([1], np.uint8))
    with pytest.raises(TypeError, match=r"without changing its value"):
        u8 + (-1)
    assert (sf.constant(np.array([1.0], np.float16)) + 65504.0).numpy().tolist() == [65504.0]


def test_scalar_operands_on_both_sides_keep_values_dtypes_and_gradients() -> None:
    x = sf.constant([1.0, 2.0])
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = 3.0 - (x * 2.0 + 1.0)  # 2 - 2x
        z = 2 * y - 1  # 3 - 4x
    assert z.numpy().tolist() == [-1.0, -5.0]
    assert z.dtype == np.float32
    assert tape.gradient(z, x).numpy().tolist() == [-4.0, -4.0]
    i = sf.constant(np.array([100], np.int8))
    assert (i + 100).numpy().dtype == np.int8  # wraps like the kernel, as TensorFlow
    assert (5 - sf.constant([1, 2])).numpy().tolist() == [4, 3]
    with pytest.raises(TypeError, match=r"without changing its value"):
        sf.constant([1, 2]) * 0.5
