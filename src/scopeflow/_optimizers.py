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
from collections.abc import Iterable
from typing import Any

import numpy as np

from ._context import executing_eagerly
from ._init_scope import init_scope
from ._ops import cast, constant, group, pow as power, sqrt, square, zeros
from ._scopes import control_dependencies, name_scope
from ._variables import Variable

__all__ = ["SGD", "Adam", "Optimizer"]


class Optimizer:
    """Base class: applies gradients to variables and keeps per-variable slot state.

    Subclasses name their slots in ``_slot_names`` and implement ``_update``.
    """

    _slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate: float, name: str) -> None:
        self.learning_rate = _positive("learning_rate", learning_rate, type(self).__name__)
        self._name = name
        self._lock = threading.Lock()
        self._iterations: Variable | None = None
        # Slots by variable identity (never by __eq__/__hash__): id -> (variable, slots).
        self._slots: dict[int, tuple[Variable, dict[str, Variable]]] = {}

    # Copying and pickling (as a model holding its optimizer is): the slot variables and
    # step counter copy by value like every eager variable, the lock is made anew, and
    # the slots are keyed again by the identity of the copied variables.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._slots = {id(var): (var, slots) for var, slots in self._slots.values()}

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

        Raises:
            ValueError: every gradient is None, or a gradient's shape does not match.
            TypeError: a pair is not ``(gradient, sf.Variable)``.
        """
        pairs: list[tuple[Any, Variable]] = []
        for item in grads_and_vars:
            try:
                grad, var = item
            except (TypeError, ValueError):
                msg = f"apply_gradients() takes (gradient, variable) pairs, got {item!r}"
                raise TypeError(msg) from None
            if not isinstance(var, Variable):
                msg = f"apply_gradients() updates sf.Variable objects, got {var!r}"
                raise TypeError(msg)
            if grad is not None:
                pairs.append((grad, var))
        if not pairs:
            msg = (
                "No gradients provided for any variable: every gradient is None (the loss "
                "does not depend on these variables)"
            )
            raise ValueError(msg)
        self.build(v for _, v in pairs)
        iterations = self._ensure_iterations()
        step = iterations.read_value() + 1  # read before the increment
        updates = []
        for grad, var in pairs:
            slots = self._ensure_slots(var)
            grad = cast(grad, var.dtype) if getattr(grad, "dtype", var.dtype) != var.dtype else grad
            updates.append(self._update(grad, var, slots, step))
        if executing_eagerly():
            iterations.assign_add(1)
            return None
        # In a graph the counter moves only after every update (and after the read above).
        with control_dependencies(updates):
            done = iterations.assign_add(1)
        return group(*updates, done, name=f"{self._name}_update")

    def _update(self, grad: Any, var: Variable, slots: dict[str, Variable], step: Any) -> Any:
        raise NotImplementedError

    def _sf_children(self) -> dict[str, Any]:
        """What a checkpoint saves of the optimizer, apart from the slots."""
        return {} if self._iterations is None else {"iterations": self._iterations}

    def _sf_slot_entries(self) -> list[tuple[Variable, str, Variable]]:
        """(variable, slot name, slot variable) for every slot."""
        with self._lock:
            return [(v, n, s) for v, slots in self._slots.values() for n, s in slots.items()]


def _positive(what: str, value: Any, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        msg = f"{owner}({what}=...) must be a Python number, got {value!r}"
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
        learning_rate: float = 0.01,
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

    def _update(self, grad: Any, var: Variable, slots: dict[str, Variable], step: Any) -> Any:
        lr = self.learning_rate
        if not self.momentum:
            return var.assign_sub(grad * lr)
        velocity = slots["momentum"]
        new_velocity = velocity.assign(velocity * self.momentum - grad * lr)
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
        learning_rate: float = 0.001,
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

    def _update(self, grad: Any, var: Variable, slots: dict[str, Variable], step: Any) -> Any:
        dtype = var.dtype
        t = cast(step, dtype)
        b1, b2 = constant(self.beta_1, dtype), constant(self.beta_2, dtype)
        lr_t = sqrt(1 - power(b2, t)) / (1 - power(b1, t)) * self.learning_rate
        m, v = slots["m"], slots["v"]
        new_m = m.assign_add((grad - m) * (1 - self.beta_1))
        new_v = v.assign_add((square(grad) - v) * (1 - self.beta_2))
        return var.assign_sub(lr_t * new_m / (sqrt(new_v) + self.epsilon))
