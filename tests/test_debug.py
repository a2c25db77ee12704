"""``sf.debug.describe_scopes`` and the scope descriptions in scope errors."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

import scopeflow as sf


def test_describe_scopes_at_the_root_is_eager_and_empty() -> None:
    d = sf.debug.describe_scopes()
    assert d.executing_eagerly
    assert d.context_switches == ("eager",)
    assert d.default_graphs == ()
    assert (d.name_scope, d.device, d.control_flow) == ("", "", "")
    assert d.control_dependencies == d.active_tapes == d.paused_tapes == d.open_scopes == ()
    text = str(d)
    assert text == (
        "scopes of this context:\n"
        "  mode: eager\n"
        "  context-switch log, oldest first:\n"
        "    eager\n"
        "  default-graph stack: (none: the global default graph)\n"
        f"  default graph: {sf.get_default_graph()!r}\n"
        "  name scope: ''\n"
        "  control dependencies: (none)\n"
        "  device: ''\n"
        "  control-flow scope: (none)\n"
        "  active tapes: (none)\n"
        "  paused tapes: (none)\n"
        "  open scopes, outermost first:\n"
        "    (none)"
    )


def test_describe_scopes_shows_every_piece_of_state() -> None:
    g = sf.Graph("model")
    with g.as_default(), sf.name_scope("layer"), sf.device("/cpu:0"):
        c = sf.constant(1.0, name="c")
        with sf.control_dependencies([c]), sf.GradientTape() as outer:
            with sf.GradientTape(persistent=True) as inner, outer.stop_recording():
                d = sf.debug.describe_scopes()
    assert not d.executing_eagerly
    assert d.context_switches == ("eager", "<sf.Graph 'model'>")
    assert d.default_graphs == ("<sf.Graph 'model'>",)
    assert d.name_scope == "layer"
    assert d.device == "/device:CPU:0"
    assert d.control_dependencies == ("layer/c",)
    assert len(d.active_tapes) == 1
    assert d.active_tapes[0].endswith(f"at {id(inner):#x}")
    assert len(d.paused_tapes) == 1
    assert d.paused_tapes[0].endswith(f"at {id(outer):#x}")
    assert d.open_scopes[0] == "<sf.Graph 'model'>.as_default()"
    assert d.open_scopes[-1] == "GradientTape.stop_recording()"
    text = str(d)
    for line in [
        "  mode: graph",
        "  name scope: 'layer'",
        "  control dependencies: layer/c",
        "  device: '/device:CPU:0'",
    ]:
        assert line in text.splitlines()


def test_describe_scopes_inside_init_scope_and_function_graph() -> None:
    outer = sf.Graph("outer")
    with outer.as_default():
        fg = sf.FuncGraph("f", outer_graph=outer)
        with fg.as_default(), sf.GradientTape() as tape:
            inside = sf.debug.describe_scopes()
            with sf.init_scope():
                lifted = sf.debug.describe_scopes()
    assert inside.default_graphs == ("<sf.Graph 'outer'>", repr(fg))
    assert inside.context_switches[-1] == f"{fg!r}, building a function"
    assert len(inside.active_tapes) == 1
    # init_scope logs a switch back to the outer graph and pauses every tape.
    assert lifted.default_graphs[-1] == "<sf.Graph 'outer'>"
    assert lifted.context_switches[-1] == "<sf.Graph 'outer'>"
    assert lifted.active_tapes == ()
    assert lifted.paused_tapes[0].endswith(f"at {id(tape):#x}")


def test_describe_scopes_shows_the_control_flow_scope() -> None:
    seen: list[str] = []

    def branch() -> sf.Tensor:
        seen.append(sf.debug.describe_scopes().control_flow)
        return sf.constant(1.0)

    g = sf.Graph()
    with g.as_default():
        sf.cond(sf.placeholder(sf.bool_, shape=()), branch, branch, name="pick")
    assert len(seen) == 2
    assert all("pick" in label for label in seen), seen


@pytest.mark.anyio
async def test_describe_scopes_is_per_task() -> None:
    results: dict[int, str] = {}

    async def worker(i: int) -> None:
        g = sf.Graph(f"g{i}")
        async with g.as_default(), sf.name_scope(f"task{i}"):
            await anyio.sleep(0.001)  # the other tasks enter their scopes meanwhile
            results[i] = str(sf.debug.describe_scopes())

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(worker, i)
    for i, text in results.items():
        assert f"  name scope: 'task{i}'" in text.splitlines()
        assert f"  default-graph stack: <sf.Graph 'g{i}'>" in text.splitlines()
    assert sf.debug.describe_scopes().default_graphs == ()


def test_misnested_exit_error_describes_the_restored_state() -> None:
    g = sf.Graph("g")
    with g.as_default():
        a, b = sf.name_scope("a"), sf.name_scope("b")
        a.__enter__()
        b.__enter__()
        with pytest.raises(sf.ScopeNestingError) as info:
            a.__exit__(None, None, None)
        state = sf.debug.describe_scopes()
    msg = str(info.value)
    assert re.match(r"^name_scope\('a'\) was left while name_scope\('b'\)", msg)
    assert msg.endswith("\n" + str(state))
    assert "  name scope: ''" in msg.splitlines()
    assert "  default-graph stack: <sf.Graph 'g'>" in msg.splitlines()


def test_error_from_another_thread_describes_that_thread() -> None:
    scope = sf.name_scope("main")
    scope.__enter__()
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def leave() -> None:
        barrier.wait()
        with sf.name_scope("thread_scope"):
            try:
                scope.__exit__(None, None, None)
            except sf.ScopeNestingError as err:
                errors.append(err)

    worker = threading.Thread(target=leave)
    worker.start()
    barrier.wait()
    worker.join()
    try:
        assert len(errors) == 1
        text = str(errors[0])
        assert "entered in a different context" in text
        # The thread's own state, not the main thread's.
        assert "  name scope: 'thread_scope'" in text.splitlines()
        assert sf.get_name_scope() == "main"
    finally:
        scope.__exit__(None, None, None)


def test_reset_default_graph_error_describes_the_scopes() -> None:
    g = sf.Graph("busy")
    with g.as_default(), pytest.raises(sf.ScopeNestingError) as info:
        sf.reset_default_graph()
    assert re.match(
        r"^reset_default_graph\(\) was called inside <sf.Graph 'busy'>", str(info.value)
    )
    assert "  default-graph stack: <sf.Graph 'busy'>" in str(info.value).splitlines()


def test_tensor_of_another_graph_error_describes_the_scopes() -> None:
    g1, g2 = sf.Graph("one"), sf.Graph("two")
    with g1.as_default():
        c = sf.constant(1.0, name="c")
    with (
        g2.as_default(),
        sf.name_scope("here"),
        pytest.raises(sf.errors.GraphMismatchError) as info,
    ):
        sf.add(c, 1.0)
    lines = str(info.value).splitlines()
    assert re.match(
        r"^Add: Tensor 'c:0' belongs to <sf.Graph 'one'>, not to <sf.Graph 'two'>", lines[0]
    )
    assert lines[0].endswith(")")  # the op's inputs come before the description
    assert lines[1] == "scopes of this context:"
    assert "  name scope: 'here'" in lines


def test_control_input_of_another_graph_error_describes_the_scopes() -> None:
    g1, g2 = sf.Graph("one"), sf.Graph("two")
    with g1.as_default():
        c = sf.constant(1.0, name="c")
    with g2.as_default(), pytest.raises(sf.errors.GraphMismatchError) as info:
        sf.control_dependencies([c]).__enter__()
    assert re.match(r"^Control input 'c' belongs to <sf.Graph 'one'>", str(info.value))
    assert "  default-graph stack: <sf.Graph 'two'>" in str(info.value).splitlines()


def test_not_capturable_tensor_error_describes_the_scopes() -> None:
    outer = sf.Graph("outer")
    other = sf.Graph("other")
    with other.as_default():
        c = sf.constant(1.0, name="c")
    with outer.as_default(), sf.FuncGraph("f", outer_graph=outer).as_default():
        with pytest.raises(sf.errors.GraphMismatchError) as info:
            sf.add(c, 1.0)
    assert "does not enclose" in str(info.value)
    assert "  context-switch log, oldest first:" in str(info.value)


def test_describe_scopes_does_not_change_any_state() -> None:
    before = sf.context_switches()
    sf.debug.describe_scopes()
    assert sf.context_switches() == before


def test_inside_an_eager_init_scope_the_default_graph_is_no_function_graph() -> None:
    fg = sf.FuncGraph("f")
    with fg.as_default():
        inside = sf.debug.describe_scopes()
        with sf.init_scope():
            lifted = sf.debug.describe_scopes()
    assert inside.default_graph == repr(fg)
    assert lifted.executing_eagerly
    assert lifted.context_switches == ("eager", f"{fg!r}, building a function", "eager")
    assert lifted.default_graph == repr(sf.get_default_graph())
    assert "FuncGraph" not in lifted.default_graph


def test_an_eager_tensor_in_a_graph_error_describes_the_scopes() -> None:
    c = sf.constant(1.0)
    with sf.Graph("plain").as_default(), pytest.raises(RuntimeError) as info:
        sf.add(c, 1.0)
    assert re.match(
        r"^An eager tensor was used to build an op in <sf.Graph .plain.>", str(info.value)
    )
    assert "  default-graph stack: <sf.Graph 'plain'>" in str(info.value).splitlines()


def test_every_scope_nesting_error_in_the_source_carries_a_description() -> None:
    """A new raise site must describe the scopes too (``with_description``)."""
    src = Path(sf.__file__).parent
    bare = []
    for path in sorted(src.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "ScopeNestingError(" in line and "with_description(" not in line:
                if "class ScopeNestingError(" in line or line.lstrip().startswith(("#", ">>>")):
                    continue
                bare.append(f"{path.name}:{n}: {line.strip()}")
    assert bare == []


@pytest.mark.anyio
async def test_error_in_another_task_describes_that_task() -> None:
    # Task "owner" enters a scope and waits; task "intruder", inside its own graph and name
    # scope, tries to leave it. The error describes the intruder's scopes, and the owner
    # still leaves its scope normally afterwards.
    entered, tried = anyio.Event(), anyio.Event()
    shared: list[Any] = []
    errors: list[sf.ScopeNestingError] = []
    owner_view: list[str] = []

    async def owner() -> None:
        g = sf.Graph("owner_graph")
        async with g.as_default():
            scope = sf.name_scope("owned")
            async with scope:
                shared.append(scope)
                entered.set()
                await tried.wait()
                owner_view.append(sf.get_name_scope())

    async def intruder() -> None:
        await entered.wait()
        async with sf.Graph("intruder_graph").as_default(), sf.name_scope("mine"):
            await anyio.sleep(0)
            try:
                shared[0].__exit__(None, None, None)
            except sf.ScopeNestingError as err:
                errors.append(err)
            assert sf.get_name_scope() == "mine"
        tried.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(owner)
        tg.start_soon(intruder)
    assert len(errors) == 1
    lines = str(errors[0]).splitlines()
    assert re.match(r"^name_scope\('owned'\) was entered in a different context", lines[0])
    assert "  name scope: 'mine'" in lines
    assert "  default graph: <sf.Graph 'intruder_graph'>" in lines
    assert not any("owner_graph" in line for line in lines)
    assert owner_view == ["owned"]


def test_variable_of_another_graph_error_describes_the_scopes() -> None:
    g1, g2 = sf.Graph("one"), sf.Graph("two")
    with g1.as_default():
        v = sf.Variable(1.0, name="v")
    with g2.as_default(), sf.name_scope("head"):
        with pytest.raises(sf.errors.GraphMismatchError) as info:
            sf.add(v, 1.0)
        state = str(sf.debug.describe_scopes())
    lines = str(info.value).splitlines()
    assert re.match(r"^Add: Variable 'v:0' was created in <sf.Graph 'one'> and cannot", lines[0])
    assert lines[0].endswith(")")  # the op's inputs come before the description
    assert "\n".join(lines[1:]) == state


def test_call_with_a_control_capture_of_another_graph_error_describes_the_scopes() -> None:
    g, h = sf.Graph("g"), sf.Graph("h")
    with g.as_default():
        c = sf.constant(1.0, name="c")

        @sf.function
        def after_c(x: sf.Tensor) -> sf.Tensor:
            with sf.control_dependencies([c.op]):
                return x + 1.0

        concrete = after_c.get_concrete_function(sf.TensorSpec((), sf.float32))
    with h.as_default(), sf.name_scope("elsewhere"):
        with pytest.raises(sf.errors.GraphMismatchError) as info:
            concrete(sf.constant(2.0))
        state = str(sf.debug.describe_scopes())
    text = str(info.value)
    assert re.match(r"^<sf.FuncGraph 'after_c'> must run after 'c' of <sf.Graph 'g'>", text)
    assert text.endswith("\n" + state)
    assert "  name scope: 'elsewhere'" in text.splitlines()


def test_describe_scopes_in_init_scope_escaping_to_eager_hides_function_graphs() -> None:
    # SPEC 12.4: inside an init_scope that escapes to eager, the default graph is never a
    # function graph; the stack shown agrees with get_default_graph().
    seen: list[tuple[sf.debug.ScopeDescription, sf.Graph]] = []

    @sf.function
    def f(x: sf.Tensor) -> sf.Tensor:
        with sf.init_scope():
            seen.append((sf.debug.describe_scopes(), sf.get_default_graph()))
        return x

    f(sf.constant(1.0))
    ((lifted, default),) = seen
    assert lifted.executing_eagerly
    assert default is sf.get_default_graph()  # the global graph
    assert lifted.default_graphs == ()
    assert lifted.default_graph == repr(default)
    assert "  default-graph stack: (none: the global default graph)" in str(lifted).splitlines()
    assert any("building a function" in s for s in lifted.context_switches)


def test_describe_scopes_eager_mode_inside_a_graph_keeps_the_graph() -> None:
    g = sf.Graph("plain")
    with g.as_default(), sf.eager_mode():
        d = sf.debug.describe_scopes()
        default = sf.get_default_graph()
    assert d.executing_eagerly
    assert default is g  # eager mode inside a plain graph keeps it as the default graph
    assert d.default_graph == repr(g)
    assert d.default_graphs == ("<sf.Graph 'plain'>",)
