"""sf.function cache keys and argument binding (SPEC 7): values, binding, weak keys, retracing."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import re
import threading
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf
from scopeflow import _context


def _value(x: Any) -> Any:
    return np.asarray(x).tolist()


@pytest.fixture
def no_retracing_warning() -> Iterator[list[warnings.WarningMessage]]:
    """Record every RetracingWarning of the block (so a test can count them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sf.RetracingWarning)
        yield caught


# -- Python values: NaN, signed zeros, types ------------------------------------------


def test_negative_zero_gets_its_own_trace() -> None:
    @sf.function
    def inv(x: Any, c: Any) -> Any:
        return x / c  # 1 / -0.0 is -inf: the two zeros cannot share a trace

    one = sf.constant(1.0)
    assert _value(inv(one, 0.0)) == float("inf")
    assert _value(inv(one, -0.0)) == float("-inf")
    assert inv.trace_count == 2
    assert _value(inv(one, 0.0)) == float("inf")
    assert _value(inv(one, -0.0)) == float("-inf")
    assert inv.trace_count == 2


def test_nan_traces_once() -> None:
    @sf.function
    def f(x: Any, c: Any) -> Any:
        return x + c

    for _ in range(4):
        # A fresh NaN object each time: equality alone would never find the trace.
        assert np.isnan(_value(f(sf.constant(1.0), float("nan"))))
    f(sf.constant(1.0), -float("nan"))
    f(sf.constant(1.0), float("inf") - float("inf"))
    assert f.trace_count == 1


@pytest.mark.parametrize(
    ("make", "label"),
    [
        (lambda c: [c], "list"),
        (lambda c: (1, (c,)), "tuple"),
        (lambda c: {"k": c}, "dict"),
        (np.float32, "float32"),
        (np.float64, "float64"),
        (lambda c: complex(c, 1.0), "complex"),
    ],
)
def test_nan_and_signed_zero_keys_hold_inside_structures_and_numpy_scalars(
    make: Any, label: str
) -> None:
    @sf.function
    def f(x: Any, c: Any) -> Any:
        return x

    x = sf.constant(1.0)
    f(x, make(0.0))
    f(x, make(-0.0))
    assert f.trace_count == 2, label
    f(x, make(float("nan")))
    f(x, make(float("nan")))
    f(x, make(-float("nan")))
    assert f.trace_count == 3, label
    f(x, make(0.0))
    f(x, make(-0.0))
    assert f.trace_count == 3, label


def test_one_one_point_zero_and_true_trace_apart() -> None:
    @sf.function
    def f(c: Any) -> Any:
        return sf.constant(c)

    assert f(1).dtype == np.int32
    assert f(1.0).dtype == np.float32
    assert f(True).dtype == np.bool_
    assert f(np.float64(1.0)).dtype == np.float64
    assert f.trace_count == 4
    # The same holds inside containers and for mapping keys.
    g = sf.function(lambda c: sf.constant(1.0))
    values: list[Any] = [[1], [1.0], [True], {1: 0}, {True: 0}, {1.0: 0}]
    with pytest.warns(sf.RetracingWarning):
        _ = [g(value) for value in values]
    assert g.trace_count == 6
    for value in ([1], [1.0], [True], {1: 0}, {True: 0}, {1.0: 0}):
        g(value)
    assert g.trace_count == 6


# -- binding to the Python signature ----------------------------------------------------


def test_positional_keyword_and_default_share_one_trace() -> None:
    @sf.function
    def f(x: Any, scale: float = 3.0) -> Any:
        return x * scale

    x = sf.constant([1.0, 2.0])
    results = [f(x, 3.0), f(x, scale=3.0), f(scale=3.0, x=x), f(x), f(x=x)]
    assert [_value(r) for r in results] == [[3.0, 6.0]] * 5
    assert f.trace_count == 1
    f(x, scale=4.0)
    assert f.trace_count == 2


def test_keyword_only_varargs_and_varkw_bind() -> None:
    @sf.function
    def f(x: Any, *rest: Any, k: float = 1.0, **extra: Any) -> Any:
        total = x * k
        for r in rest:
            total = total + r
        for name in sorted(extra):
            total = total + extra[name]
        return total

    x = sf.constant(1.0)
    assert _value(f(x)) == 1.0
    assert _value(f(x, k=1.0)) == 1.0
    assert f.trace_count == 1
    assert _value(f(x, sf.constant(2.0), sf.constant(3.0), k=2.0)) == 7.0
    # **kwargs in another order is the same call.
    assert _value(f(x, a=sf.constant(1.0), b=sf.constant(2.0))) == 4.0
    assert _value(f(x, b=sf.constant(2.0), a=sf.constant(1.0))) == 4.0
    assert f.trace_count == 3


def test_positional_only_parameters() -> None:
    @sf.function
    def f(x: Any, /, y: float = 2.0, **kw: Any) -> Any:
        return x * y + len(kw)

    x = sf.constant(1.0)
    assert _value(f(x, 2.0)) == 2.0
    assert _value(f(x, y=2.0)) == 2.0
    assert f.trace_count == 1
    # A positional-only name given by keyword lands in **kw, as in Python.
    assert _value(f(x, x=5)) == 3.0


def test_methods_bind_without_self() -> None:
    class Model:
        @sf.function
        def scaled(self, x: Any, scale: float = 2.0) -> Any:
            return x * scale

    m = Model()
    x = sf.constant(1.0)
    assert [_value(r) for r in (m.scaled(x), m.scaled(x, 2.0), m.scaled(x=x, scale=2.0))] == [
        2.0
    ] * 3
    assert m.scaled.trace_count == 1
    with pytest.raises(
        TypeError, match=r"^scaled\(\) missing 1 required positional argument: 'x'$"
    ):
        m.scaled(scale=2.0)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda f, x: f(), r"^f\(\) missing 1 required positional argument: 'x'$"),
        (
            lambda f, x: f(x, 1.0, 2.0),
            r"^f\(\) takes from 1 to 2 positional arguments but 3 were given$",
        ),
        (lambda f, x: f(x, bogus=1), r"^f\(\) got an unexpected keyword argument 'bogus'$"),
        (lambda f, x: f(x, x=x), r"^f\(\) got multiple values for argument 'x'$"),
        (lambda f, x: f(scale=2.0), r"^f\(\) missing 1 required positional argument: 'x'$"),
    ],
    ids=["missing", "too-many", "unexpected", "twice", "missing-with-keyword"],
)
def test_bad_bindings_raise_type_error_naming_the_function(call: Any, pattern: str) -> None:
    @sf.function
    def f(x: Any, scale: float = 1.0) -> Any:
        return x * scale

    x = sf.constant(1.0)
    with pytest.raises(TypeError, match=pattern):
        call(f, x)
    assert f.trace_count == 0
    assert _context.current() is _context.root_frame()
    assert _value(f(x)) == 1.0


@pytest.mark.anyio
async def test_async_function_binds_and_reports_bad_calls() -> None:
    @sf.function
    async def f(x: Any, scale: float = 2.0) -> Any:
        await anyio.sleep(0)
        return x * scale

    x = sf.constant(1.0)
    async with anyio.create_task_group() as tg:
        for kwargs in ({}, {"scale": 2.0}):
            tg.start_soon(lambda kw=kwargs: f(x, **kw))
    assert _value(await f(scale=2.0, x=x)) == 2.0
    assert f.trace_count == 1
    with pytest.raises(TypeError, match=r"^f\(\) got an unexpected keyword argument 'y'"):
        await f(x, y=1)


# -- input_signature and concrete functions ---------------------------------------------


def test_input_signature_function_takes_keywords() -> None:
    @sf.function(input_signature=[sf.TensorSpec((None,), sf.float32)])
    def total(x: Any, bias: float = 1.0) -> Any:
        return sf.reduce_sum(x) + bias

    assert _value(total(x=sf.constant([1.0, 2.0]))) == 4.0
    assert _value(total([1.0, 2.0, 3.0])) == 7.0
    assert total.trace_count == 1
    with pytest.raises(TypeError, match=r"^total\(\) takes 1 tensor arguments .*keep their def"):
        total(sf.constant([1.0]), bias=2.0)
    with pytest.raises(TypeError, match=r"^total\(\) got an unexpected keyword argument 'y'"):
        total(y=sf.constant([1.0]))
    with pytest.raises(TypeError, match=r"^total\(\) missing the tensor argument 'x'"):
        total()
    with pytest.raises(TypeError, match=r"^total\(\) argument 'bias' is not covered by its in"):
        total(bias=2.0)
    with pytest.raises(ValueError, match=r"^total\(\) argument 0 .* for parameter 'x'$"):
        total(x=sf.constant([[1.0]]))
    assert total.trace_count == 1


def test_concrete_function_of_a_signature_function_is_callable() -> None:
    @sf.function(input_signature=[sf.TensorSpec((None,), sf.float32), sf.TensorSpec((), sf.int32)])
    def f(x: Any, n: Any) -> Any:
        return x * sf.cast(n, sf.float32)

    cf = f.get_concrete_function()
    assert _value(cf(sf.constant([1.0, 2.0]), sf.constant(3))) == [3.0, 6.0]
    assert _value(cf(n=sf.constant(2), x=sf.constant([1.0]))) == [2.0]
    assert _value(cf([1.0, 1.0], 4)) == [4.0, 4.0]
    assert f.get_concrete_function(sf.constant([5.0]), 1) is cf
    assert f.trace_count == 1
    with pytest.raises(TypeError, match=r"^ConcreteFunction 'f' .* missing the tensor argum"):
        cf(sf.constant([1.0]))
    with pytest.raises(TypeError, match=r"argument 1 \(dtype float32"):
        cf(sf.constant([1.0]), sf.constant(1.0))


def test_concrete_function_takes_keywords_and_defaults() -> None:
    @sf.function
    def f(x: Any, scale: float = 2.0) -> Any:
        return x * scale

    cf = f.get_concrete_function(sf.TensorSpec((None,), sf.float32))
    x = sf.constant([1.0, 2.0])
    assert _value(cf(x)) == [2.0, 4.0]
    assert _value(cf(x=x)) == [2.0, 4.0]
    assert _value(cf(x, scale=2.0)) == [2.0, 4.0]
    assert f.get_concrete_function(sf.TensorSpec((None,), sf.float32), scale=2.0) is cf
    with pytest.raises(TypeError, match=r"^ConcreteFunction 'f' was traced for .*got \(Tensor"):
        cf(x, scale=3.0)
    with pytest.raises(TypeError, match=r"^ConcreteFunction 'f' .*f\(\) got an unexpected"):
        cf(x, bogus=1)


# -- keys that do not keep arguments alive ----------------------------------------------


class _Config:
    """Unhashable (defines __eq__ only) but weak-referenceable."""

    def __init__(self, k: float) -> None:
        self.k = k

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Config) and other.k == self.k

    __hash__ = None  # type: ignore[assignment]


class _Plain:
    def __init__(self, k: float) -> None:
        self.k = k


@dataclasses.dataclass(frozen=True)
class _Frozen:
    k: float


@pytest.mark.parametrize("cls", [_Config, _Plain], ids=["unhashable", "identity-hashed"])
@pytest.mark.parametrize("caller", ["eager", "graph"])
def test_identity_keyed_arguments_are_not_kept_alive(cls: Any, caller: str) -> None:
    @sf.function
    def f(x: Any, cfg: Any) -> Any:
        return x * cfg.k

    g = sf.Graph()
    with contextlib.ExitStack() as stack:
        if caller == "graph":
            stack.enter_context(g.as_default())
        x = sf.constant(1.0)
        cfg = cls(3.0)
        if caller == "eager":  # (a call op in a graph holds its trace, as it must)
            f(x, cfg)
            f(x, cfg)
        trace = weakref.ref(f.get_concrete_function(x, cfg).graph)
        assert f.trace_count == 1
        ref = weakref.ref(cfg)
        del cfg
        gc.collect()
        assert ref() is None
        assert trace() is None  # the trace keyed on it went with it
        other = cls(3.0)
        out = f(x, other)
        assert f.trace_count == 2  # identity, not equality: a new object traces again
    if caller == "eager":
        assert _value(out) == 3.0
    else:
        with sf.Session(g) as sess:
            assert _value(sess.run(out)) == 3.0


def test_hashable_values_key_by_value() -> None:
    f = sf.function(lambda x, cfg: x * cfg.k)
    x = sf.constant(1.0)
    assert _value(f(x, _Frozen(2.0))) == 2.0
    assert _value(f(x, _Frozen(2.0))) == 2.0
    assert f.trace_count == 1


def test_unhashable_argument_without_weak_references_is_refused() -> None:
    f = sf.function(lambda x, data: x)
    with pytest.raises(
        TypeError,
        match=r"^<lambda>\(\) argument 'data': cannot key a trace on bytearray bytearray\(b'ab'\): "
        r"it is neither hashable nor weak-referenceable; pass a tensor, a hashable value",
    ):
        f(sf.constant(1.0), bytearray(b"ab"))
    assert f.trace_count == 0
    assert _context.current() is _context.root_frame()
    assert _value(f(sf.constant(1.0), b"ab")) == 1.0


def test_threads_keying_one_object_share_one_trace() -> None:
    f = sf.function(lambda x, cfg: x * cfg.k)
    cfg = _Config(2.0)
    barrier = threading.Barrier(8)
    out: list[Any] = []

    def worker() -> None:
        barrier.wait()
        out.append(_value(f(sf.constant(1.0), cfg)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [2.0] * 8
    assert f.trace_count == 1


# -- RetracingWarning ---------------------------------------------------------------


def test_retracing_warns_once_naming_the_argument(
    no_retracing_warning: list[warnings.WarningMessage],
) -> None:
    assert issubclass(sf.RetracingWarning, UserWarning)

    @sf.function
    def f(x: Any, n: float) -> Any:
        return x * n

    x = sf.constant(1.0)
    for i in range(4):
        f(x, float(i))
    assert no_retracing_warning == []
    f(x, 4.0)
    assert len(no_retracing_warning) == 1
    text = str(no_retracing_warning[0].message)
    assert re.match(r"^f\(\) was traced 5 times in its last 10 calls", text), text
    assert "argument 'n', whose value changed from 3.0 to 4.0" in text
    assert "input_signature" in text
    assert "tensors" in text
    assert no_retracing_warning[0].filename == __file__  # points at the caller
    for i in range(5, 100):
        f(x, float(i))
    assert f.trace_count == 100
    assert len(no_retracing_warning) == 1


def test_retracing_on_shapes_names_the_shape(
    no_retracing_warning: list[warnings.WarningMessage],
) -> None:
    f = sf.function(lambda x: x + 1.0)
    for n in range(1, 7):
        f(sf.zeros((n,)))
    assert len(no_retracing_warning) == 1
    text = str(no_retracing_warning[0].message)
    assert "argument 'x', whose shape or dtype changed from Tensor(float32, shape=(4,))" in text


def test_warm_calls_between_traces_do_not_warn(
    no_retracing_warning: list[warnings.WarningMessage],
) -> None:
    f = sf.function(lambda x, n: x * n)
    x = sf.constant(1.0)
    for i in range(20):
        f(x, float(i))
        for _ in range(2):
            f(x, float(i))  # 1 trace in every 3 calls: fewer than 5 in any 10
    assert f.trace_count == 20
    assert no_retracing_warning == []


def test_concurrent_callers_of_one_new_key_count_one_trace(
    no_retracing_warning: list[warnings.WarningMessage],
) -> None:
    f = sf.function(lambda x, n: x * n)
    x = sf.constant(1.0)
    for n in range(4):
        barrier = threading.Barrier(6)

        def worker(n: float = float(n), barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            f(x, n)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert f.trace_count == 4
    assert no_retracing_warning == []


def test_threads_retracing_at_once_warn_exactly_once(
    no_retracing_warning: list[warnings.WarningMessage],
) -> None:
    f = sf.function(lambda x, n: x * n)
    x = sf.constant(1.0)
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        for j in range(10):
            f(x, float(i * 100 + j))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert f.trace_count == 80
    assert len(no_retracing_warning) == 1


@pytest.mark.anyio
async def test_async_tasks_retracing_warn_once(
    no_retracing_warning: list[warnings.WarningMessage],
) -> None:
    @sf.function
    async def f(x: Any, n: float) -> Any:
        await anyio.sleep(0)  # other tasks trace meanwhile
        return x * n

    x = sf.constant(1.0)
    async with anyio.create_task_group() as tg:
        for i in range(12):
            tg.start_soon(f, x, float(i))
    assert f.trace_count == 12
    assert len(no_retracing_warning) == 1


def test_retracing_warning_can_be_an_error_without_breaking_the_function() -> None:
    f = sf.function(lambda x, n: x * n)
    x = sf.constant(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", sf.RetracingWarning)
        for i in range(4):
            f(x, float(i))
        with pytest.raises(sf.RetracingWarning):
            f(x, 4.0)
        assert _value(f(x, 4.0)) == 4.0  # warned once; the call now traces and runs
    assert f.trace_count == 5
