"""The op registry: each op type declares its shape/dtype rule and its NumPy kernel.

An op is defined once, next to its kernel, with :func:`register_op`; the rule runs when
a graph op is built (and to validate eager calls), the kernel runs eagerly and in
sessions. Gradients attach to the same definition (``OpDef.grad``).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import zip_longest
from typing import Any, Final, final

import numpy as np

from .._graph import Shape

__all__ = [
    "REGISTRY",
    "OpDef",
    "Spec",
    "broadcast_shapes",
    "check_same_dtype",
    "register_op",
]

Spec = tuple[np.dtype[Any], Shape | None]
"""What a rule knows of a tensor: its dtype and static shape (None: unknown rank)."""

InferFn = Callable[[tuple[Spec, ...], dict[str, Any]], tuple[Spec, ...]]
KernelFn = Callable[..., Any]
GradFn = Callable[..., Any]
BindFn = Callable[[dict[str, Any]], Callable[..., Any]]


@final
class OpDef:
    """The definition of one op type.

    Attributes:
        type: the op type name (``"Add"``).
        infer: ``(input specs, attrs) -> output specs``; raises ``TypeError`` or
            ``ValueError`` for inputs the op does not accept.
        kernel: ``(attrs, *arrays) -> array | tuple of arrays | None`` on NumPy.
        same_dtype: Python values among the inputs take the dtype of the first tensor.
        differentiable: False for ops whose outputs have no gradient (comparisons).
        stateful: True for ops with side effects (never pruned or merged).
        grad: the gradient function, registered by the autodiff module.
        bind: optional ``attrs -> callable(*arrays)``: the kernel with the attributes of
            one op applied, as run plans call it (None: ``kernel`` with ``attrs`` first).
            Saves a Python frame per op and run for ops whose kernel wraps a NumPy
            function (about 60-100 ns each, bench_functions' MLP call).
        np_grad: the same gradient on NumPy arrays, for eager walks that no tape records
            (``_np_grad``), or None.
    """

    __slots__ = (
        "bind",
        "differentiable",
        "grad",
        "infer",
        "kernel",
        "np_grad",
        "same_dtype",
        "stateful",
        "type",
    )

    def __init__(
        self,
        op_type: str,
        infer: InferFn,
        kernel: KernelFn,
        *,
        same_dtype: bool,
        differentiable: bool,
        stateful: bool,
        bind: BindFn | None = None,
    ) -> None:
        self.type = op_type
        self.infer = infer
        self.kernel = kernel
        self.same_dtype = same_dtype
        self.differentiable = differentiable
        self.stateful = stateful
        self.grad: GradFn | None = None
        self.bind = bind
        self.np_grad: GradFn | None = None

    def __repr__(self) -> str:
        return f"<OpDef {self.type}>"


REGISTRY: Final[dict[str, OpDef]] = {}


def register_op(
    op_type: str,
    *,
    infer: InferFn,
    kernel: KernelFn,
    same_dtype: bool = True,
    differentiable: bool = True,
    stateful: bool = False,
    bind: BindFn | None = None,
) -> OpDef:
    """Define the op ``type``; raises ``ValueError`` if it is already defined."""
    if op_type in REGISTRY:
        msg = f"An op named {op_type!r} is already registered"
        raise ValueError(msg)
    opdef = REGISTRY[op_type] = OpDef(
        op_type, infer, kernel, same_dtype=same_dtype, differentiable=differentiable,
        stateful=stateful, bind=bind,
    )  # fmt: skip
    return opdef


def check_same_dtype(a: np.dtype[Any], b: np.dtype[Any]) -> None:
    """The rule shared by binary ops: ``TypeError`` unless both inputs have one dtype."""
    if a != b:
        msg = (
            f"both inputs must have the same dtype, got {a.name} and {b.name}; "
            f"use sf.cast() to convert one"
        )
        raise TypeError(msg)


def broadcast_shapes(a: Shape | None, b: Shape | None) -> Shape | None:
    """The NumPy broadcast of two static shapes; ``None`` entries are unknown sizes.

    Raises:
        ValueError: the shapes can never broadcast.
    """
    if a is None or b is None:
        return None
    if a == b:
        return a
    out: list[int | None] = []
    for da, db in zip_longest(reversed(a), reversed(b), fillvalue=1):
        if da == 1:
            out.append(db)
        elif db == 1 or da == db:
            out.append(da)
        elif da is None:
            out.append(db)
        elif db is None:
            out.append(da)
        else:
            msg = f"shapes {a} and {b} cannot be broadcast together"
            raise ValueError(msg)
    out.reverse()
    return tuple(out)
