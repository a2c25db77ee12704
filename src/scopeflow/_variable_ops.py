"""The ops that read and write variables: ``VarHandleOp``, ``ReadVariableOp`` and the
``Assign*VariableOp`` writes, with their shape rules and kernels.

The kernels reach the variable named by the op's ``var`` attribute (a
:class:`~scopeflow._variables.Variable`); reads and writes go through the read log
(``_read_log``), so a traced call's gradient replays its reads with the values they
returned then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import numpy as np

from ._ops._registry import Spec, register_op
from ._read_log import bind_read, logged_read, logged_write

if TYPE_CHECKING:
    from ._variables import Variable

__all__ = ["ASSIGN", "ASSIGN_ADD", "ASSIGN_SUB", "READ", "UPDATES", "VAR_HANDLE"]


def _var_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    var: Variable = attrs["var"]
    return ((var._dtype, var._shape),)


def _assign_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    var: Variable = attrs["var"]
    ((dtype, shape),) = specs
    var._check_value(dtype, shape)
    return ((var._dtype, var._shape),)


def _no_outputs(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return ()


def _assign(attrs: dict[str, Any], value: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return logged_write(attrs, attrs["var"]._update(None, value))


def _assign_add(attrs: dict[str, Any], delta: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return logged_write(attrs, attrs["var"]._update(np.add, delta))


def _assign_sub(attrs: dict[str, Any], delta: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return logged_write(attrs, attrs["var"]._update(np.subtract, delta))


# What each write op's kernel does to the value (see Variable._write).
UPDATES: Final = {
    "AssignVariableOp": None,
    "AssignAddVariableOp": np.add,
    "AssignSubVariableOp": np.subtract,
}

VAR_HANDLE = register_op(
    "VarHandleOp", infer=_no_outputs, kernel=lambda attrs: None, differentiable=False
)
READ = register_op(
    "ReadVariableOp", infer=_var_rule, kernel=logged_read, stateful=True, bind=bind_read,
)  # fmt: skip
ASSIGN = register_op(
    "AssignVariableOp",
    infer=_assign_rule,
    kernel=_assign,
    stateful=True,
    same_dtype=False,
    differentiable=False,
)
ASSIGN_ADD = register_op(
    "AssignAddVariableOp",
    infer=_assign_rule,
    kernel=_assign_add,
    stateful=True,
    differentiable=False,
)
ASSIGN_SUB = register_op(
    "AssignSubVariableOp",
    infer=_assign_rule,
    kernel=_assign_sub,
    stateful=True,
    differentiable=False,
)
