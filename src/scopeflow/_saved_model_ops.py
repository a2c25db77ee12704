"""What the kernels of a loaded graph rely on and their shape rules do not check.

A saved model's attributes come from an untrusted file. Most ops' rules check every
attribute their kernels read, so the builder's comparison of recorded and inferred
outputs covers them; the ops here hold arrays, variables, functions, random streams or
print templates, whose kernels read more. :func:`prepare_attrs` runs before an op's rule
(it gives a random op its draw source, which is never saved); :func:`check_op` after it.
Every failure is a ``TypeError`` or ``ValueError`` that the builder reports as a
``ValueError`` naming the file, function and op.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from ._concrete import ConcreteFunction, TensorSpec
from ._graph import Tensor
from ._ops._debug import _COMPARE, _TENSOR, _TEXT
from ._ops._indexing import Slot
from ._ops._random import _SAMPLERS
from ._ops._seeds import _UNSEEDED, _OpStream
from ._saved_model_format import MAX_VALUE_DEPTH, RANDOM_OPS, RANDOM_RUNTIME_ATTRS
from ._variables import Variable

__all__ = ["check_op", "prepare_attrs", "specs_text"]


def prepare_attrs(op_type: str, attrs: dict[str, Any]) -> None:
    """Give a random op the draw source its seed names (a source is never saved).

    A seeded op gets a fresh stream of its seed pair, so the loaded function draws what
    the saved one drew from its first call on, and new values on every call; an
    unseeded op draws from the process-wide generator.
    """
    if op_type not in RANDOM_OPS:
        return
    present = sorted(RANDOM_RUNTIME_ATTRS & attrs.keys())
    if present:
        msg = f"a random op's attributes {present} are made by the loader, not saved"
        raise ValueError(msg)
    seed = attrs.get("seed")
    if seed is None:
        attrs["rng"] = _UNSEEDED
        return
    if (
        not isinstance(seed, tuple)
        or len(seed) != 2
        or not all(type(p) is int and 0 <= p < 2**64 for p in seed)
    ):
        msg = f"attribute 'seed' must be null or a pair of integers in [0, 2**64), got {seed!r:.60}"
        raise ValueError(msg)
    attrs["rng"] = _OpStream(seed)


def _check_random(op_type: str, attrs: dict[str, Any]) -> None:
    dtype = attrs.get("dtype")
    if op_type in ("RandomStandardNormal", "TruncatedNormal", "RandomUniform"):
        dist = attrs.get("dist")
        if dist not in _SAMPLERS:
            msg = f"attribute 'dist' must be one of {sorted(_SAMPLERS)}, got {dist!r:.40}"
            raise ValueError(msg)
        if not isinstance(dtype, np.dtype) or dtype.kind != "f":
            msg = f"attribute 'dtype' must be a floating-point dtype, got {dtype!r:.40}"
            raise TypeError(msg)
    elif op_type in ("RandomUniformInt", "Multinomial") and (
        not isinstance(dtype, np.dtype) or dtype.kind not in "iu"
    ):
        msg = f"attribute 'dtype' must be an integer dtype, got {dtype!r:.40}"
        raise TypeError(msg)


def _check_key(key: Any, n_slots: int) -> None:
    """A tensor getitem key: ints, None, ``...``, slices and slots of the op's inputs."""
    if not isinstance(key, tuple):
        msg = f"attribute 'key' must be a tuple, got {key!r:.60}"
        raise TypeError(msg)

    def part_ok(p: Any) -> bool:
        if type(p) is Slot:
            return 1 <= p.index <= n_slots
        if p is None:
            return True
        return type(p) is int and -(2**63) <= p < 2**63

    for part in key:
        if type(part) is slice:
            ok = all(part_ok(b) for b in (part.start, part.stop, part.step))
            ok = ok and part.step != 0
        else:
            ok = part is Ellipsis or part_ok(part)
        if not ok:
            msg = (
                f"attribute 'key' holds {part!r:.40}; a key holds ints, None, ..., slices "
                f"and slots of the op's {n_slots} index inputs"
            )
            raise ValueError(msg)


def _check_template(template: Any, n_inputs: int, depth: int = 0) -> None:
    """A print template: text, or (marker, body) pairs (see ``_ops._debug._template``)."""
    if isinstance(template, str):
        return
    bad = f"a print template entry must be text or a (marker, value) pair, got {template!r:.60}"
    if depth > MAX_VALUE_DEPTH or not isinstance(template, tuple) or len(template) != 2:
        raise ValueError(bad)
    kind, body = template
    if kind is _TENSOR:
        ok = type(body) is int and 0 <= body < n_inputs
    elif kind is _TEXT:
        ok = isinstance(body, str)
    elif kind is dict:
        ok = isinstance(body, list) and all(
            isinstance(kv, tuple) and len(kv) == 2 and isinstance(kv[0], str) for kv in body
        )
        for kv in body if ok else ():
            _check_template(kv[1], n_inputs, depth + 1)
    elif kind in (list, tuple):
        ok = isinstance(body, list)
        for item in body if ok else ():
            _check_template(item, n_inputs, depth + 1)
    else:
        ok = False
    if not ok:
        raise ValueError(bad)


def _check_assert(attrs: dict[str, Any]) -> None:
    if attrs["cmp"] not in _COMPARE:
        msg = f"attribute 'cmp' must be one of {sorted(_COMPARE)}, got {attrs['cmp']!r:.40}"
        raise ValueError(msg)
    names = attrs["names"]
    if not (
        isinstance(attrs["what"], str)
        and isinstance(attrs["message"], str)
        and isinstance(names, (list, tuple))
        and len(names) == 2
        and all(isinstance(n, str) for n in names)
    ):
        msg = "attributes 'what' and 'message' must be strings, 'names' a pair of strings"
        raise TypeError(msg)
    _check_summarize(attrs["summarize"])


def _check_summarize(summarize: Any) -> None:
    if summarize is not None and (type(summarize) is not int or not -1 <= summarize < 2**31):
        msg = f"attribute 'summarize' must be null or an integer >= -1, got {summarize!r:.40}"
        raise ValueError(msg)


def _check_print(attrs: dict[str, Any], n_inputs: int) -> None:
    template = attrs.get("template")
    if not isinstance(template, list):
        msg = f"attribute 'template' must be a list, got {template!r:.60}"
        raise TypeError(msg)
    for entry in template:
        _check_template(entry, n_inputs)
    if attrs.get("output_stream") is not None:
        msg = "a loaded print writes to sys.stdout: attribute 'output_stream' must be null"
        raise ValueError(msg)
    if not isinstance(attrs.get("sep"), str) or not isinstance(attrs.get("end"), str):
        msg = "attributes 'sep' and 'end' must be strings"
        raise TypeError(msg)
    _check_summarize(attrs.get("summarize"))


def specs_text(specs: Any) -> str:
    """``float32[2, None], int32(unknown rank)``: specs for messages."""
    return ", ".join(f"{d.name}{list(s) if s is not None else '(unknown rank)'}" for d, s in specs)


def _fits(t: Tensor, ph: Tensor) -> bool:
    return TensorSpec(ph._shape, ph._dtype).is_compatible_with(t._dtype, t._shape)


def _function_attr(attrs: dict[str, Any], key: str) -> ConcreteFunction:
    value = attrs.get(key)
    if not isinstance(value, ConcreteFunction):
        msg = f"attribute {key!r} must be a function, got {value!r:.60}"
        raise TypeError(msg)
    return value


def _int_attr(attrs: dict[str, Any], key: str, lo: int, hi: int) -> int:
    value = attrs.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        msg = f"attribute {key!r} must be an integer in [{lo}, {hi}], got {value!r:.60}"
        raise ValueError(msg)
    return value


def _check_args(fn: ConcreteFunction, args: tuple[Tensor, ...], what: str) -> None:
    phs = fn.graph.inputs
    if len(args) != len(phs) or not all(_fits(t, ph) for t, ph in zip(args, phs, strict=True)):
        want = specs_text((p._dtype, p._shape) for p in phs)
        given = specs_text((t._dtype, t._shape) for t in args)
        msg = f"{what} {fn.name!r} takes {want}, given {given}"
        raise ValueError(msg)


# The attributes the kernels of these ops read (their rules may not read them all).
_ATTR_KEYS: Final = {
    "Const": {"value", "dtype", "shape"},
    "Placeholder": {"dtype", "shape", "name"},
    "PartitionedCall": {"f"},
    "StatefulPartitionedCall": {"f"},
    "If": {"then", "else", "n_then"},
    "StatelessIf": {"then", "else", "n_then"},
    "While": {"cond", "body", "n_vars", "n_cond", "max"},
    "StatelessWhile": {"cond", "body", "n_vars", "n_cond", "max"},
    "ReadVariableOp": {"var"},
    "AssignVariableOp": {"var"},
    "AssignAddVariableOp": {"var"},
    "AssignSubVariableOp": {"var"},
    "VarHandleOp": {"var"},
    "Fill": {"value"},
    "Pad": {"constant_values"},
    "DynamicPad": {"constant_values"},
    "PrintV2": {"template", "output_stream", "sep", "end", "summarize"},
    "Assert": {"cmp", "what", "summarize", "names", "message"},
    "CheckNumerics": {"message"},
}


# Reductions with their axes as an attribute, and with the axes as an input (no "axis").
_REDUCTIONS: Final = frozenset({"Sum", "Mean", "Max", "Min", "Prod", "Any", "All"})
_AXIS_OPS: Final = _REDUCTIONS | {f"Dynamic{t}" for t in _REDUCTIONS} | {
    "Concat", "ArgMax", "ArgMin", "Pad", "DynamicPad",
}  # fmt: skip
# NumPy arrays have at most 64 dimensions: no axis beyond them can ever be valid.
_MAX_RANK: Final = 64


def _check_axis_attrs(op_type: str, attrs: dict[str, Any], inputs: tuple[Tensor, ...]) -> None:
    """What the rules check only when the input's rank is known (a loaded graph's inputs
    may have none): the axis and keepdims of reductions, the axis of concat and
    argmax/argmin, and a pad's fill value."""
    if op_type in ("Pad", "DynamicPad"):
        fill = attrs.get("constant_values")
        if fill is not None and not (
            isinstance(fill, np.ndarray) and fill.ndim == 0 and fill.dtype.kind in "biuf"
        ):
            msg = (
                f"attribute 'constant_values' must be null or a numeric scalar array, got "
                f"{fill!r:.60}"
            )
            raise ValueError(msg)
        return
    if op_type in ("Concat", "ArgMax", "ArgMin"):
        _int_attr(attrs, "axis", -_MAX_RANK, _MAX_RANK - 1)
        return
    if type(attrs.get("keepdims")) is not bool:
        msg = f"attribute 'keepdims' must be a bool, got {attrs.get('keepdims')!r:.40}"
        raise TypeError(msg)
    if op_type in _REDUCTIONS:
        axis = attrs.get("axis")
        if axis is not None and not (
            isinstance(axis, tuple)
            and all(type(a) is int and -_MAX_RANK <= a < _MAX_RANK for a in axis)
        ):
            msg = (
                f"attribute 'axis' must be null or a tuple of integers in "
                f"[{-_MAX_RANK}, {_MAX_RANK - 1}], got {axis!r:.60}"
            )
            raise ValueError(msg)


def check_op(op_type: str, attrs: dict[str, Any], inputs: tuple[Tensor, ...]) -> None:
    """What the kernels of the ops that hold arrays, variables and functions rely on, and
    their shape rules do not check."""
    keys = _ATTR_KEYS.get(op_type)
    if keys is not None and not keys <= attrs.keys():
        msg = f"a {op_type} op needs the attributes {sorted(keys)}, got {sorted(attrs)}"
        raise ValueError(msg)
    if op_type in RANDOM_OPS:
        _check_random(op_type, attrs)
    elif op_type == "TensorGetItem":
        _check_key(attrs.get("key"), len(inputs) - 1)
    elif op_type == "TensorGetItemGrad":
        _check_key(attrs.get("key"), len(inputs) - 2)
    elif op_type == "PrintV2":
        _check_print(attrs, len(inputs))
    elif op_type == "Assert":
        _check_assert(attrs)
    elif op_type == "CheckNumerics" and not isinstance(attrs["message"], str):
        msg = "attribute 'message' must be a string"
        raise TypeError(msg)
    elif op_type in ("Gather", "GatherGrad"):
        # sf.gather() normalises a negative batch_dims before the rule sees it.
        _int_attr(attrs, "batch_dims", 0, 2**31)
        _int_attr(attrs, "axis", -_MAX_RANK, _MAX_RANK - 1)
    elif op_type in _AXIS_OPS:
        _check_axis_attrs(op_type, attrs, inputs)
    if op_type == "Const":
        value = attrs.get("value")
        if not isinstance(value, np.ndarray) or (value.dtype, value.shape) != (
            attrs.get("dtype"),
            attrs.get("shape"),
        ):
            msg = "a Const's value must be an array of its dtype and shape"
            raise ValueError(msg)
    elif op_type == "Placeholder":
        if not isinstance(attrs.get("dtype"), np.dtype):
            msg = "a Placeholder's dtype attribute must be a dtype"
            raise ValueError(msg)
    elif op_type in ("ReadVariableOp", "AssignVariableOp", "AssignAddVariableOp",
                     "AssignSubVariableOp", "VarHandleOp"):  # fmt: skip
        if not isinstance(attrs.get("var"), Variable):
            msg = "attribute 'var' must be a variable"
            raise TypeError(msg)
    elif op_type in ("PartitionedCall", "StatefulPartitionedCall"):
        _check_args(_function_attr(attrs, "f"), inputs, "the called function")
    elif op_type in ("If", "StatelessIf"):
        then, other = _function_attr(attrs, "then"), _function_attr(attrs, "else")
        n_then = _int_attr(attrs, "n_then", 0, len(inputs) - 1)
        if not inputs or inputs[0]._dtype != np.bool_ or inputs[0]._shape not in ((), None):
            msg = "the first input of an If is a bool scalar predicate"
            raise ValueError(msg)
        _check_args(then, inputs[1 : 1 + n_then], "the true branch")
        _check_args(other, inputs[1 + n_then :], "the false branch")
        if len(then.graph.outputs) != len(other.graph.outputs):
            msg = "the branches of an If return different numbers of outputs"
            raise ValueError(msg)
    elif op_type in ("While", "StatelessWhile", "WhileGrad"):
        cond, body = _function_attr(attrs, "cond"), _function_attr(attrs, "body")
        n = len(inputs) if op_type != "WhileGrad" else _int_attr(attrs, "n_inputs", 1, len(inputs))
        n_vars = _int_attr(attrs, "n_vars", 1, n)
        n_cond = _int_attr(attrs, "n_cond", 0, n - n_vars)
        if attrs.get("max") is not None:
            _int_attr(attrs, "max", 0, 2**63 - 1)
        _check_args(cond, inputs[: n_vars + n_cond], "the loop condition")
        _check_args(body, inputs[:n_vars] + inputs[n_vars + n_cond : n], "the loop body")
        outs = cond.graph.outputs
        if len(outs) != 1 or outs[0]._dtype != np.bool_ or outs[0]._shape not in ((), None):
            msg = "a loop condition returns one bool scalar"
            raise ValueError(msg)
        body_out = body.graph.outputs
        if len(body_out) < n_vars or any(
            not _fits(t, ph) for t, ph in zip(body_out, inputs[:n_vars], strict=False)
        ):
            msg = "a loop body returns a value of each loop variable's dtype and shape"
            raise ValueError(msg)
        if op_type == "WhileGrad":
            slots, variables = attrs.get("slots"), attrs.get("variables")
            if not isinstance(slots, list) or not all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s < n for s in slots
            ):
                msg = f"attribute 'slots' must list input positions below {n}"
                raise ValueError(msg)
            if not isinstance(variables, list) or not all(
                isinstance(v, Variable) for v in variables
            ):
                msg = "attribute 'variables' must list variables"
                raise TypeError(msg)
