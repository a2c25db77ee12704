"""Tensor semantics (SPEC section 6): equality, hashing and ``ref()``, ``tolist()``,
conversion to NumPy, and which values may become tensors."""

from __future__ import annotations

import re
import threading
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf
from scopeflow import _context

UNHASHABLE = (
    r"^(EagerTensor|Tensor '[^']+' of function graph '[^']+'|Variable '[^']+') is unhashable: "
    r"== compares it element-wise\. Use (tensor|variable)\.ref\(\)"
)


def _values(t: Any) -> Any:
    assert isinstance(t, sf.EagerTensor), t
    return t.numpy().tolist()


# -- element-wise == and != where executing eagerly outside functions ------------------------


def test_eager_equality_is_element_wise_with_broadcasting() -> None:
    x = sf.constant([1.0, 2.0, 3.0])
    assert _values(x == 2.0) == [False, True, False]
    assert _values(x != 2.0) == [True, False, True]
    assert _values(x == [1.0, 0.0, 3.0]) == [True, False, True]
    assert _values(x == np.array([1.0, 2.0, 0.0], np.float32)) == [True, True, False]
    assert _values(x == sf.constant([[1.0], [3.0]])) == [[True, False, False], [False, False, True]]
    assert (x == 2.0).dtype == np.bool_
    # Reflected forms: the tensor's operator runs when the left operand gives up.
    assert _values([1.0, 0.0, 3.0] == x) == [True, False, True]  # noqa: SIM300
    assert _values(np.array([1.0, 2.0, 0.0], np.float32) == x) == [True, True, False]
    assert _values(np.array([1.0, 2.0, 0.0], np.float32) != x) == [False, False, True]
    # Two distinct tensors with equal values are equal (not compared by identity).
    assert bool(sf.constant(1.0) == sf.constant(1.0))
    assert not bool(sf.constant(1.0) != sf.constant(1.0))


def test_accuracy_idiom_counts_matches() -> None:
    """The issue's bug: ``reduce_mean(cast(pred == y, float32))`` silently returned 0."""
    pred = sf.constant([1, 2, 3, 4])
    labels = sf.constant([1, 0, 3, 4])
    accuracy = sf.reduce_mean(sf.cast(pred == labels, sf.float32))
    assert float(accuracy) == pytest.approx(0.75)

    @sf.function
    def traced(p: Any, y: Any) -> Any:
        return sf.reduce_mean(sf.cast(p == y, sf.float32))

    assert float(traced(pred, labels)) == pytest.approx(0.75)


def test_equality_with_none_and_non_tensor_values_is_identity() -> None:
    x = sf.constant([1.0, 2.0])
    assert (x == None) is False  # noqa: E711 - the operator itself is under test
    assert (x != None) is True  # noqa: E711
    assert (None == x) is False  # noqa: E711, SIM300
    assert (x == "a") is False
    assert (x != "a") is True
    assert (x == object()) is False
    assert (x == {"a": 1}) is False
    assert (x == ["a", "b"]) is False
    assert (x == np.array(["a", "b"])) is False
    assert x != sf.Graph()


def test_incompatible_shapes_compare_unequal_as_a_scalar() -> None:
    # TensorFlow's __eq__: shapes that cannot broadcast are simply not equal.
    x = sf.constant([1.0, 2.0])
    y = sf.constant([1.0, 2.0, 3.0])
    for result, expected in [(x == y, False), (x != y, True), (x == [1.0, 2.0, 3.0], False)]:
        assert isinstance(result, sf.EagerTensor)
        assert result.shape == ()
        assert result.dtype == np.bool_
        assert bool(result) is expected


def test_dtype_mismatch_is_a_type_error() -> None:
    before = _context.current()
    with pytest.raises(TypeError, match=r"^Equal: both inputs must have the same dtype"):
        _ = sf.constant([1.0]) == sf.constant([1])
    with pytest.raises(TypeError, match=r"^NotEqual: both inputs must have the same dtype"):
        _ = sf.constant([1.0]) != sf.constant([1])
    # A Python scalar takes the tensor's dtype; a lossy conversion is refused (SPEC 6).
    with pytest.raises(TypeError, match=r"^Equal: Cannot convert 1\.5 to a int32 tensor"):
        _ = sf.constant(1) == 1.5
    assert _context.current() is before


def test_variables_compare_element_wise() -> None:
    v = sf.Variable([1.0, 2.0])
    w = sf.Variable([1.0, 5.0])
    assert _values(v == [1.0, 0.0]) == [True, False]
    assert _values(v != w) == [False, True]
    assert _values(sf.constant([1.0, 2.0]) == v) == [True, True]
    assert (v == None) is False  # noqa: E711


def test_function_traced_from_eager_compares_element_wise() -> None:
    seen: list[Any] = []

    @sf.function
    def f(a: Any, b: Any) -> Any:
        eq = a == b
        seen.append(eq)
        return eq, a != b, a == sf.constant([1.0, 2.0, 3.0])

    eq, ne, mismatch = f(sf.constant([1.0, 2.0]), sf.constant([1.0, 3.0]))
    assert isinstance(seen[0], sf.Tensor)
    assert seen[0].graph.building_function
    assert _values(eq) == [True, False]
    assert _values(ne) == [False, True]
    assert mismatch.shape == ()
    assert bool(mismatch) is False


def test_plain_graph_tensors_keep_identity_equality_and_hashing() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(2,), name="x")
        y = x * 2.0
        same = sf.identity(x)
        assert (x == x) is True
        assert (x == same) is False
        assert (x != same) is True
        assert (x == 1.0) is False
        assert {x: 1, y: 2}[x] == 1
    # Still identity outside the graph, and the hash never changes.
    assert (x == x) is True
    assert hash(x) == hash(x)
    with sf.Session(g) as sess:
        out = sess.run(y, feed_dict={x: [1.0, 2.0]})
    np.testing.assert_array_equal(out, [2.0, 4.0])


def test_graph_variables_keep_identity_and_feed_by_key() -> None:
    g = sf.Graph()
    with g.as_default():
        v = sf.Variable([1.0, 2.0], name="v")
        doubled = v * 2.0
        init = sf.global_variables_initializer()
        assert (v == v) is True
        assert (v == [1.0, 2.0]) is False
    assert {v: "v"}[v] == "v"
    assert v in g.get_collection("variables")
    with sf.Session(g) as sess:
        sess.run(init)
        np.testing.assert_array_equal(sess.run(doubled), [2.0, 4.0])
        np.testing.assert_array_equal(sess.run(v, feed_dict={v: [3.0, 4.0]}), [3.0, 4.0])


def test_function_called_from_a_graph_compares_by_identity() -> None:
    """Traced from a plain graph, executing_eagerly_outside_functions() is False."""
    seen: list[Any] = []

    @sf.function
    def f(a: Any) -> Any:
        seen.append((a == a, a == 1.0))
        return a + 1.0

    with sf.Graph().as_default():
        f(sf.constant(1.0))
    assert seen == [(True, False)]


def test_eager_tensor_in_graph_mode_compares_by_identity() -> None:
    x = sf.constant(1.0)
    with sf.Graph().as_default():
        assert (x == x) is True
        assert (x == 1.0) is False


@pytest.mark.anyio
async def test_equality_mode_is_per_task() -> None:
    """One task inside a plain graph (identity), one eager (element-wise), interleaved."""
    x = sf.constant([1.0, 2.0])
    results: dict[str, Any] = {}
    entered = anyio.Event()

    async def in_graph() -> None:
        async with sf.Graph().as_default():
            entered.set()
            await anyio.sleep(0.01)
            results["graph"] = x == 1.0

    async def in_eager() -> None:
        await entered.wait()
        results["eager"] = x == 1.0
        await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(in_graph)
        tg.start_soon(in_eager)
    assert results["graph"] is False
    assert _values(results["eager"]) == [True, False]


# -- hashing and ref() -----------------------------------------------------------------------


def test_eager_tensors_and_variables_are_unhashable() -> None:
    x = sf.constant(1.0)
    v = sf.Variable(1.0, name="v")
    for obj in (x, v):
        with pytest.raises(TypeError, match=UNHASHABLE):
            hash(obj)
        with pytest.raises(TypeError, match=UNHASHABLE):
            _ = {obj}
        with pytest.raises(TypeError, match=UNHASHABLE):
            _ = {obj: 1}


def test_function_graph_tensors_are_unhashable() -> None:
    errors: list[str] = []

    @sf.function
    def f(a: Any) -> Any:
        with pytest.raises(TypeError, match=UNHASHABLE) as info:
            hash(a)
        errors.append(str(info.value))
        refs = {a.ref(): "a"}
        assert refs[a.ref()] == "a"
        return a

    f(sf.constant(1.0))
    assert len(errors) == 1


def test_ref_is_hashable_and_compares_by_identity() -> None:
    x = sf.constant([1.0, 2.0])
    y = sf.constant([1.0, 2.0])
    v = sf.Variable([1.0, 2.0])
    assert x.ref() == x.ref()
    assert hash(x.ref()) == hash(x.ref())
    assert x.ref() != y.ref()  # equal values, different tensors
    assert x.ref() != v.ref()
    assert x.ref().deref() is x
    assert v.ref().deref() is v
    table = {x.ref(): "x", y.ref(): "y", v.ref(): "v"}
    assert [table[t.ref()] for t in (y, v, x)] == ["y", "v", "x"]
    assert {t.ref() for t in (x, y, x, v, v)} == {x.ref(), y.ref(), v.ref()}
    assert (x.ref() == x) is False
    assert "EagerTensor" in repr(x.ref())
    with sf.Graph().as_default():
        p = sf.placeholder(sf.float32)
        assert p.ref() == p.ref()
        assert p.ref().deref() is p


def test_ref_keeps_its_target_alive() -> None:
    import gc
    import weakref

    r = sf.constant([1.0]).ref()
    target = weakref.ref(r.deref())
    gc.collect()
    assert target() is not None
    assert r.deref().tolist() == [1.0]


def test_library_works_with_unhashable_tensors_and_variables() -> None:
    """Tapes, captures, sessions and control dependencies key tensors by identity."""
    x = sf.constant(3.0)
    v = sf.Variable(2.0, name="w")
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x * v
    grads = tape.gradient(y, {"x": x, "v": v, "both": [x, v]})
    assert float(grads["x"]) == 12.0
    assert float(grads["v"]) == 9.0
    assert [float(g) for g in grads["both"]] == [12.0, 9.0]
    assert [w.ref() for w in tape.watched_variables()] == [v.ref()]

    captured = sf.constant([1.0, 2.0])

    @sf.function
    def f(a: Any) -> Any:
        with sf.control_dependencies([a]):
            return a * captured + v + captured

    np.testing.assert_array_equal(f(sf.constant([1.0, 1.0])).numpy(), [4.0, 6.0])
    assert [t.ref() for t in f.get_concrete_function(sf.constant([1.0, 1.0])).captured_inputs]


# -- tolist, numpy and conversion of symbolic tensors ----------------------------------------


def test_tolist() -> None:
    assert sf.constant([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert sf.constant(2.5).tolist() == 2.5
    assert sf.Variable([True, False]).tolist() == [True, False]
    with sf.Graph().as_default():
        p = sf.placeholder(sf.float32, name="p")
        with pytest.raises(TypeError, match=r"^\.tolist\(\) is not available: 'p:0' is a symbolic"):
            p.tolist()


SYMBOLIC_IN_GRAPH = (
    r"is not available: 'p:0' is a symbolic tensor of <sf\.Graph '[^']+'>, which has no value "
    r"while the graph is built\. Run the graph to get it: sf\.Session\(graph\)\.run\(tensor\)$"
)


def test_symbolic_tensor_has_no_numpy_value_in_a_graph() -> None:
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=(2,), name="p")
        before = _context.current()
        with pytest.raises(TypeError, match=r"^\.numpy\(\) " + SYMBOLIC_IN_GRAPH):
            p.numpy()
        with pytest.raises(TypeError, match=r"^Conversion to a NumPy array " + SYMBOLIC_IN_GRAPH):
            np.asarray(p)
        with pytest.raises(TypeError, match=r"^Conversion to a NumPy array " + SYMBOLIC_IN_GRAPH):
            np.array([p, p])
        # The case: a variable silently held a Tensor inside an object array.
        with pytest.raises(TypeError, match=r"^Conversion to a NumPy array "):
            sf.Variable(np.asarray(p))
        assert _context.current() is before
    assert g.get_collection("variables") == []


IN_TRACE = (
    r"is not available: 'a:0' is a symbolic tensor of function graph 'f', which has no value "
    r"while the function is traced\. Return it from the function to get its value, or print "
    r"it when the function runs with sf\.print\(\)$"
)


@pytest.mark.parametrize(
    ("convert", "what"),
    [
        (lambda a: a.numpy(), r"\.numpy\(\) "),
        (np.asarray, r"Conversion to a NumPy array "),
        (lambda a: a.tolist(), r"\.tolist\(\) "),
        (lambda a: a.item(), r"\.item\(\) "),
        (float, r"float\(\) "),
        (int, r"int\(\) "),
        (lambda a: np.add(a, 1.0), r"Conversion to a NumPy array "),
    ],
    ids=["numpy", "asarray", "tolist", "item", "float", "int", "ufunc"],
)
def test_symbolic_tensor_has_no_numpy_value_while_tracing(convert: Any, what: str) -> None:
    def f(a: Any) -> Any:
        convert(a)
        return a

    traced = sf.function(f)
    with pytest.raises(TypeError, match="^" + what + IN_TRACE):
        traced(sf.constant([1.0]))
    assert _context.current() is _context.root_frame()
    # A failed trace leaves nothing behind: a fixed body traces and runs.
    ok = sf.function(lambda a: a * 2.0)
    assert ok(sf.constant([1.0])).tolist() == [2.0]


def test_escaped_tensor_says_where_it_came_from() -> None:
    leaked: list[Any] = []

    @sf.function
    def f(a: Any) -> Any:
        leaked.append(a * 2.0)
        return a

    f(sf.constant(1.0))
    message = (
        r"^\.numpy\(\) is not available: Tensor 'Mul:0' was created while tracing function "
        r"'f' and escaped it"
    )
    with pytest.raises(TypeError, match=message):
        leaked[0].numpy()


def test_variable_numpy_while_tracing_is_refused() -> None:
    v = sf.Variable(1.0, name="counter")

    @sf.function
    def f() -> Any:
        return v.numpy()

    message = (
        r"^Variable 'counter:0'\.numpy\(\) was called while tracing 'f': the trace would keep "
        r"today's value forever"
    )
    with pytest.raises(TypeError, match=message):
        f()
    assert float(v.numpy()) == 1.0
    assert float(np.asarray(v)) == 1.0


# -- which values may become tensors ---------------------------------------------------------


NON_NUMERIC = (
    r"^Cannot use a NumPy value of (object|non-numeric \(\S+\)) dtype as a tensor: tensors "
    r"hold numbers or booleans"
)


@pytest.mark.parametrize(
    "value",
    [
        np.array(["a", "b"]),
        np.array([b"a"]),
        np.array([1.0, None], dtype=object),
        np.array([1, 2], dtype=object),
        np.array(["2020-01-01"], dtype="datetime64[D]"),
        np.str_("a"),
    ],
    ids=["str", "bytes", "object-none", "object-ints", "datetime", "str-scalar"],
)
def test_non_numeric_arrays_are_rejected(value: Any) -> None:
    before = _context.current()
    with pytest.raises(TypeError, match=NON_NUMERIC):
        sf.constant(value)
    with pytest.raises(TypeError, match=NON_NUMERIC):
        sf.convert_to_tensor(value)
    with pytest.raises(TypeError, match=NON_NUMERIC):
        sf.Variable(value)
    with pytest.raises(TypeError, match=r"^Add: Cannot use a NumPy value"):
        sf.add(sf.constant(1.0), value)
    g = sf.Graph()
    with g.as_default():
        with pytest.raises(TypeError, match=NON_NUMERIC):
            sf.constant(value)
        p = sf.placeholder(sf.float32)
    bad_feed = r"^Cannot feed 'Placeholder:0'"
    with sf.Session(g) as sess, pytest.raises(sf.errors.InvalidArgumentError, match=bad_feed):
        sess.run(p, feed_dict={p: value})
    assert _context.current() is before
    assert [op.type for op in g.get_operations()] == ["Placeholder"]


@pytest.mark.parametrize("dtype", [object, str, "datetime64[s]"], ids=["object", "str", "dt"])
def test_non_numeric_dtypes_are_rejected(dtype: Any) -> None:
    message = r"^dtype \S+ is not a tensor dtype: tensors hold numbers or booleans"
    with pytest.raises(TypeError, match=message):
        sf.constant(1, dtype=dtype)
    with pytest.raises(TypeError, match=message):
        sf.convert_to_tensor(1, dtype=dtype)
    with pytest.raises(TypeError, match=message):
        sf.Variable(1, dtype=dtype)
    with sf.Graph().as_default(), pytest.raises(TypeError, match=message):
        sf.placeholder(dtype)


def test_numeric_arrays_and_lists_of_tensors_still_convert() -> None:
    for dtype in (np.bool_, np.int8, np.uint16, np.int64, np.float16, np.float64, np.complex64):
        assert sf.constant(np.zeros(2, dtype)).dtype == dtype
    assert sf.constant([sf.constant(1.0), 2.0]).tolist() == [1.0, 2.0]


def test_eager_array_protocol_honours_copy() -> None:
    x = sf.constant([1.0, 2.0])
    view = np.asarray(x)
    assert not view.flags.writeable
    copied = np.array(x, copy=True)
    copied[0] = 5.0
    assert x.tolist() == [1.0, 2.0]
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match=re.escape("without a copy (copy=False)")):
        np.asarray(x, dtype=np.float64, copy=False)


def test_variable_hash_check_is_thread_safe_and_stable() -> None:
    """Hashability depends on the variable, not on each thread's mode."""
    g = sf.Graph()
    with g.as_default():
        gv = sf.Variable(1.0)
    ev = sf.Variable(1.0)
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def worker(enter_graph: bool) -> None:
        barrier.wait()
        if enter_graph:
            with sf.Graph().as_default():
                results.append((hash(gv) == id(gv), _raises_type_error(ev)))
        else:
            results.append((hash(gv) == id(gv), _raises_type_error(ev)))

    threads = [threading.Thread(target=worker, args=(flag,)) for flag in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(True, True), (True, True)]


def _raises_type_error(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return True
    return False


def test_control_dependency_on_a_fed_tensor_is_satisfied_by_the_feed() -> None:
    """Found while auditing: the fed placeholder's kernel used to run and demand a feed."""

    @sf.function
    def f(a: Any) -> Any:
        with sf.control_dependencies([a]):
            return a * 2.0

    assert f(sf.constant([1.5])).tolist() == [3.0]
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, name="p")
        with sf.control_dependencies([p]):
            y = sf.constant(1.0) + 1.0
    with sf.Session(g) as sess:
        assert sess.run(y, feed_dict={p: 0.0}) == 2.0
        missing = r"^You must feed a value for placeholder 'p'"
        with pytest.raises(sf.errors.InvalidArgumentError, match=missing):
            sess.run(y)


@pytest.mark.parametrize(
    "value", [np.array(["a"]), np.array([1.0, None], dtype=object)], ids=["str", "object"]
)
def test_traced_functions_reject_non_numeric_array_arguments(value: Any) -> None:
    f = sf.function(lambda a: a * 1)
    for _ in range(2):  # a failed trace leaves nothing behind: the retry fails the same way
        with pytest.raises(TypeError, match=r"^dtype \S+ is not a tensor dtype"):
            f(value)
    assert _context.current() is _context.root_frame()
    assert f(np.array([1.0, 2.0])).tolist() == [1.0, 2.0]
