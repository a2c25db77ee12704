"""Python operators shared by graph tensors, eager tensors and variables.

The op functions live in ``_ops``, which imports the tensor classes; ``_ops`` binds
itself here when it is imported so this module needs no import cycle.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

__all__ = ["TensorOperators", "bind"]

_ops: Any = None


def bind(ops_module: ModuleType) -> None:
    """Install the module whose functions implement the operators."""
    global _ops
    _ops = ops_module


class TensorOperators:
    """Arithmetic, comparison and matrix operators, each one an op."""

    __slots__ = ()
    # Make NumPy defer to our reflected operators (ndarray + tensor -> tensor).
    __array_priority__ = 100

    def __add__(self, other: Any) -> Any:
        return _ops.add(self, other)

    def __radd__(self, other: Any) -> Any:
        return _ops.add(other, self)

    def __sub__(self, other: Any) -> Any:
        return _ops.subtract(self, other)

    def __rsub__(self, other: Any) -> Any:
        return _ops.subtract(other, self)

    def __mul__(self, other: Any) -> Any:
        return _ops.multiply(self, other)

    def __rmul__(self, other: Any) -> Any:
        return _ops.multiply(other, self)

    def __truediv__(self, other: Any) -> Any:
        return _ops.divide(self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return _ops.divide(other, self)

    def __matmul__(self, other: Any) -> Any:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return _ops.matmul(other, self)

    def __pow__(self, other: Any) -> Any:
        return _ops.pow(self, other)

    def __rpow__(self, other: Any) -> Any:
        return _ops.pow(other, self)

    def __neg__(self) -> Any:
        return _ops.negative(self)

    def __pos__(self) -> Any:
        return self

    def __lt__(self, other: Any) -> Any:
        return _ops.less(self, other)

    def __le__(self, other: Any) -> Any:
        return _ops.less_equal(self, other)

    def __gt__(self, other: Any) -> Any:
        return _ops.greater(self, other)

    def __ge__(self, other: Any) -> Any:
        return _ops.greater_equal(self, other)

    def __mod__(self, other: Any) -> Any:
        return _ops.mod(self, other)

    def __rmod__(self, other: Any) -> Any:
        return _ops.mod(other, self)

    def __floordiv__(self, other: Any) -> Any:
        return _ops.floordiv(self, other)

    def __rfloordiv__(self, other: Any) -> Any:
        return _ops.floordiv(other, self)

    # & | ^ ~ are logical on bool tensors and bitwise on integer ones (this tensor's
    # dtype decides, on either side of the operator).
    def __and__(self, other: Any) -> Any:
        return _ops.operator_and(self, self, other)

    def __rand__(self, other: Any) -> Any:
        return _ops.operator_and(self, other, self)

    def __or__(self, other: Any) -> Any:
        return _ops.operator_or(self, self, other)

    def __ror__(self, other: Any) -> Any:
        return _ops.operator_or(self, other, self)

    def __xor__(self, other: Any) -> Any:
        return _ops.operator_xor(self, self, other)

    def __rxor__(self, other: Any) -> Any:
        return _ops.operator_xor(self, other, self)

    def __invert__(self) -> Any:
        return _ops.operator_invert(self)

    def __getitem__(self, key: Any) -> Any:
        return _ops.getitem(self, key)
