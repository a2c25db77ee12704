"""Python operators shared by graph tensors, eager tensors and variables.

The op functions live in ``_ops``, which imports the tensor classes; ``_ops`` binds
itself here when it is imported so this module needs no import cycle.

Equality follows TensorFlow 2 (SPEC section 6): where ``executing_eagerly_outside_functions()``
holds, ``==`` and ``!=`` on eager values and on tensors of function graphs are element-wise
ops, and such objects are unhashable (``.ref()`` gives a hashable key). Tensors of plain
graphs keep identity equality and hashing, so they can key a ``feed_dict``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, final

import numpy as np

__all__ = ["Reference", "TensorOperators", "bind"]

_ops: Any = None
_eager_outside: Callable[[], bool] = lambda: False  # noqa: E731 - replaced by bind()


def bind(ops_module: ModuleType) -> None:
    """Install the module whose functions implement the operators."""
    global _ops, _eager_outside
    from ._init_scope import executing_eagerly_outside_functions

    _ops = ops_module
    _eager_outside = executing_eagerly_outside_functions
    # The arithmetic operators are the op functions themselves (``x + y`` calls
    # ``add(x, y)`` with no method in between): an operator then costs what the function
    # costs, where a forwarding method added about 0.2 µs to a 0.9 µs eager op.
    math = ops_module._math
    cls = TensorOperators
    cls.__add__ = math.add  # type: ignore[method-assign]
    cls.__sub__ = math.subtract  # type: ignore[method-assign]
    cls.__mul__ = math.multiply  # type: ignore[method-assign]
    cls.__truediv__ = math.divide  # type: ignore[method-assign]
    cls.__radd__ = math.radd  # type: ignore[method-assign]
    cls.__rsub__ = math.rsubtract  # type: ignore[method-assign]
    cls.__rmul__ = math.rmultiply  # type: ignore[method-assign]
    cls.__rtruediv__ = math.rdivide  # type: ignore[method-assign]


@final
class Reference:
    """A hashable reference to a tensor or variable, compared by the identity of its target.

    Eager tensors and variables are unhashable because ``==`` is element-wise; use
    ``x.ref()`` as a dict key or set member instead, and ``.deref()`` to get ``x`` back.
    The reference keeps its target alive.

    Example:
        >>> import scopeflow as sf
        >>> x = sf.constant(1.0)
        >>> seen = {x.ref(): "x"}
        >>> seen[x.ref()], x.ref().deref() is x
        ('x', True)
    """

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        self._target = target

    def deref(self) -> Any:
        """The tensor or variable this reference points to."""
        return self._target

    def __hash__(self) -> int:
        return id(self._target)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Reference:
            return NotImplemented
        return self._target is other._target

    def __ne__(self, other: object) -> bool:
        if type(other) is not Reference:
            return NotImplemented
        return self._target is not other._target

    def __repr__(self) -> str:
        return f"<sf.Reference to {self._target!r}>"


def _operand_shape(value: Any) -> tuple[bool, Any]:
    """Whether ``value`` can take part in an element-wise comparison, and its static shape.

    Values that are no tensor, number or numeric array (strings, None, arbitrary objects)
    are not comparable: ``==`` then falls back to identity, as for any Python object.
    """
    if isinstance(value, TensorOperators) or hasattr(value, "__sf_tensor__"):
        return True, getattr(value, "shape", None)
    if isinstance(value, (int, float, complex)):  # bool is an int
        return True, ()
    if isinstance(value, (np.ndarray, np.generic)):
        return value.dtype.kind in "biufc", value.shape
    if isinstance(value, (list, tuple)):
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError):
            return False, None
        return arr.dtype.kind in "biufc", arr.shape
    return False, None


def _compare(x: Any, y: Any, op: Any, mismatch: bool) -> Any:
    """``op(x, y)`` for ``==``/``!=``, or NotImplemented when ``y`` is not comparable.

    As in TensorFlow, shapes that cannot broadcast give a scalar ``mismatch`` (False for
    ``==``) instead of an error; a dtype mismatch is still a ``TypeError``.
    """
    ok, shape = _operand_shape(y)
    if not ok:
        return NotImplemented
    try:
        _ops._registry.broadcast_shapes(x.shape, shape)
    except ValueError:
        return _ops.constant(mismatch)
    return op(x, y)


class TensorOperators:
    """Arithmetic, comparison and matrix operators, each one an op."""

    __slots__ = ()
    # Make NumPy defer to our reflected operators (ndarray + tensor -> tensor).
    __array_priority__ = 100

    def _elementwise_equality(self) -> bool:
        """Whether this object compares element-wise (True) or by identity (the default)."""
        return False

    def __hash__(self) -> int:
        # Defining __eq__ would otherwise make every subclass unhashable; classes whose
        # == is element-wise override this to raise.
        return id(self)

    def __eq__(self, other: Any) -> Any:
        if other is None:
            return False
        if self._elementwise_equality() and _eager_outside():
            return _compare(self, other, _ops.equal, False)
        return self is other

    def __ne__(self, other: Any) -> Any:
        if other is None:
            return True
        if self._elementwise_equality() and _eager_outside():
            return _compare(self, other, _ops.not_equal, True)
        return self is not other

    def ref(self) -> Reference:
        """A hashable reference to this object, for dict keys and sets.

        Example:
            >>> import scopeflow as sf
            >>> v = sf.Variable(1.0)
            >>> {v.ref(): 1}[v.ref()]
            1
        """
        return Reference(self)

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

    def __abs__(self) -> Any:
        return _ops.abs(self)

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
