"""Adversarial checks of the performance paths: the shared root frame, the name-scope memo,
warm calls, bound kernels and lazy attributes, from tasks (asyncio and trio) and threads."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf
from scopeflow import _context

SRC = str(Path(__file__).resolve().parent.parent / "src")


def _state() -> tuple[str, bool, str]:
    return sf.get_name_scope(), sf.executing_eagerly(), sf.get_default_graph().name


# -- name scopes at the root, from tasks and threads ----------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("graph_mode", [False, True], ids=["eager", "graph"])
async def test_tasks_at_the_root_never_see_each_others_name_scopes(graph_mode: bool) -> None:
    if graph_mode:
        sf.disable_eager_execution()
    seen: dict[str, list[Any]] = {}

    async def task(who: str) -> None:
        log = seen.setdefault(who, [])
        for _ in range(3):
            with sf.name_scope("shared") as s:
                log.append((s, sf.get_name_scope()))
                await anyio.sleep(0)  # the other task enters the same name here
                log.append((s, sf.get_name_scope()))
                with sf.name_scope(who) as inner:
                    await anyio.sleep(0)
                    log.append((inner, sf.get_name_scope()))
            assert sf.get_name_scope() == ""

    async with anyio.create_task_group() as tg:
        tg.start_soon(task, "a")
        tg.start_soon(task, "b")
    for who, log in seen.items():
        for i in range(0, len(log), 3):
            (s1, n1), (s2, n2), (inner, n3) = log[i : i + 3]
            assert s1 == s2 == n1 + "/" == n2 + "/"
            assert inner == f"{n1}/{who}/" == n3 + "/"
    outer = [s for log in seen.values() for s, _ in log[::3]]
    if graph_mode:
        # Each entry in the graph took its own unique name, whichever task asked.
        assert sorted(outer) == sorted({"shared/", *[f"shared_{i}/" for i in range(1, 6)]})
    else:
        assert set(outer) == {"shared/"}
    assert _state()[0] == ""


def test_threads_at_the_root_never_see_each_others_name_scopes() -> None:
    n = 4
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    names: list[str] = []
    g = sf.Graph()

    def work(i: int) -> None:
        try:
            for round_ in range(50):
                barrier.wait()
                with sf.name_scope(f"t{round_ % 3}") as s:
                    barrier.wait()  # every thread is inside a scope of a (maybe) shared name
                    assert sf.get_name_scope() == s[:-1]
                with g.as_default(), sf.name_scope("g") as gs:
                    barrier.wait()
                    assert sf.get_name_scope() == gs[:-1]
                    names.append(gs)
                assert sf.get_name_scope() == ""
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(set(names)) == len(names) == n * 50  # unique per entry in the graph


@pytest.mark.anyio
async def test_mode_switch_reaches_tasks_at_the_root_not_tasks_inside_scopes() -> None:
    entered = anyio.Event()
    switched = anyio.Event()
    inside: list[Any] = []
    at_root: list[Any] = []

    async def in_scope() -> None:
        with sf.name_scope("kept"):
            entered.set()
            await switched.wait()
            inside.append(_state())
            with sf.name_scope("more") as s:  # eager names: no unique suffix
                inside.append((s, _state()))
        inside.append(_state())

    async def root_task() -> None:
        await switched.wait()
        at_root.append(_state())
        with sf.name_scope("kept") as s:  # the graph memo, not the eager one
            at_root.append(s)
        with sf.name_scope("kept") as s:
            at_root.append(s)

    async with anyio.create_task_group() as tg:
        tg.start_soon(in_scope)
        tg.start_soon(root_task)
        await entered.wait()
        sf.disable_eager_execution()
        switched.set()
    assert inside == [
        ("kept", True, "global"),
        ("kept/more/", ("kept/more", True, "global")),
        ("", False, "global"),
    ]
    assert at_root == [("", False, "global"), "kept/", "kept_1/"]


@pytest.mark.anyio
async def test_reset_default_graph_reaches_tasks_and_threads_at_the_root() -> None:
    sf.disable_eager_execution()
    before = sf.get_default_graph()
    ready = anyio.Event()
    reset = anyio.Event()
    seen: list[Any] = []

    async def task() -> None:
        seen.append(sf.get_default_graph() is before)
        ready.set()
        await reset.wait()
        seen.append(sf.get_default_graph())

    async with anyio.create_task_group() as tg:
        tg.start_soon(task)
        await ready.wait()
        sf.reset_default_graph()
        reset.set()
    after = sf.get_default_graph()
    assert after is not before
    assert seen == [True, after]
    from_thread = await anyio.to_thread.run_sync(sf.get_default_graph)
    plain: list[Any] = []
    t = threading.Thread(target=lambda: plain.append(sf.get_default_graph()))
    t.start()
    t.join()
    assert from_thread is after
    assert plain == [after]


def test_failed_entries_at_the_root_leave_the_state_and_the_memo_alone() -> None:
    sf.disable_eager_execution()
    for _ in range(2):  # the second time the name would come from a memo if it were kept
        with pytest.raises(ValueError, match="not a valid name"):
            sf.name_scope("_bad").__enter__()
        assert _context.current() is _context.root_frame()
    with pytest.raises(ValueError, match="not a valid name"):
        sf.name_scope("x:y").__enter__()
    sf.enable_eager_execution()
    with sf.name_scope("_bad") as s:  # eager names are not checked
        assert s == "_bad/"
    sf.disable_eager_execution()
    with pytest.raises(ValueError, match="not a valid name"):
        sf.name_scope("_bad").__enter__()
    assert _context.current() is _context.root_frame()


# -- warm calls --------------------------------------------------------------------------


def test_warm_outputs_cannot_be_used_to_change_inputs_variables_or_constants() -> None:
    v = sf.Variable([1.0, 2.0])
    c = sf.constant([5.0, 6.0])

    @sf.function
    def f(x: Any) -> Any:
        return x, v.read_value(), c, {"x": [x]}

    x = sf.constant([3.0, 4.0])
    for _ in range(3):  # cold, then the warm path
        ox, ov, oc, nested = f(x)
        for out in (ox, ov, oc, nested["x"][0]):
            arr = out.numpy()
            assert not arr.flags.writeable
            with pytest.raises(ValueError):
                arr[0] = 99.0
            with pytest.raises(ValueError):
                np.asarray(out)[0] = 99.0
            np.array(out)[0] = 99.0  # a copy: changes nothing
    v.assign([7.0, 8.0])
    assert ox.numpy().tolist() == [3.0, 4.0]
    assert ov.numpy().tolist() == [1.0, 2.0]  # a value read, not a live view
    assert oc.numpy().tolist() == [5.0, 6.0]
    assert f(x)[1].numpy().tolist() == [7.0, 8.0]


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: np.array([[1.0]], np.float32), ValueError, "does not match its input_signat"),
        (lambda: sf.constant([[1.0]]), ValueError, "does not match its input_signature"),
        (lambda: sf.constant([1], dtype=sf.int32), TypeError, "does not match its input_sig"),
        (lambda: np.array([1.5], np.float64), None, None),  # cast: float32 takes it exactly
        (lambda: np.array([2**40 + 1], np.int64), TypeError, "argument 0"),  # a lossy cast
        (lambda: "s", TypeError, "argument 0"),
    ],
)
def test_input_signature_errors_are_the_same_cold_and_warm(
    make: Any, error: type[Exception] | None, match: str | None
) -> None:
    def fresh() -> Any:
        return sf.function(lambda x: x + 1.0, input_signature=[sf.TensorSpec((None,), sf.float32)])

    cold_f, warm_f = fresh(), fresh()
    warm_f(sf.constant([1.0]))  # the trace exists: calls take the warm path
    if error is None:
        assert cold_f(make()).numpy().tolist() == warm_f(make()).numpy().tolist() == [2.5]
        return
    with pytest.raises(error, match=match) as cold:
        cold_f(make())
    with pytest.raises(error, match=match) as warm:
        warm_f(make())
    assert str(cold.value) == str(warm.value)


# -- plans with bound kernels ------------------------------------------------------------


def test_session_plans_with_bound_kernels_name_the_failing_op() -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.placeholder(sf.float32, (None, None))
        b = sf.placeholder(sf.float32, (None, None))
        prod = sf.matmul(a, b, transpose_b=True, name="mm_t")
        plain = sf.matmul(a, b, name="mm")
        total = sf.reduce_sum(prod, axis=1, name="rows")
        cast = sf.cast(plain, sf.int32, name="to_int")
        with sf.Session() as sess:
            x = np.arange(6, dtype=np.float32).reshape(2, 3)
            out = sess.run([prod, total], {a: x, b: x})
            assert np.array_equal(out[0], x @ x.T)
            assert np.array_equal(out[1], (x @ x.T).sum(axis=1))
            with pytest.raises(sf.errors.InvalidArgumentError, match="'mm'") as err:
                sess.run(plain, {a: x, b: x})  # (2, 3) @ (2, 3)
            assert "MatMul" in str(err.value)
            y = np.ones((2, 2), np.float32)
            assert np.array_equal(sess.run(cast, {a: y, b: y}), np.full((2, 2), 2))


# -- lazy attributes ---------------------------------------------------------------------


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": SRC, "PATH": ""},
    )
    return out.stdout.strip()


def test_lazy_classes_are_public_however_they_are_first_reached() -> None:
    code = (
        "import scopeflow as sf\n"
        "snap = sf.copy_scopes()\n"  # loads _carry through a function, not the class
        "print(type(snap).__module__, sf.ScopedExecutor.__module__)\n"
    )
    assert _run(code) == "scopeflow scopeflow"


def test_first_lazy_lookups_from_many_threads_at_once() -> None:
    code = (
        "import threading, scopeflow as sf\n"
        "names = ['train', 'saved_model', 'ScopedExecutor', 'ScopesSnapshot', 'copy_scopes',"
        " 'run_in_scopes']\n"
        "b = threading.Barrier(12); out = []; errs = []\n"
        "def w(i):\n"
        "    b.wait()\n"
        "    try:\n"
        "        out.append(tuple(getattr(sf, n) for n in names[i % 6:] + names[: i % 6]))\n"
        "        out[-1][0]\n"
        "        sf.train.Checkpoint; sf.saved_model.save\n"
        "    except BaseException as e: errs.append(repr(e))\n"
        "ts = [threading.Thread(target=w, args=(i,)) for i in range(12)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "ids = {frozenset(map(id, o)) for o in out}\n"
        "print(len(out), len(ids), errs)\n"
    )
    assert _run(code) == "12 1 []"


def test_missing_attributes_raise_attribute_error_with_the_name() -> None:
    assert not hasattr(sf, "nonexistent")
    with pytest.raises(AttributeError, match="nonexistent") as err:
        sf.nonexistent  # type: ignore[attr-defined]  # noqa: B018
    assert err.value.name == "nonexistent"
    assert {"train", "saved_model", "ScopedExecutor"} <= set(dir(sf))
