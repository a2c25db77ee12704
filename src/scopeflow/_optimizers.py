"""Optimizers: SGD (with momentum) and Adam, with lazily created slot variables.

Slots (momentum, Adam's ``m`` and ``v``) and the step counter are created on the first
``apply_gradients`` that needs them, under ``init_scope``: a traced train step creates
them once, outside its function graph, exactly like a variable made on a first trace (and
a later trace that would need new ones raises the usual variable-creation error). The
updates are ops, so the same code runs eagerly, in a traced function and in a graph.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

import numpy as np

from ._context import _roots, executing_eagerly, state_get
from ._graph import get_default_graph
from ._init_scope import init_scope
from ._ops import cast, constant, convert_to_tensor, group, pow as power, sqrt, square, zeros
from ._scopes import control_dependencies, name_scope
from ._variables import Variable

# A number, a scalar float variable (read at every step) or a schedule: a callable
# taking the step counter (0 on the first step) and returning the rate.
LearningRate: TypeAlias = "float | Variable | Callable[[Any], Any]"

__all__ = ["SGD", "Adam", "Optimizer"]


class Optimizer:
    """Base class: applies gradients to variables and keeps per-variable slot state.

    Subclasses name their slots in ``_slot_names`` and implement ``_update``.
    """

    _slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate: LearningRate, name: str) -> None:
        self._lr = _learning_rate(learning_rate, type(self).__name__)
        self._name = name
        self._lock = threading.Lock()
        # Held for a whole eager step (read the counter, update every variable and its
        # slots, count the step), so steps from several threads never interleave.
        self._step_lock = threading.Lock()
        self._iterations: Variable | None = None
        # A numeric rate as a variable, made for the first traced step: a traced step
        # reads it, so setting ``learning_rate`` later reaches functions already traced.
        self._lr_var: Variable | None = None
        # Slots by variable identity (never by __eq__/__hash__): id -> (variable, slots).
        self._slots: dict[int, tuple[Variable, dict[str, Variable]]] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Locks are per object and not copyable; the slot table is keyed by identity,
        # so it travels as (variable, slots) pairs and is re-keyed for the copies.
        with self._lock:
            state = dict(self.__dict__)
            state["_slots"] = list(self._slots.values())
        del state["_lock"], state["_step_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        slots = state.pop("_slots")
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._step_lock = threading.Lock()
        self._slots = {id(var): (var, dict(named)) for var, named in slots}

    @property
    def learning_rate(self) -> LearningRate:
        """The learning rate: a number, a scalar float variable or a schedule.

        Setting a number takes effect at the next step, in traced steps too.

        Example:
            >>> import scopeflow as sf
            >>> opt = sf.optimizers.SGD(learning_rate=0.1)
            >>> opt.learning_rate = 0.05
            >>> opt.learning_rate
            0.05
        """
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value: LearningRate) -> None:
        lr = _learning_rate(value, type(self).__name__)
        with self._lock:
            hyper = self._lr_var
            if hyper is not None:
                if not isinstance(lr, float):
                    msg = (
                        f"{type(self).__name__}.learning_rate was a number when a step was "
                        f"traced, so it can only be set to a number now (got {value!r}); pass "
                        f"the variable or schedule to the constructor instead"
                    )
                    raise TypeError(msg)
                if hyper.graph is not None:
                    msg = (
                        f"{type(self).__name__}.learning_rate lives in {hyper.graph!r}; "
                        f"pass learning_rate=sf.Variable(...) and assign it in a Session"
                    )
                    raise TypeError(msg)
                hyper._update(None, np.array(lr, np.float64))
            self._lr = lr

    @property
    def iterations(self) -> Variable:
        """How many times ``apply_gradients`` ran (an int64 variable, made on first use)."""
        return self._ensure_iterations()

    @property
    def variables(self) -> tuple[Variable, ...]:
        """The step counter and every slot variable, in creation order."""
        with self._lock:
            out: list[Variable] = [] if self._iterations is None else [self._iterations]
            for _, slots in self._slots.values():
                out.extend(slots.values())
        return tuple(out)

    def get_slot(self, var: Variable, slot_name: str) -> Variable:
        """The slot ``slot_name`` (e.g. ``"m"``) of ``var``.

        Raises:
            KeyError: ``var`` has no such slot (yet).
        """
        entry = self._slots.get(id(var))
        if entry is None or entry[0] is not var or slot_name not in entry[1]:
            msg = f"{type(self).__name__} has no slot {slot_name!r} for {var.name!r}"
            raise KeyError(msg)
        return entry[1][slot_name]

    def build(self, var_list: Iterable[Variable]) -> None:
        """Create the step counter and the slots of ``var_list`` that don't exist yet."""
        variables = list(var_list)
        for v in variables:
            if not isinstance(v, Variable):
                msg = f"{type(self).__name__} optimizes sf.Variable objects, got {v!r}"
                raise TypeError(msg)
            _check_floating(v, type(self).__name__)
        self._ensure_iterations()
        for v in variables:
            self._ensure_slots(v)

    def _ensure_iterations(self) -> Variable:
        it = self._iterations
        if it is not None:
            return it
        with self._lock:  # one counter even when threads make the first step at once
            if self._iterations is None:
                with init_scope(), name_scope(None):
                    self._iterations = Variable(
                        np.int64(0), name=f"{self._name}/iterations", trainable=False
                    )
            return self._iterations

    def _ensure_slots(self, var: Variable) -> dict[str, Variable]:
        entry = self._slots.get(id(var))
        if entry is not None and entry[0] is var:
            return entry[1]
        with self._lock:
            entry = self._slots.get(id(var))
            if entry is not None and entry[0] is var:
                return entry[1]
            slots: dict[str, Variable] = {}
            base = var.name[:-2] if var.name.endswith(":0") else var.name
            with init_scope(), name_scope(None):
                for slot in self._slot_names:
                    slots[slot] = Variable(
                        lambda: zeros(var.shape, var.dtype),
                        name=f"{base}/{slot}",
                        trainable=False,
                    )
            # Published only once every slot exists: a failed creation leaves nothing.
            self._slots[id(var)] = (var, slots)
            return slots

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> Any:
        """Apply one update step; returns the update op in a graph, else None.

        Pairs whose gradient is None are skipped (the variable did not affect the loss).
        Every pair is checked before anything changes. Eager steps from several threads
        are applied one at a time.

        Raises:
            ValueError: every gradient is None, a gradient's shape does not match its
                variable's, or a variable appears twice.
            TypeError: a pair is not ``(gradient, sf.Variable)``, or a variable is not
                of a floating dtype.
        """
        pairs = self._checked_pairs(grads_and_vars)
        self.build(v for _, v in pairs)
        iterations = self._ensure_iterations()
        if executing_eagerly():
            with self._step_lock:
                self._apply(pairs, iterations)
                iterations.assign_add(1)
            return None
        updates = self._apply(pairs, iterations)
        # In a graph the counter moves only after every update (and after the read above).
        with control_dependencies(updates):
            done = iterations.assign_add(1)
        return group(*updates, done, name=f"{self._name}_update")

    def _checked_pairs(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> list[Any]:
        """The (gradient tensor, variable) pairs to apply, every one checked first."""
        owner = type(self).__name__
        frame = state_get(_roots[0])
        pairs: list[tuple[Any, Variable]] = []
        seen: set[int] = set()
        for item in grads_and_vars:
            try:
                grad, var = item
            except (TypeError, ValueError):
                msg = f"apply_gradients() takes (gradient, variable) pairs, got {item!r}"
                raise TypeError(msg) from None
            if not isinstance(var, Variable):
                msg = f"apply_gradients() updates sf.Variable objects, got {var!r}"
                raise TypeError(msg)
            var._check_usable_here(frame)  # e.g. a graph variable in eager code
            _check_floating(var, owner)
            if id(var) in seen:
                msg = (
                    f"apply_gradients() got {var.name!r} twice; sum its gradients and pass it once"
                )
                raise ValueError(msg)
            seen.add(id(var))
            if grad is None:
                continue
            grad = convert_to_tensor(grad)
            if grad.dtype != var.dtype:
                grad = cast(grad, var.dtype)
            shape = grad.shape
            if shape is not None and (
                len(shape) != len(var.shape)
                or any(
                    a is not None and b is not None and a != b
                    for a, b in zip(shape, var.shape, strict=True)
                )
            ):
                msg = (
                    f"The gradient for {var.name!r} has shape {tuple(shape)}, but the "
                    f"variable has shape {tuple(var.shape)}"
                )
                raise ValueError(msg)
            pairs.append((grad, var))
        if not pairs:
            msg = (
                "No gradients provided for any variable: every gradient is None (the loss "
                "does not depend on these variables)"
            )
            raise ValueError(msg)
        return pairs

    def _apply(self, pairs: list[Any], iterations: Variable) -> list[Any]:
        """Build (or run, eagerly) the update of every pair; returns the updates."""
        count = iterations.read_value()  # read before the increment
        step = count + 1
        lr = self._current_lr(count)
        updates = []
        for grad, var in pairs:
            slots = self._ensure_slots(var)
            rate = lr if isinstance(lr, float) else cast(lr, var.dtype)
            updates.append(self._update(grad, var, slots, step, rate))
        return updates

    def _current_lr(self, count: Any) -> Any:
        """The rate of this step: a float when eager, else a tensor read at run time."""
        lr = self._lr
        if isinstance(lr, Variable):
            return lr.read_value()
        if not isinstance(lr, float):
            value = lr(count)
            if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(
                value, bool
            ):
                return float(value)  # a Python number stays exact, in every dtype
            rate = convert_to_tensor(value)
            if rate.shape is not None and len(rate.shape) != 0:
                msg = (
                    f"{type(self).__name__}'s learning-rate schedule returned shape "
                    f"{tuple(rate.shape)}; it must return a scalar"
                )
                raise ValueError(msg)
            return rate
        if executing_eagerly() or not get_default_graph().building_function:
            return lr  # eager steps read it now; a plain graph is built for one rate
        return self._ensure_lr_var(lr).read_value()

    def _ensure_lr_var(self, lr: float) -> Variable:
        with self._lock:
            if self._lr_var is None:
                current = self._lr if isinstance(self._lr, float) else lr
                with init_scope(), name_scope(None):
                    self._lr_var = Variable(
                        np.float64(current), name=f"{self._name}/learning_rate", trainable=False
                    )
            return self._lr_var

    def _update(
        self, grad: Any, var: Variable, slots: dict[str, Variable], step: Any, lr: Any
    ) -> Any:
        raise NotImplementedError

    def _sf_children(self) -> dict[str, Any]:
        """What a checkpoint saves of the optimizer, apart from the slots."""
        return {} if self._iterations is None else {"iterations": self._iterations}

    def _sf_slot_entries(self) -> list[tuple[Variable, str, Variable]]:
        """(variable, slot name, slot variable) for every slot."""
        with self._lock:
            return [(v, n, s) for v, slots in self._slots.values() for n, s in slots.items()]


def _check_floating(var: Variable, owner: str) -> None:
    if not np.issubdtype(var.dtype, np.floating):
        msg = (
            f"{owner} cannot update {var.name!r} of dtype {var.dtype.name}: it optimizes "
            f"floating-point variables only"
        )
        raise TypeError(msg)


def _learning_rate(value: Any, owner: str) -> LearningRate:
    if isinstance(value, Variable):
        if not np.issubdtype(value.dtype, np.floating) or value.shape != ():
            msg = (
                f"{owner}(learning_rate=...) takes a scalar floating-point variable, got {value!r}"
            )
            raise ValueError(msg)
        return value
    if callable(value) and not isinstance(value, (int, float, np.number)):
        return value  # type: ignore[no-any-return]
    return _positive("learning_rate", value, owner)


def _positive(what: str, value: Any, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        more = ", a scalar float sf.Variable or a schedule" if what == "learning_rate" else ""
        msg = f"{owner}({what}=...) must be a Python number{more}, got {value!r}"
        raise TypeError(msg)
    number = float(value)
    if not math.isfinite(number) or number < 0:
        msg = f"{owner}({what}=...) must be a finite non-negative number, got {value!r}"
        raise ValueError(msg)
    return number


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    ``velocity = momentum * velocity - learning_rate * g``; ``w += velocity``
    (``w += momentum * velocity - learning_rate * g`` with ``nesterov=True``). Without
    momentum, ``w -= learning_rate * g`` and no slot is created.

    Example:
        >>> import scopeflow as sf
        >>> w = sf.Variable(1.0)
        >>> opt = sf.optimizers.SGD(learning_rate=0.1)
        >>> opt.apply_gradients([(sf.constant(2.0), w)])
        >>> round(float(w.numpy()), 6)
        0.8
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        name: str = "SGD",
    ) -> None:
        super().__init__(learning_rate, name)
        self.momentum = _positive("momentum", momentum, "SGD")
        if self.momentum >= 1:
            msg = f"SGD(momentum=...) must be in [0, 1), got {momentum!r}"
            raise ValueError(msg)
        self.nesterov = bool(nesterov)
        self._slot_names = ("momentum",) if self.momentum else ()

    def _update(
        self, grad: Any, var: Variable, slots: dict[str, Variable], step: Any, lr: Any
    ) -> Any:
        if not self.momentum:
            return var.assign_sub(grad * lr)
        velocity = slots["momentum"]
        # An atomic add, not an assign of a value computed from an earlier read: two
        # traced steps running at once never lose one's update (Adam's slots likewise).
        new_velocity = velocity.assign_add(velocity * (self.momentum - 1) - grad * lr)
        if self.nesterov:
            return var.assign_add(new_velocity * self.momentum - grad * lr)
        return var.assign_add(new_velocity)


class Adam(Optimizer):
    """Adam: adaptive moment estimation, with bias-corrected step sizes.

    With ``t`` the 1-based step: ``m += (g - m) * (1 - beta_1)``,
    ``v += (g² - v) * (1 - beta_2)``, ``w -= lr_t * m / (sqrt(v) + epsilon)`` where
    ``lr_t = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)``.

    Example:
        >>> import scopeflow as sf
        >>> w = sf.Variable([1.0, 2.0])
        >>> opt = sf.optimizers.Adam(learning_rate=0.1)
        >>> opt.apply_gradients([(sf.constant([1.0, -1.0]), w)])
        >>> w.numpy().round(4)
        array([0.9, 2.1], dtype=float32)
    """

    _slot_names = ("m", "v")

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        name: str = "Adam",
    ) -> None:
        super().__init__(learning_rate, name)
        self.beta_1 = _positive("beta_1", beta_1, "Adam")
        self.beta_2 = _positive("beta_2", beta_2, "Adam")
        for what, b in (("beta_1", self.beta_1), ("beta_2", self.beta_2)):
            if b >= 1:
                msg = f"Adam({what}=...) must be in [0, 1), got {b!r}"
                raise ValueError(msg)
        self.epsilon = _positive("epsilon", epsilon, "Adam")

    def _update(
        self, grad: Any, var: Variable, slots: dict[str, Variable], step: Any, lr: Any
    ) -> Any:
        dtype = var.dtype
        t = cast(step, dtype)
        b1, b2 = constant(self.beta_1, dtype), constant(self.beta_2, dtype)
        lr_t = sqrt(1 - power(b2, t)) / (1 - power(b1, t)) * lr
        m, v = slots["m"], slots["v"]
        new_m = m.assign_add((grad - m) * (1 - self.beta_1))
        new_v = v.assign_add((square(grad) - v) * (1 - self.beta_2))
        return var.assign_sub(lr_t * new_m / (sqrt(new_v) + self.epsilon))
