"""Random ops on NumPy's ``Generator`` (PCG64), with seeds that are per context.

Seeds follow TensorFlow's two-level scheme, but the global seed lives in a ContextVar, so
a task's ``set_seed`` never changes what another task draws:

- neither a global nor an op seed: values come from one process-wide generator seeded
  from OS entropy (nondeterministic), guarded by a lock;
- a global seed and no op seed: the op seed is the next value of a per-context counter
  that ``set_seed`` resets, so a program re-run in a fresh context draws the same values;
- an op seed and no global seed: the global seed is a fixed default.

A seed pair ``(global, op)`` names a stream of draws; draw ``k`` of the stream comes from
``PCG64(SeedSequence((global, op, k)))``, so it is the same in every mode. Eagerly the
context counts the draws of each pair (two eager calls with one op seed differ, and a
fresh context repeats them); a graph op counts its own runs (each ``Session.run`` and
each call of a traced function draws new values).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np

from .._graph import Shape, Tensor
from .._tensor import EagerTensor, as_dtype
from ..errors import InvalidArgumentError
from ._core import apply
from ._math import add, multiply, subtract
from ._registry import Spec, register_op
from ._seeds import (
    DRAW_LOG,
    commit as _commit,
    drawn as _drawn,
    get_seed as get_seed,
    set_seed as set_seed,
    source as _source,
)
from ._static import pack_shape

__all__ = [
    "categorical",
    "get_seed",
    "normal",
    "set_seed",
    "shuffle",
    "truncated_normal",
    "uniform",
]

# -- shapes ----------------------------------------------------------------------------------


def _shape_arg(shape: Any, what: str) -> tuple[tuple[int, ...] | None, Any]:
    """A static shape (Python ints, eager or constant tensor) or a shape tensor input."""
    # ``[sf.shape(x)[0], 2]``: a list holding scalar tensors becomes one shape vector.
    try:
        shape = pack_shape(shape)
    except TypeError as err:
        msg = f"{what}: {err}"
        raise TypeError(msg) from None
    if isinstance(shape, Tensor):
        if shape.op.type == "Const":
            shape = shape.op._attrs["value"]
        else:
            if shape.dtype.kind not in "iu" or (shape.shape is not None and len(shape.shape) != 1):
                msg = (
                    f"{what}: a shape tensor must be a 1-D integer tensor, got "
                    f"{shape.name!r} ({shape.dtype.name}, shape {shape.shape})"
                )
                raise TypeError(msg)
            return None, shape
    if isinstance(shape, (EagerTensor, np.ndarray)):
        arr = np.asarray(shape)
        if arr.dtype.kind not in "iu" or arr.ndim > 1:
            msg = f"{what}: shape must be a 1-D integer tensor, got {arr.dtype.name} {arr.shape}"
            raise TypeError(msg)
        shape = arr.reshape(-1).tolist()
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, Sequence) or isinstance(shape, str):
        msg = f"{what}: shape must be a sequence of ints or a 1-D int tensor, got {shape!r}"
        raise TypeError(msg)
    dims = []
    for d in shape:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)):
            msg = f"{what}: shape {tuple(shape)!r} must hold ints, not {d!r}"
            raise TypeError(msg)
        if d < 0:
            msg = f"{what}: shape {tuple(shape)!r} has a negative size"
            raise ValueError(msg)
        dims.append(int(d))
    return tuple(dims), None


def _out_shape(attrs: dict[str, Any], shape_spec: Spec | None) -> Shape | None:
    if shape_spec is None:
        static: Shape = attrs["shape"]
        return static
    n = shape_spec[1]
    return None if n is None or n[0] is None else (None,) * n[0]


def _runtime_shape(attrs: dict[str, Any], shape: Any) -> tuple[int, ...]:
    if shape is None:
        static: tuple[int, ...] = attrs["shape"]
        return static
    dims = tuple(int(d) for d in np.asarray(shape).reshape(-1))
    if any(d < 0 for d in dims):
        msg = f"random op shape {dims} has a negative size"
        raise InvalidArgumentError(msg)
    return dims


def _float_dtype(dtype: Any, what: str) -> np.dtype[Any]:
    dt = as_dtype(dtype)
    if dt.kind != "f":
        msg = f"{what}: dtype must be a floating-point dtype such as sf.float32, got {dt.name}"
        raise TypeError(msg)
    return dt


# -- the ops -----------------------------------------------------------------------------------


def _once(rule: Callable[..., tuple[Spec, ...]]) -> Callable[..., tuple[Spec, ...]]:
    """Guard a random op's rule against building the op again from its attrs.

    Gradients of function calls, ``cond`` and ``while_loop`` replay the ops of their
    graphs. Eagerly the replay serves the values the call drew (see ``DrawLog``); when
    the replay is built into a graph (``sf.gradients``, or a tape inside a traced
    function), a replayed random op would draw new values at run time and the gradient
    would silently belong to other samples, so that raises instead.
    """

    def guarded(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
        if "built" in attrs and DRAW_LOG.get() is None:
            msg = (
                f"No gradient through the random op {attrs['built']} when it is "
                f"replayed in a graph: the gradient of a traced function, cond or "
                f"while_loop re-runs its ops, and this op would draw new values. Take "
                f"the gradient where the values are drawn (a GradientTape inside the "
                f"same function, with no sf.function, cond or while_loop in between), "
                f"or call the function eagerly under the tape"
            )
            raise LookupError(msg)
        out = rule(specs, attrs)
        attrs.setdefault("built", attrs.get("op", "random op"))
        return out

    return guarded


@_once
def _sample_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return ((attrs["dtype"], _out_shape(attrs, specs[0] if specs else None)),)


def _truncated(gen: np.random.Generator, size: tuple[int, ...]) -> np.ndarray[Any, Any]:
    out = gen.standard_normal(size)
    bad = np.abs(out) > 2.0
    while bad.any():  # redraw what fell outside two standard deviations
        out[bad] = gen.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out


_SAMPLERS: Final[dict[str, Callable[[np.random.Generator, tuple[int, ...]], Any]]] = {
    "normal": lambda gen, size: gen.standard_normal(size),
    "truncated": _truncated,
    "uniform": lambda gen, size: gen.random(size),
}


def _sample_kernel(attrs: dict[str, Any], shape: Any = None) -> np.ndarray[Any, Any]:
    size = _runtime_shape(attrs, shape)
    sampler = _SAMPLERS[attrs["dist"]]
    rng = attrs["rng"]
    out = _drawn(attrs, lambda: rng.draw(lambda gen: sampler(gen, size)))
    return np.asarray(out, dtype=attrs["dtype"])


# Random ops are stateful: never merged, and ordered with other side effects in functions.
STANDARD_NORMAL = register_op(
    "RandomStandardNormal", infer=_sample_rule, kernel=_sample_kernel, same_dtype=False,
    differentiable=False, stateful=True,
)  # fmt: skip
TRUNCATED_NORMAL = register_op(
    "TruncatedNormal", infer=_sample_rule, kernel=_sample_kernel, same_dtype=False,
    differentiable=False, stateful=True,
)  # fmt: skip
RANDOM_UNIFORM = register_op(
    "RandomUniform", infer=_sample_rule, kernel=_sample_kernel, same_dtype=False,
    differentiable=False, stateful=True,
)  # fmt: skip


def _sample(opdef: Any, dist: str, shape: Any, dtype: np.dtype[Any], seed: Any, what: str,
            name: str | None) -> Any:  # fmt: skip
    static, shape_input = _shape_arg(shape, what)
    pair, rng, after = _source(seed)
    attrs = {"dist": dist, "dtype": dtype, "shape": static, "seed": pair, "rng": rng, "op": what}
    inputs = () if shape_input is None else (shape_input,)
    out = apply(opdef, inputs, attrs, name)
    _commit(after)
    return out


def _is_value(x: Any, value: float) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == value


def _scale_shift(raw: Any, scale: Any, shift: Any) -> Any:
    """``raw * scale + shift`` with ordinary ops, so tensors for them get gradients."""
    out = raw if _is_value(scale, 1.0) else multiply(raw, scale)
    return out if _is_value(shift, 0.0) else add(out, shift)


def normal(
    shape: Any,
    mean: Any = 0.0,
    stddev: Any = 1.0,
    dtype: Any = np.float32,
    seed: int | None = None,
    name: str | None = None,
) -> Any:
    """Samples from a normal distribution.

    Args:
        shape: the output shape: ints, or a 1-D integer tensor.
        mean: the mean (a number or a tensor broadcastable to ``shape``).
        stddev: the standard deviation (a number or a tensor).
        dtype: a floating-point dtype.
        seed: the op seed (see :func:`set_seed`).
        name: the op name in graph mode.

    Example:
        >>> import scopeflow as sf
        >>> sf.random.normal((2, 3), seed=1).shape
        (2, 3)
    """
    dt = _float_dtype(dtype, "normal()")
    raw = _sample(STANDARD_NORMAL, "normal", shape, dt, seed, "normal()", name)
    return _scale_shift(raw, stddev, mean)


def truncated_normal(
    shape: Any,
    mean: Any = 0.0,
    stddev: Any = 1.0,
    dtype: Any = np.float32,
    seed: int | None = None,
    name: str | None = None,
) -> Any:
    """Samples from a normal distribution, redrawn when more than 2 stddevs from the mean.

    Arguments are those of :func:`normal`.

    Example:
        >>> import scopeflow as sf
        >>> bool((abs(sf.random.truncated_normal((100,), seed=3).numpy()) <= 2).all())
        True
    """
    dt = _float_dtype(dtype, "truncated_normal()")
    raw = _sample(TRUNCATED_NORMAL, "truncated", shape, dt, seed, "truncated_normal()", name)
    return _scale_shift(raw, stddev, mean)


@_once
def _int_bounds_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    for (dtype, shape), which in zip(specs[:2], ("minval", "maxval"), strict=True):
        if dtype != attrs["dtype"]:
            msg = f"{which} has dtype {dtype.name}, but dtype is {attrs['dtype'].name}"
            raise TypeError(msg)
        if shape is not None and shape != ():
            msg = f"{which} must be a scalar for an integer dtype, got shape {shape}"
            raise ValueError(msg)
    return ((attrs["dtype"], _out_shape(attrs, specs[2] if len(specs) > 2 else None)),)


def _int_uniform_kernel(
    attrs: dict[str, Any], lo: np.ndarray[Any, Any], hi: np.ndarray[Any, Any], shape: Any = None
) -> np.ndarray[Any, Any]:
    size = _runtime_shape(attrs, shape)
    low, high = lo.item(), hi.item()
    if not low < high:
        msg = f"uniform(): need minval < maxval, got minval={low} and maxval={high}"
        raise InvalidArgumentError(msg)
    dtype, rng = attrs["dtype"], attrs["rng"]
    return _drawn(  # type: ignore[no-any-return]
        attrs, lambda: rng.draw(lambda gen: gen.integers(low, high, size=size, dtype=dtype))
    )


RANDOM_UNIFORM_INT = register_op(
    "RandomUniformInt", infer=_int_bounds_rule, kernel=_int_uniform_kernel, same_dtype=False,
    differentiable=False, stateful=True,
)  # fmt: skip


def uniform(
    shape: Any,
    minval: Any = 0,
    maxval: Any = None,
    dtype: Any = np.float32,
    seed: int | None = None,
    name: str | None = None,
) -> Any:
    """Samples from a uniform distribution on ``[minval, maxval)``.

    Args:
        shape: the output shape: ints, or a 1-D integer tensor.
        minval: the lower bound (inclusive).
        maxval: the upper bound (exclusive); 1 by default for floats, required for
            integer dtypes.
        dtype: a floating-point or integer dtype.
        seed: the op seed (see :func:`set_seed`).
        name: the op name in graph mode.

    Raises:
        ValueError: an integer dtype without ``maxval``.
        InvalidArgumentError: an integer dtype with ``minval >= maxval`` (when it runs).

    Example:
        >>> import scopeflow as sf
        >>> v = sf.random.uniform((4,), minval=0, maxval=10, dtype=sf.int32, seed=2)
        >>> bool(((v.numpy() >= 0) & (v.numpy() < 10)).all())
        True
    """
    dt = as_dtype(dtype)
    if dt.kind in "iu":
        if maxval is None:
            msg = (
                f"uniform(): maxval must be given for the integer dtype {dt.name} "
                f"(there is no default range for integers)"
            )
            raise ValueError(msg)
        static, shape_input = _shape_arg(shape, "uniform()")
        bounds = [b if isinstance(b, (Tensor, EagerTensor)) else _int_scalar(b, dt)
                  for b in (minval, maxval)]  # fmt: skip
        pair, rng, after = _source(seed)
        attrs = {"dtype": dt, "shape": static, "seed": pair, "rng": rng, "op": "uniform()"}
        inputs = (*bounds, shape_input) if shape_input is not None else tuple(bounds)
        out = apply(RANDOM_UNIFORM_INT, inputs, attrs, name)
        _commit(after)
        return out
    if dt.kind != "f":
        msg = f"uniform(): dtype must be a floating-point or integer dtype, got {dt.name}"
        raise TypeError(msg)
    if maxval is None:
        maxval = 1.0
    raw = _sample(RANDOM_UNIFORM, "uniform", shape, dt, seed, "uniform()", name)
    if _is_value(minval, 0.0):
        return _scale_shift(raw, maxval, 0.0)
    scale = maxval - minval if _numbers(minval, maxval) else subtract(maxval, minval)
    return _scale_shift(raw, scale, minval)


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _int_scalar(value: Any, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        msg = f"uniform(): bounds for the integer dtype {dtype.name} must be ints, got {value!r}"
        raise TypeError(msg)
    info = np.iinfo(dtype)
    if not info.min <= value <= info.max:
        msg = f"uniform(): bound {value} does not fit in {dtype.name}"
        raise ValueError(msg)
    return np.asarray(value, dtype=dtype)


@_once
def _shuffle_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return specs


def _shuffle_kernel(attrs: dict[str, Any], value: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if value.ndim == 0:
        return value
    rng = attrs["rng"]
    return _drawn(attrs, lambda: rng.draw(lambda gen: gen.permutation(value, axis=0)))  # type: ignore[no-any-return]


# Differentiable but without a gradient, as in TensorFlow: a gradient through it raises
# LookupError naming the op rather than returning None (SPEC section 9).
RANDOM_SHUFFLE = register_op(
    "RandomShuffle", infer=_shuffle_rule, kernel=_shuffle_kernel, same_dtype=False,
    stateful=True,
)  # fmt: skip


def shuffle(value: Any, seed: int | None = None, name: str | None = None) -> Any:
    """``value`` with its first dimension randomly permuted.

    Example:
        >>> import scopeflow as sf
        >>> sorted(sf.random.shuffle([1, 2, 3, 4], seed=5).numpy().tolist())
        [1, 2, 3, 4]
    """
    pair, rng, after = _source(seed)
    attrs = {"seed": pair, "rng": rng, "op": "shuffle()"}
    out = apply(RANDOM_SHUFFLE, (value,), attrs, name)
    _commit(after)
    return out


@_once
def _categorical_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    if dtype.kind != "f":
        msg = f"categorical(): logits must be floating point, got dtype {dtype.name}"
        raise TypeError(msg)
    if shape is not None and len(shape) != 2:
        msg = f"categorical(): logits must be 2-D [batch_size, num_classes], got shape {shape}"
        raise ValueError(msg)
    batch = None if shape is None else shape[0]
    return ((attrs["dtype"], (batch, attrs["num_samples"])),)


def _categorical_kernel(attrs: dict[str, Any], logits: np.ndarray[Any, Any]) -> Any:
    n = attrs["num_samples"]
    if logits.shape[1] == 0 and n > 0 and logits.shape[0] > 0:
        msg = "categorical(): logits have no classes to sample from"
        raise InvalidArgumentError(msg)
    x = logits.astype(np.float64)
    with np.errstate(all="ignore"):
        top = x.max(axis=1, keepdims=True) if x.shape[1] else np.zeros((x.shape[0], 1))
        cum = np.cumsum(np.exp(x - top), axis=1)
    if x.shape[1] and not np.all(np.isfinite(cum[:, -1]) & (cum[:, -1] > 0)):
        msg = f"categorical(): every row of logits needs a finite maximum, got {logits[:3]}"
        raise InvalidArgumentError(msg)
    rng = attrs["rng"]
    u = _drawn(attrs, lambda: rng.draw(lambda gen: gen.random((x.shape[0], n))))
    out = np.empty((x.shape[0], n), dtype=attrs["dtype"])
    for i in range(x.shape[0]):
        idx = np.searchsorted(cum[i], u[i] * cum[i, -1], side="right")
        out[i] = np.minimum(idx, x.shape[1] - 1)
    return out


MULTINOMIAL = register_op(
    "Multinomial", infer=_categorical_rule, kernel=_categorical_kernel, same_dtype=False,
    differentiable=False, stateful=True,
)  # fmt: skip


def categorical(
    logits: Any,
    num_samples: int,
    dtype: Any = np.int64,
    seed: int | None = None,
    name: str | None = None,
) -> Any:
    """Class indices drawn from the categorical distributions given by ``logits``.

    Args:
        logits: ``[batch_size, num_classes]`` unnormalised log-probabilities.
        num_samples: how many samples to draw per row.
        dtype: the integer dtype of the result.
        seed: the op seed (see :func:`set_seed`).
        name: the op name in graph mode.

    Returns:
        A ``[batch_size, num_samples]`` tensor of class indices.

    Example:
        >>> import scopeflow as sf
        >>> sf.random.categorical([[0.0, -1e9]], 3, seed=4).numpy().tolist()
        [[0, 0, 0]]
    """
    dt = as_dtype(dtype)
    if dt.kind not in "iu":
        msg = f"categorical(): dtype must be an integer dtype, got {dt.name}"
        raise TypeError(msg)
    if isinstance(num_samples, (bool, np.bool_)):
        msg = f"categorical(): num_samples must be an int, got {num_samples!r}"
        raise TypeError(msg)
    try:
        n = operator.index(num_samples)
    except TypeError:
        msg = f"categorical(): num_samples must be an int, got {num_samples!r}"
        raise TypeError(msg) from None
    if n < 0:
        msg = f"categorical(): num_samples must be >= 0, got {n}"
        raise ValueError(msg)
    pair, rng, after = _source(seed)
    attrs = {"num_samples": n, "dtype": dt, "seed": pair, "rng": rng, "op": "categorical()"}
    out = apply(MULTINOMIAL, (logits,), attrs, name)
    _commit(after)
    return out
