"""Ops: the registry, the eager/graph dispatcher and every op's rule and kernel.

``_registry`` defines ops, ``_core`` runs them (and holds constants, placeholders and
identity), ``_math`` and ``_math_more`` have element-wise math and its gradients,
``_array`` shapes and indexing, ``_reduce`` reductions and ``matmul``; ``_array_grad``
holds the gradients of those two, built from the helpers in ``_grad_util``; ``_nn`` has
the ops behind ``sf.nn`` (softmax and the losses). ``_shape`` (shapes as tensors,
creation, dynamic shapes), ``_transform`` (tile, split, pad, one_hot) and ``_indexing``
(gather, boolean_mask, tensor keys) have their gradients in ``_shape_grad``; ``_static``
folds the values of shape tensors known while a graph is built.
"""

from __future__ import annotations

import sys

from .. import _tensor_ops
from . import (
    _array_grad as _array_grad,  # registers the shape/reduce gradients
    _nn as _nn,  # registers the sf.nn ops
    _np_grad as _np_grad,  # registers the array-level gradients of common ops
    _runtime_axes_grad as _runtime_axes_grad,  # registers the run-time axis ops
    _shape_grad as _shape_grad,  # registers the shape/indexing gradients
)
from ._array import (
    concat as concat,
    stack as stack,
    transpose as transpose,
    where as where,
)
from ._core import (
    apply as apply,
    constant as constant,
    convert_to_tensor as convert_to_tensor,
    group as group,
    identity as identity,
    no_op as no_op,
    placeholder as placeholder,
)
from ._indexing import boolean_mask as boolean_mask, gather as gather, getitem as getitem
from ._math import (
    abs as abs,
    add as add,
    cast as cast,
    divide as divide,
    equal as equal,
    exp as exp,
    greater as greater,
    greater_equal as greater_equal,
    less as less,
    less_equal as less_equal,
    log as log,
    logical_and as logical_and,
    logical_not as logical_not,
    logical_or as logical_or,
    maximum as maximum,
    minimum as minimum,
    multiply as multiply,
    negative as negative,
    not_equal as not_equal,
    pow as pow,
    relu as relu,
    sigmoid as sigmoid,
    sqrt as sqrt,
    square as square,
    subtract as subtract,
    tanh as tanh,
)
from ._math_more import (
    clip_by_value as clip_by_value,
    cos as cos,
    floor as floor,
    floordiv as floordiv,
    log1p as log1p,
    mod as mod,
    operator_and as operator_and,
    operator_invert as operator_invert,
    operator_or as operator_or,
    operator_xor as operator_xor,
    reciprocal as reciprocal,
    round as round,
    rsqrt as rsqrt,
    sign as sign,
    sin as sin,
)
from ._reduce import (
    argmax as argmax,
    argmin as argmin,
    matmul as matmul,
    reduce_all as reduce_all,
    reduce_any as reduce_any,
    reduce_max as reduce_max,
    reduce_mean as reduce_mean,
    reduce_min as reduce_min,
    reduce_prod as reduce_prod,
    reduce_sum as reduce_sum,
)
from ._registry import REGISTRY as REGISTRY, OpDef as OpDef, register_op as register_op
from ._shape import (
    expand_dims as expand_dims,
    fill as fill,
    ones as ones,
    ones_like as ones_like,
    range as range,
    rank as rank,
    reshape as reshape,
    shape as shape,
    size as size,
    squeeze as squeeze,
    zeros as zeros,
    zeros_like as zeros_like,
)
from ._transform import one_hot as one_hot, pad as pad, split as split, tile as tile

_tensor_ops.bind(sys.modules[__name__])
