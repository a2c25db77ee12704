"""Run-time checks: ``sf.debugging``.

Names: :func:`assert_equal`, :func:`assert_less`, :func:`assert_greater`,
:func:`assert_non_negative`, :func:`check_numerics`.

Eagerly a failed check raises at once; in a graph each check is an op (an assertion
returns an op to fetch or put in ``control_dependencies``; ``check_numerics`` returns its
input) that raises :class:`~scopeflow.errors.InvalidArgumentError` when it runs, with the
first ``summarize`` elements of the values in the message. Inside a traced function the
checks run on every call, in program order.

Example:
    >>> import scopeflow as sf
    >>> g = sf.Graph()
    >>> with g.as_default():
    ...     x = sf.placeholder(sf.float32, shape=(2,))
    ...     check = sf.debugging.assert_non_negative(x)
    ...     with sf.control_dependencies([check]):
    ...         y = sf.sqrt(x)
    >>> sf.Session(g).run(y, {x: [4.0, 9.0]})
    array([2., 3.], dtype=float32)
"""

from __future__ import annotations

from ._ops._debug import (
    assert_equal as assert_equal,
    assert_greater as assert_greater,
    assert_less as assert_less,
    assert_non_negative as assert_non_negative,
    check_numerics as check_numerics,
)

__all__ = [
    "assert_equal",
    "assert_greater",
    "assert_less",
    "assert_non_negative",
    "check_numerics",
]
