"""Loop-variable shape invariants of ``while_loop`` (SPEC section 10).

Each loop variable has a shape invariant: by default its initial static shape, or what
``shape_invariants=`` gives (a tuple with None for a dimension that may change, or None
for an unknown rank). At build time the initial value must be compatible with it and the
body's result must fit it; the loop's outputs claim it as their static shape, and where
static shapes cannot prove a value fits, the kernel checks at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._graph import Shape, Tensor
from .errors import InvalidArgumentError

__all__ = [
    "check_body",
    "check_entry",
    "check_run_shapes",
    "fits",
    "flat_invariants",
    "var_names",
]


def check_run_shapes(attrs: dict[str, Any], values: Sequence[Any], when: str) -> None:
    """Raise InvalidArgumentError if a loop value breaks its shape invariant (run time)."""
    for i, inv in attrs["checked"]:
        shape = np.shape(values[i])
        if len(shape) != len(inv) or any(
            d is not None and d != n for d, n in zip(inv, shape, strict=True)
        ):
            msg = (
                f"while_loop {attrs['label']!r}: loop variable {attrs['names'][i]} has "
                f"shape {shape} {when}, which breaks its shape invariant {inv}"
            )
            raise InvalidArgumentError(msg)


def var_names(leaves: Sequence[Any]) -> list[str]:
    """How messages name each loop variable: its position, and its tensor's name."""
    return [f"{i} ({x.name!r})" if isinstance(x, Tensor) else str(i) for i, x in enumerate(leaves)]


def _as_shape(value: Any, name: str, label: str) -> Shape | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and all(
        d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0)
        for d in value
    ):
        return tuple(None if d is None else int(d) for d in value)
    msg = (
        f"while_loop {label!r}: the shape invariant of loop variable {name} must be a shape "
        f"(a tuple of non-negative ints, None for an unknown dimension) or None for an "
        f"unknown rank; got {value!r}"
    )
    raise TypeError(msg)


def flat_invariants(
    template: Any, invariants: Any, names: Sequence[str], label: str
) -> list[Shape | None]:
    """``shape_invariants`` flattened along ``loop_vars``' template (shapes are leaves)."""
    out: list[Shape | None] = [None] * len(names)

    def walk(tmpl: Any, inv: Any, path: str) -> None:
        if isinstance(tmpl, int):
            out[tmpl] = _as_shape(inv, names[tmpl], label)
            return
        kind, items = tmpl
        if kind == "const":
            return  # a None loop variable has no shape to constrain
        if issubclass(kind, Mapping):
            if not isinstance(inv, Mapping) or set(inv) != {k for k, _ in items}:
                raise _structure_error(label, path, inv)
            for k, item in items:
                walk(item, inv[k], f"{path}[{k!r}]")
            return
        if not isinstance(inv, (list, tuple)) or len(inv) != len(items):
            raise _structure_error(label, path, inv)
        for j, item in enumerate(items):
            walk(item, inv[j], f"{path}[{j}]")

    walk(template, invariants, "shape_invariants")
    return out


def _structure_error(label: str, path: str, inv: Any) -> ValueError:
    msg = (
        f"while_loop {label!r}: shape_invariants must have the structure of loop_vars, with "
        f"one shape per tensor; {path} is {inv!r}, which does not match"
    )
    return ValueError(msg)


def fits(shape: Shape | None, invariant: Shape | None) -> bool:
    """Whether every value of static ``shape`` has a shape allowed by ``invariant``."""
    if invariant is None:
        return True
    if shape is None or len(shape) != len(invariant):
        return False
    return all(d is None or d == n for d, n in zip(invariant, shape, strict=True))


def _compatible(a: Shape | None, b: Shape | None) -> bool:
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(
        x is None or y is None or x == y for x, y in zip(a, b, strict=True)
    )


def check_entry(
    tensors: Sequence[Any], invariants: Sequence[Shape | None], names: Sequence[str], label: str
) -> None:
    for t, inv, name in zip(tensors, invariants, names, strict=True):
        if not _compatible(t.shape, inv):
            msg = (
                f"while_loop {label!r}: loop variable {name} enters the loop with shape "
                f"{t.shape}, which its shape invariant {inv} does not allow"
            )
            raise ValueError(msg)


def check_body(
    before: Sequence[Any],
    after: Sequence[Any],
    invariants: Sequence[Shape | None],
    names: Sequence[str],
    where: str,
    relaxed: bool,
) -> None:
    """The body's results keep each loop variable's dtype and fit its shape invariant."""
    for a, b, inv, name in zip(before, after, invariants, names, strict=True):
        if a.dtype != b.dtype:
            msg = (
                f"{where}: loop variable {name} changed dtype from {a.dtype.name} to "
                f"{b.dtype.name}; the body must keep every loop variable's dtype"
            )
            raise TypeError(msg)
        if not fits(b.shape, inv):
            if relaxed:
                msg = (
                    f"{where}: the body returns shape {b.shape} for loop variable {name}, "
                    f"which its shape invariant {inv} does not allow; pass a less specific "
                    f"invariant (None for a dimension that changes, None for an unknown rank)"
                )
            else:
                msg = (
                    f"{where}: loop variable {name} changed shape from {inv} to {b.shape} "
                    f"in the body; the body must keep every loop variable's shape, or "
                    f"shape_invariants= must allow the change (None for a dimension that "
                    f"varies, None for an unknown rank)"
                )
            raise ValueError(msg)
