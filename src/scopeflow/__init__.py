"""scopeflow: a dataflow-graph framework whose scope state lives in ``contextvars``.

Map: ``_context`` holds the task-local frame (modes, default graph, context-switch log,
scopes, tapes); ``_graph`` and ``_scopes`` build graphs; ``_ops`` defines ops and runs
them eagerly or adds them to graphs; ``_execution`` runs graphs; ``_init_scope`` lifts op
creation out of function graphs. Everything public is re-exported here.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING

import numpy as _np

from . import (
    debug as debug,
    debugging as debugging,
    errors as errors,
    nn as nn,
    optimizers as optimizers,
    random as random,
)
from ._carry import (
    ScopedExecutor as ScopedExecutor,
    ScopesSnapshot as ScopesSnapshot,
    copy_scopes as copy_scopes,
    run_in_scopes as run_in_scopes,
)
from ._concrete import ConcreteFunction as ConcreteFunction, TensorSpec as TensorSpec
from ._context import (
    ContextSwitch as ContextSwitch,
    context_switches as context_switches,
    disable_eager_execution as disable_eager_execution,
    eager_mode as eager_mode,
    enable_eager_execution as enable_eager_execution,
    executing_eagerly as executing_eagerly,
    graph_mode as graph_mode,
    stop_recording as stop_recording,
)
from ._control_flow import cond as cond, while_loop as while_loop
from ._execution import Session as Session
from ._func_graph import FuncGraph as FuncGraph
from ._function import Function as Function, function as function
from ._generators import scoped_generator as scoped_generator
from ._gradients import gradients as gradients
from ._graph import (
    Graph as Graph,
    Operation as Operation,
    Tensor as Tensor,
    get_default_graph as get_default_graph,
    has_default_graph as has_default_graph,
    reset_default_graph as reset_default_graph,
)
from ._init_scope import (
    executing_eagerly_outside_functions as executing_eagerly_outside_functions,
    init_scope as init_scope,
    inside_function as inside_function,
)
from ._lazy_module import lazy_submodule as _lazy_submodule
from ._module import Module as Module
from ._ops import (
    abs as abs,
    add as add,
    argmax as argmax,
    argmin as argmin,
    boolean_mask as boolean_mask,
    cast as cast,
    clip_by_value as clip_by_value,
    concat as concat,
    constant as constant,
    convert_to_tensor as convert_to_tensor,
    cos as cos,
    divide as divide,
    equal as equal,
    exp as exp,
    expand_dims as expand_dims,
    fill as fill,
    floor as floor,
    floordiv as floordiv,
    gather as gather,
    greater as greater,
    greater_equal as greater_equal,
    group as group,
    identity as identity,
    less as less,
    less_equal as less_equal,
    log as log,
    log1p as log1p,
    logical_and as logical_and,
    logical_not as logical_not,
    logical_or as logical_or,
    matmul as matmul,
    maximum as maximum,
    minimum as minimum,
    mod as mod,
    multiply as multiply,
    negative as negative,
    no_op as no_op,
    not_equal as not_equal,
    one_hot as one_hot,
    ones as ones,
    ones_like as ones_like,
    pad as pad,
    placeholder as placeholder,
    pow as pow,
    range as range,
    rank as rank,
    reciprocal as reciprocal,
    reduce_all as reduce_all,
    reduce_any as reduce_any,
    reduce_max as reduce_max,
    reduce_mean as reduce_mean,
    reduce_min as reduce_min,
    reduce_prod as reduce_prod,
    reduce_sum as reduce_sum,
    relu as relu,
    reshape as reshape,
    round as round,
    rsqrt as rsqrt,
    shape as shape,
    sigmoid as sigmoid,
    sign as sign,
    sin as sin,
    size as size,
    split as split,
    sqrt as sqrt,
    square as square,
    squeeze as squeeze,
    stack as stack,
    subtract as subtract,
    tanh as tanh,
    tile as tile,
    transpose as transpose,
    where as where,
    zeros as zeros,
    zeros_like as zeros_like,
)
from ._ops._custom_grad import (
    custom_gradient as custom_gradient,
    stop_gradient as stop_gradient,
)
from ._ops._debug import print_ as print  # TensorFlow's name: sf.print
from ._retracing import RetracingWarning as RetracingWarning
from ._scopes import (
    control_dependencies as control_dependencies,
    device as device,
    get_name_scope as get_name_scope,
    name_scope as name_scope,
)
from ._tape import GradientTape as GradientTape
from ._tensor import EagerTensor as EagerTensor
from ._variables import (
    Variable as Variable,
    global_variables_initializer as global_variables_initializer,
)
from .errors import (
    FailedPreconditionError as FailedPreconditionError,
    InvalidArgumentError as InvalidArgumentError,
    ScopeflowError as ScopeflowError,
    ScopeNestingError as ScopeNestingError,
)

if _TYPE_CHECKING:
    from . import saved_model as saved_model, train as train
else:
    # Imported on first use (see _lazy_module): model state needs json, hashlib, tempfile
    # and safetensors, which ``import scopeflow`` and eager code do not.
    saved_model = _lazy_submodule(f"{__name__}.saved_model")
    train = _lazy_submodule(f"{__name__}.train")


__version__ = "0.1.0"

bool_ = _np.dtype(_np.bool_)
# TensorFlow spells it ``tf.bool``; ported code uses that name. Shadowing the builtin here
# is harmless: this module only re-exports.
bool = bool_  # noqa: A001
float16 = _np.dtype(_np.float16)
float32 = _np.dtype(_np.float32)
float64 = _np.dtype(_np.float64)
int8 = _np.dtype(_np.int8)
int16 = _np.dtype(_np.int16)
int32 = _np.dtype(_np.int32)
int64 = _np.dtype(_np.int64)
uint8 = _np.dtype(_np.uint8)
uint16 = _np.dtype(_np.uint16)
uint32 = _np.dtype(_np.uint32)
uint64 = _np.dtype(_np.uint64)
complex64 = _np.dtype(_np.complex64)
complex128 = _np.dtype(_np.complex128)

__all__ = [
    "ConcreteFunction",
    "ContextSwitch",
    "EagerTensor",
    "FailedPreconditionError",
    "FuncGraph",
    "Function",
    "GradientTape",
    "Graph",
    "InvalidArgumentError",
    "Module",
    "Operation",
    "RetracingWarning",
    "ScopeNestingError",
    "ScopedExecutor",
    "ScopeflowError",
    "ScopesSnapshot",
    "Session",
    "Tensor",
    "TensorSpec",
    "Variable",
    "abs",
    "add",
    "argmax",
    "argmin",
    "bool",
    "bool_",
    "boolean_mask",
    "cast",
    "clip_by_value",
    "complex128",
    "complex64",
    "concat",
    "cond",
    "constant",
    "context_switches",
    "control_dependencies",
    "convert_to_tensor",
    "copy_scopes",
    "cos",
    "custom_gradient",
    "debug",
    "debugging",
    "device",
    "disable_eager_execution",
    "divide",
    "eager_mode",
    "enable_eager_execution",
    "equal",
    "errors",
    "executing_eagerly",
    "executing_eagerly_outside_functions",
    "exp",
    "expand_dims",
    "fill",
    "float16",
    "float32",
    "float64",
    "floor",
    "floordiv",
    "function",
    "gather",
    "get_default_graph",
    "get_name_scope",
    "global_variables_initializer",
    "gradients",
    "graph_mode",
    "greater",
    "greater_equal",
    "group",
    "has_default_graph",
    "identity",
    "init_scope",
    "inside_function",
    "int16",
    "int32",
    "int64",
    "int8",
    "less",
    "less_equal",
    "log",
    "log1p",
    "logical_and",
    "logical_not",
    "logical_or",
    "matmul",
    "maximum",
    "minimum",
    "mod",
    "multiply",
    "name_scope",
    "negative",
    "nn",
    "no_op",
    "not_equal",
    "one_hot",
    "ones",
    "ones_like",
    "optimizers",
    "pad",
    "placeholder",
    "pow",
    "print",
    "random",
    "range",
    "rank",
    "reciprocal",
    "reduce_all",
    "reduce_any",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_prod",
    "reduce_sum",
    "relu",
    "reset_default_graph",
    "reshape",
    "round",
    "rsqrt",
    "run_in_scopes",
    "saved_model",
    "scoped_generator",
    "shape",
    "sigmoid",
    "sign",
    "sin",
    "size",
    "split",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "stop_gradient",
    "stop_recording",
    "subtract",
    "tanh",
    "tile",
    "train",
    "transpose",
    "uint16",
    "uint32",
    "uint64",
    "uint8",
    "where",
    "while_loop",
    "zeros",
    "zeros_like",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("scopeflow."):
        _obj.__module__ = "scopeflow"
del _name, _obj
