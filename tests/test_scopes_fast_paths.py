"""The fast paths of name_scope, device and control_dependencies give what the general
paths give.

The scopes take a shorter path for the calling task's current context, and name_scope
memoizes its entry for names at the root of eager mode or of a graph (the scope record
``EMPTY_SCOPES``). Inside ``device(None)`` the scope record is equal to the root's but
another object, so the same statements run the general path there: each test compares
the two.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import pytest

import scopeflow as sf
from scopeflow import _scopes


class _Name(str):
    """A str subclass: the memo must not replace it by an equal plain str."""


NAMES = ["a", "a/", "/", "", None, "a/b", "a/b/", "A", "x.y-z", "a_1", _Name("s"), _Name("t/")]


@contextlib.contextmanager
def _general() -> Iterator[None]:
    with sf.device(None):  # an equal scope record that is not EMPTY_SCOPES
        yield


def _eager_view(name: str | None, around: Callable[[], contextlib.AbstractContextManager[None]]):
    with around(), sf.name_scope(name) as scope:
        return scope, type(scope), sf.get_name_scope(), type(sf.get_name_scope())


@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_eager_root_name_scope_matches_the_general_path(name: str | None) -> None:
    for _ in range(3):  # first sight (memo filled), then memoized
        assert _eager_view(name, contextlib.nullcontext) == _eager_view(name, _general)


def _graph_view(
    name: str | None, around: Callable[[], contextlib.AbstractContextManager[None]]
) -> list[object]:
    seen: list[object] = []
    g = sf.Graph()
    with g.as_default(), around():
        for _ in range(3):
            try:
                with sf.name_scope(name) as scope:
                    c = sf.constant(1.0, name="c")
                    seen += [scope, type(scope), sf.get_name_scope(), c.op.name]
            except ValueError as e:  # "/" is not a valid name at the root
                seen.append(str(e))
    return seen


@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_graph_root_name_scope_matches_the_general_path(name: str | None) -> None:
    assert _graph_view(name, contextlib.nullcontext) == _graph_view(name, _general)
    assert _graph_view(name, contextlib.nullcontext) == _graph_view(name, _general)


def test_graph_root_names_are_made_unique_each_time() -> None:
    g = sf.Graph()
    with g.as_default():
        got = []
        for _ in range(3):
            with sf.name_scope("layer") as scope:
                got.append(scope)
        with sf.name_scope("layer_3/") as scope:  # re-entry of a name handed out later
            got.append(scope)
        with sf.name_scope("layer") as scope:
            got.append(scope)
    assert got == ["layer/", "layer_1/", "layer_2/", "layer_3/", "layer_3/"]


@pytest.mark.parametrize("bad", ["a:b", "_private", "-x", "a:b/"])
def test_invalid_graph_names_raise_every_time_and_are_not_memoized(bad: str) -> None:
    g = sf.Graph()
    with g.as_default():
        for _ in range(2):
            with pytest.raises(ValueError, match="is not a valid name"):
                sf.name_scope(bad).__enter__()
            assert sf.get_name_scope() == ""
    assert bad not in _scopes._at_graph_root
    # Eager name scopes take any name, and do not make it valid in graphs.
    with sf.name_scope(bad) as scope:
        assert sf.get_name_scope() == scope.rstrip("/")
    with g.as_default(), pytest.raises(ValueError, match="is not a valid name"):
        sf.name_scope(bad).__enter__()


def test_a_str_subclass_name_gets_what_it_always_got() -> None:
    # The memo (keyed by plain str) is not used for it: __enter__ returns a plain str,
    # and a new scope name is the object given.
    with sf.name_scope("kept/"), sf.name_scope("kept"):  # memoize the plain strs first
        pass
    for name in (_Name("kept/"), _Name("kept")):
        with sf.name_scope(name) as scope:
            assert type(scope) is str
            assert scope == "kept/"
    with sf.name_scope(_Name("kept")):
        assert type(sf.get_name_scope()) is _Name
    g = sf.Graph()
    with g.as_default(), sf.name_scope(_Name("kept")) as scope:
        assert type(scope) is str
        assert type(sf.get_name_scope()) is _Name


def test_the_root_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_scopes, "_AT_ROOT_LIMIT", 8)
    for i in range(50):
        with sf.name_scope(f"n{i}") as scope:
            assert scope == f"n{i}/"
    assert len(_scopes._at_eager_root) <= 8


def test_threads_racing_on_new_root_names() -> None:
    g = sf.Graph()
    errors: list[BaseException] = []
    names: list[str] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        try:
            for i in range(200):
                with sf.name_scope(f"race{i % 7}") as eager:
                    assert eager == f"race{i % 7}/"
                with g.as_default(), sf.name_scope(f"race{i % 7}") as scope:
                    with lock:
                        names.append(scope)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(names) == len(set(names)) == 800  # every graph scope name is unique


# -- device --------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [None, "/cpu:0", "/gpu:1", "/job:w/task:0", "/device:CPU:*"])
def test_device_matches_the_graph_method(spec: str | None) -> None:
    g = sf.Graph()
    with g.as_default():
        with sf.device("/job:outer"):
            with sf.device(spec):
                a = sf.constant(1.0)
            with g.device(spec):
                b = sf.constant(1.0)
        with sf.device(spec):
            c = sf.constant(1.0)
        with g.device(spec):
            d = sf.constant(1.0)
    assert a.op.device == b.op.device
    assert c.op.device == d.op.device


def test_device_spec_table_keeps_none_and_validates_new_specs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_scopes, "_known_specs", {None: ""})
    for i in range(4200):  # past the bound: the table is emptied once
        sf.device(f"/task:{i}")
    assert len(_scopes._known_specs) < 4096
    g = sf.Graph()
    with g.as_default(), sf.device("/cpu:0"), sf.device(None):
        assert sf.constant(1.0).op.device == ""
    assert _scopes._known_specs[None] == ""
    for _ in range(2):
        with pytest.raises(ValueError, match="Invalid device"):
            sf.device("/nonsense:x")
        with pytest.raises(TypeError, match="must be a string"):
            sf.device(["/cpu:0"])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="must be a string"):
            sf.device(7)  # type: ignore[arg-type]


# -- control_dependencies ------------------------------------------------------------


def _deps(make: Callable[[sf.Graph], list[object]], via_graph: bool) -> list[str]:
    g = sf.Graph()
    with g.as_default():
        a = sf.constant(1.0, name="a")
        b = sf.constant(2.0, name="b")
        inputs = make(g) or [a, b]
        scope = g.control_dependencies if via_graph else sf.control_dependencies
        with scope(inputs if inputs != ["ab"] else [a, b]):
            c = sf.constant(3.0, name="c")
    return [op.name for op in c.op.control_inputs]


@pytest.mark.parametrize(
    "make",
    [
        lambda g: [g.get_operation_by_name("a")],
        lambda g: [g.get_tensor_by_name("a:0")],
        lambda g: ["ab"],
        lambda g: [g.get_operation_by_name("a"), g.get_tensor_by_name("b:0")],
    ],
    ids=["op", "tensor", "two", "op+tensor"],
)
def test_control_dependencies_matches_the_graph_method(
    make: Callable[[sf.Graph], list[object]],
) -> None:
    assert _deps(make, via_graph=False) == _deps(make, via_graph=True)


def test_control_dependencies_fast_path_edge_cases() -> None:
    g, other = sf.Graph(), sf.Graph()
    with other.as_default():
        foreign = sf.constant(1.0, name="foreign")
    with g.as_default():
        a = sf.constant(1.0, name="a")
        with sf.control_dependencies([]):
            assert not sf.constant(1.0).op.control_inputs
        with pytest.raises(sf.errors.GraphMismatchError):
            sf.control_dependencies([foreign.op]).__enter__()
        with pytest.raises(sf.errors.GraphMismatchError):
            sf.control_dependencies([foreign]).__enter__()
        with pytest.raises(TypeError, match="takes operations or tensors"):
            sf.control_dependencies([1.0]).__enter__()
        deps = [a.op]
        scope = sf.control_dependencies(deps)
        deps.append(sf.constant(2.0, name="late").op)  # the list is read at construction
        with scope, scope:  # re-entered while open
            c = sf.constant(3.0, name="c")
        assert [op.name for op in c.op.control_inputs] == ["a"]
        with sf.control_dependencies((a,)):  # a tuple takes the checked path
            d = sf.constant(4.0, name="d")
        assert [op.name for op in d.op.control_inputs] == ["a"]
    with pytest.raises(TypeError, match="Wrap a single one in a list"):
        sf.control_dependencies(a)  # type: ignore[arg-type]
    with sf.control_dependencies([a]):  # eager: a graph tensor's op is never run here
        assert sf.executing_eagerly()
