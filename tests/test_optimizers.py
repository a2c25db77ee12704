"""Optimizers against NumPy references, eager and traced; lazy slots under init_scope."""

from __future__ import annotations

import copy
import pickle
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf

STEPS = 20


def _grad(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of sum((x @ w - 1)^2 ) w.r.t. w (the loss used in every test)."""
    return 2 * x.T @ (x @ w - 1.0)


def _numpy_sgd(w: np.ndarray, x: np.ndarray, lr: float, momentum: float, nesterov: bool) -> Any:
    velocity = np.zeros_like(w)
    for _ in range(STEPS):
        g = _grad(w, x)
        velocity = momentum * velocity - lr * g
        w = w + (momentum * velocity - lr * g if nesterov else velocity)
    return w


def _numpy_adam(w: np.ndarray, x: np.ndarray, lr: float, b1: float, b2: float, eps: float) -> Any:
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t in range(1, STEPS + 1):
        g = _grad(w, x)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        w = w - lr_t * m / (np.sqrt(v) + eps)
    return w


RNG = np.random.default_rng(7)
X = RNG.normal(size=(8, 3))
W0 = RNG.normal(size=(3, 2))

CASES: list[tuple[str, Callable[[], sf.optimizers.Optimizer], Callable[[], Any]]] = [
    ("sgd", lambda: sf.optimizers.SGD(0.01), lambda: _numpy_sgd(W0, X, 0.01, 0.0, False)),
    (
        "momentum",
        lambda: sf.optimizers.SGD(0.01, momentum=0.9),
        lambda: _numpy_sgd(W0, X, 0.01, 0.9, False),
    ),
    (
        "nesterov",
        lambda: sf.optimizers.SGD(0.01, momentum=0.8, nesterov=True),
        lambda: _numpy_sgd(W0, X, 0.01, 0.8, True),
    ),
    ("adam", lambda: sf.optimizers.Adam(0.05), lambda: _numpy_adam(W0, X, 0.05, 0.9, 0.999, 1e-7)),
    (
        "adam-betas",
        lambda: sf.optimizers.Adam(0.02, beta_1=0.5, beta_2=0.9, epsilon=1e-4),
        lambda: _numpy_adam(W0, X, 0.02, 0.5, 0.9, 1e-4),
    ),
]


def _loss(w: Any, x: Any) -> Any:
    return sf.reduce_sum(sf.square(sf.matmul(x, w) - 1.0))


@pytest.mark.parametrize(("name", "make", "reference"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("mode", ["eager", "traced"])
def test_matches_numpy_over_20_steps(name: str, make: Any, reference: Any, mode: str) -> None:
    w = sf.Variable(W0, name="w")  # float64: compared to 1e-6 relative
    x = sf.constant(X)
    opt = make()

    def step() -> Any:
        with sf.GradientTape() as tape:
            loss = _loss(w, x)
        opt.apply_gradients([(tape.gradient(loss, w), w)])
        return loss

    run = sf.function(step) if mode == "traced" else step
    for _ in range(STEPS):
        run()
    np.testing.assert_allclose(w.numpy(), reference(), rtol=1e-6, atol=1e-12)
    assert int(opt.iterations.numpy()) == STEPS
    if mode == "traced":
        assert run.trace_count == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "make", "reference"), CASES, ids=[c[0] for c in CASES])
def test_graph_mode_with_a_session(name: str, make: Any, reference: Any) -> None:
    g = sf.Graph()
    with g.as_default():
        w = sf.Variable(W0, name="w")
        loss = _loss(w, sf.constant(X))
        opt = make()
        (grad,) = sf.gradients(loss, [w])
        train = opt.apply_gradients([(grad, w)])
        init = sf.global_variables_initializer()
    assert isinstance(train, sf.Operation)
    with sf.Session(g) as sess:
        sess.run(init)
        for _ in range(STEPS):
            sess.run(train)
        final, steps = sess.run([w, opt.iterations])
    np.testing.assert_allclose(final, reference(), rtol=1e-6, atol=1e-12)
    assert steps == STEPS


def test_slots_are_created_once_outside_the_traced_step() -> None:
    w = sf.Variable(np.ones(3, np.float32), name="dense/w")
    opt = sf.optimizers.Adam(0.1)
    assert opt.variables == ()  # lazy

    @sf.function
    def step(x: Any) -> Any:
        with sf.GradientTape() as tape:
            loss = sf.reduce_sum(w * x)
        opt.apply_gradients([(tape.gradient(loss, w), w)])
        return loss

    step(sf.ones(3))
    step(sf.ones(3))
    assert step.trace_count == 1
    assert [v.name for v in opt.variables] == ["Adam/iterations:0", "dense/w/m:0", "dense/w/v:0"]
    assert all(v.graph is None for v in opt.variables)  # eager: lifted out of the function
    assert opt.get_slot(w, "m").shape == (3,)
    assert int(opt.iterations.numpy()) == 2


def test_a_later_trace_that_needs_new_slots_raises() -> None:
    a = sf.Variable(1.0, name="a")
    b = sf.Variable(2.0, name="b")
    opt = sf.optimizers.SGD(0.1, momentum=0.5)

    @sf.function
    def step(use_b: bool) -> None:
        var = b if use_b else a
        with sf.GradientTape() as tape:
            loss = var * var
        opt.apply_gradients([(tape.gradient(loss, var), var)])

    step(False)
    with pytest.raises(ValueError, match="A variable was created while tracing"):
        step(True)  # a second trace would create b's momentum slot
    # Built outside any function, the slot exists and the retrace succeeds.
    opt.build([b])
    step(True)
    assert float(b.numpy()) == pytest.approx(2.0 - 0.1 * 4.0)


def test_none_gradients_are_skipped_and_all_none_raises() -> None:
    a, b = sf.Variable(1.0, name="a"), sf.Variable(1.0, name="b")
    opt = sf.optimizers.SGD(0.5)
    opt.apply_gradients([(sf.constant(1.0), a), (None, b)])
    assert float(a.numpy()) == 0.5
    assert float(b.numpy()) == 1.0
    with pytest.raises(ValueError, match="^No gradients provided for any variable"):
        opt.apply_gradients([(None, a), (None, b)])
    assert int(opt.iterations.numpy()) == 1


@pytest.mark.parametrize(
    ("pairs", "pattern"),
    [
        ([sf.constant(1.0)], r"takes \(gradient, variable\) pairs"),
        ([(sf.constant(1.0), sf.constant(1.0))], r"updates sf.Variable objects"),
    ],
)
def test_bad_pairs(pairs: Any, pattern: str) -> None:
    with pytest.raises(TypeError, match=pattern):
        sf.optimizers.SGD().apply_gradients(pairs)


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda: sf.optimizers.SGD(-1.0), ValueError, r"learning_rate=\.\.\.\) must be a finite"),
        (lambda: sf.optimizers.SGD("0.1"), TypeError, r"learning_rate=\.\.\.\) must be a Python"),
        (lambda: sf.optimizers.SGD(momentum=1.0), ValueError, r"momentum=\.\.\.\) must be in"),
        (lambda: sf.optimizers.Adam(beta_1=1.5), ValueError, r"beta_1=\.\.\.\) must be in"),
        (lambda: sf.optimizers.Adam(epsilon=float("nan")), ValueError, r"epsilon=\.\.\.\)"),
    ],
)
def test_bad_hyperparameters(make: Any, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        make()


def test_gradient_dtype_is_cast_to_the_variable() -> None:
    w = sf.Variable(np.float64(1.0), name="w")
    sf.optimizers.SGD(0.5).apply_gradients([(sf.constant(1.0), w)])  # float32 gradient
    assert w.numpy().dtype == np.float64
    assert float(w.numpy()) == 0.5


def test_threads_making_the_first_step_at_once_create_one_set_of_slots() -> None:
    w = sf.Variable(np.zeros(4, np.float64), name="w")
    opt = sf.optimizers.Adam(0.01)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            opt.apply_gradients([(sf.constant(np.ones(4)), w)])
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(opt.variables) == 3
    assert int(opt.iterations.numpy()) == 8


def _pairs_with_int(a: Any) -> Any:
    return [(sf.constant(1.0), a), (sf.constant(1), sf.Variable(3, name="i"))]


def _pairs_with_bad_shape(a: Any) -> Any:
    return [(sf.constant(1.0), a), (sf.ones((2, 2)), sf.Variable([1.0, 2.0], name="b"))]


def _pairs_with_broadcast(a: Any) -> Any:
    return [(sf.constant(1.0), a), (sf.ones((1,)), sf.Variable([1.0, 2.0], name="b"))]


def _pairs_twice(a: Any) -> Any:
    return [(sf.constant(1.0), a), (sf.constant(2.0), a)]


BAD_PAIRS = [
    (_pairs_with_int, TypeError, r"^SGD cannot update 'i:0' of dtype int32: it optimizes floating"),
    (_pairs_with_bad_shape, ValueError, r"^The gradient for 'b:0' has shape \(2, 2\), but the "),
    (_pairs_with_broadcast, ValueError, r"^The gradient for 'b:0' has shape \(1,\)"),
    (_pairs_twice, ValueError, r"^apply_gradients\(\) got 'a:0' twice; sum its gradients"),
]


@pytest.mark.parametrize(("pairs", "error", "pattern"), BAD_PAIRS)
def test_bad_pairs_are_refused_before_anything_changes(
    pairs: Any, error: type, pattern: str
) -> None:
    a = sf.Variable(1.0, name="a")
    opt = sf.optimizers.SGD(0.1, momentum=0.5)
    with pytest.raises(error, match=pattern):
        opt.apply_gradients(pairs(a))
    assert float(a.numpy()) == 1.0  # the valid pair before the bad one was not applied
    assert opt.variables == ()  # no slot and no counter


def _run_concurrently(
    make: Callable[[], Any], parallel: Callable[[Callable[[], None]], None]
) -> None:
    """Apply the same constant gradient 64 times in parallel, then sequentially: same result."""
    g = sf.constant(np.linspace(0.5, 2.0, 4))
    w, opt = sf.Variable(np.zeros(4), name="w"), make()
    parallel(lambda: opt.apply_gradients([(g, w)]))
    w_seq, opt_seq = sf.Variable(np.zeros(4), name="w"), make()
    for _ in range(64):
        opt_seq.apply_gradients([(g, w_seq)])
    np.testing.assert_allclose(w.numpy(), w_seq.numpy(), rtol=1e-12)
    assert int(opt.iterations.numpy()) == 64
    assert len(opt.variables) == len(opt_seq.variables)


OPTIMIZERS = [
    lambda: sf.optimizers.SGD(0.01, momentum=0.9),
    lambda: sf.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
    lambda: sf.optimizers.Adam(0.01),
]


@pytest.mark.parametrize("make", OPTIMIZERS, ids=["momentum", "nesterov", "adam"])
def test_eager_steps_from_threads_are_atomic(make: Any) -> None:
    def in_threads(step: Callable[[], None]) -> None:
        barrier = threading.Barrier(8)

        def worker() -> None:
            barrier.wait()
            for _ in range(8):
                step()
                time.sleep(0)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        old = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as possible
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            sys.setswitchinterval(old)

    _run_concurrently(make, in_threads)


@pytest.mark.anyio
@pytest.mark.parametrize("make", OPTIMIZERS, ids=["momentum", "nesterov", "adam"])
async def test_tasks_applying_gradients_concurrently(make: Any) -> None:
    g = sf.constant(np.linspace(0.5, 2.0, 4))
    w, opt = sf.Variable(np.zeros(4), name="w"), make()

    async def worker() -> None:
        for _ in range(8):
            with sf.name_scope("task"):
                await anyio.sleep(0)
                opt.apply_gradients([(g, w)])
                await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(worker)
    assert sf.get_name_scope() == ""
    w_seq, opt_seq = sf.Variable(np.zeros(4), name="w"), make()
    for _ in range(64):
        opt_seq.apply_gradients([(g, w_seq)])
    np.testing.assert_allclose(w.numpy(), w_seq.numpy(), rtol=1e-12)
    assert [v.name for v in opt.variables] == [v.name for v in opt_seq.variables]


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_setting_the_learning_rate_reaches_traced_steps(kind: str) -> None:
    w = sf.Variable(np.ones(2), name="w")
    opt = getattr(sf.optimizers, kind)(0.1)

    @sf.function
    def step() -> None:
        opt.apply_gradients([(sf.constant(np.ones(2)), w)])

    step()
    moved = w.numpy().copy()
    assert not np.array_equal(moved, np.ones(2))
    opt.learning_rate = 0.0
    assert opt.learning_rate == 0.0
    step()
    np.testing.assert_array_equal(w.numpy(), moved)  # a stale 0.1 would move it again
    assert step.trace_count == 1
    assert opt.variables[0].name == f"{kind}/iterations:0"  # the rate is not a slot
    with pytest.raises(TypeError, match=r"^\w+\.learning_rate was a number when a step was traced"):
        opt.learning_rate = lambda count: 0.1
    with pytest.raises(ValueError, match=r"must be a finite non-negative number"):
        opt.learning_rate = -1.0
    assert opt.learning_rate == 0.0


def _sgd_reference(rates: list[float]) -> Any:
    w = W0.copy()
    for lr in rates:
        w = w - lr * _grad(w, X)
    return w


@pytest.mark.parametrize("mode", ["eager", "traced"])
def test_learning_rate_schedules_and_variables(mode: str) -> None:
    def schedule(count: Any) -> Any:
        return 0.02 / (1.0 + sf.cast(count, np.float64))  # count is 0 on the first step

    lr_var = sf.Variable(0.01, dtype=np.float64, name="lr")
    for lr, rates in [
        (schedule, [0.02 / (1 + k) for k in range(STEPS)]),
        (lr_var, [0.01] * (STEPS // 2) + [0.005] * (STEPS // 2)),
    ]:
        lr_var.assign(0.01)
        w = sf.Variable(W0, name="w")
        opt = sf.optimizers.SGD(lr)
        assert opt.learning_rate is lr

        def step(w: Any = w, opt: Any = opt) -> None:
            with sf.GradientTape() as tape:
                loss = _loss(w, sf.constant(X))
            opt.apply_gradients([(tape.gradient(loss, w), w)])

        run = sf.function(step) if mode == "traced" else step
        for k in range(STEPS):
            if k == STEPS // 2:
                lr_var.assign(0.005)
            run()
        np.testing.assert_allclose(w.numpy(), _sgd_reference(rates), rtol=1e-6, atol=1e-12)


def test_bad_learning_rates() -> None:
    with pytest.raises(ValueError, match=r"^SGD\(learning_rate=\.\.\.\) takes a scalar floating"):
        sf.optimizers.SGD(sf.Variable([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"^Adam\(learning_rate=\.\.\.\) takes a scalar floating"):
        sf.optimizers.Adam(sf.Variable(1))
    w = sf.Variable([1.0, 2.0], name="w")
    opt = sf.optimizers.SGD(lambda count: sf.constant([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"^SGD's learning-rate schedule returned shape \(2,\)"):
        opt.apply_gradients([(sf.constant([1.0, 1.0]), w)])
    assert w.numpy().tolist() == [1.0, 2.0]


def test_graph_mode_with_a_learning_rate_variable() -> None:
    g = sf.Graph()
    with g.as_default():
        w = sf.Variable(W0, name="w")
        lr = sf.Variable(0.01, dtype=np.float64, name="lr")
        opt = sf.optimizers.SGD(lr)
        (grad,) = sf.gradients(_loss(w, sf.constant(X)), [w])
        train = opt.apply_gradients([(grad, w)])
        init = sf.global_variables_initializer()
        halve = lr.assign(0.005)
    with sf.Session(g) as sess:
        sess.run(init)
        for k in range(STEPS):
            if k == STEPS // 2:
                sess.run(halve)
            sess.run(train)
        final = sess.run(w)
    rates = [0.01] * (STEPS // 2) + [0.005] * (STEPS // 2)
    np.testing.assert_allclose(final, _sgd_reference(rates), rtol=1e-6, atol=1e-12)


def test_mixed_float_dtypes_in_one_step_keep_their_dtypes() -> None:
    half = sf.Variable(np.ones(3, np.float16), name="half")
    double = sf.Variable(np.ones(3, np.float64), name="double")
    opt = sf.optimizers.Adam(0.1)
    opt.apply_gradients([(sf.constant(np.ones(3, np.float32)), half), (np.ones(3), double)])
    assert half.numpy().dtype == np.float16
    assert double.numpy().dtype == np.float64
    assert opt.get_slot(half, "m").dtype == np.float16
    np.testing.assert_allclose(double.numpy(), 0.9, rtol=1e-6)
    np.testing.assert_allclose(half.numpy().astype(np.float64), 0.9, rtol=1e-2)


def test_a_graph_variable_in_an_eager_step_is_refused_before_anything_changes() -> None:
    with sf.Graph().as_default():
        late = sf.Variable(1.0, name="late")
    early = sf.Variable(1.0, name="early")
    opt = sf.optimizers.SGD(0.1)
    with pytest.raises(TypeError, match=r"^Graph variable 'late:0' of .* cannot be used eagerly"):
        opt.apply_gradients([(sf.constant(1.0), early), (sf.constant(1.0), late)])
    assert float(early.numpy()) == 1.0
    assert opt.variables == ()


def test_build_refuses_integer_variables() -> None:
    opt = sf.optimizers.Adam()
    with pytest.raises(TypeError, match=r"^Adam cannot update 'count:0' of dtype int64"):
        opt.build([sf.Variable(np.int64(0), name="count")])
    assert opt.variables == ()


def test_a_python_schedule_in_eager_code() -> None:
    def piecewise(count: Any) -> float:
        return 0.02 if int(count) < STEPS // 2 else 0.005

    w = sf.Variable(W0, name="w")
    opt = sf.optimizers.SGD(piecewise)
    for _ in range(STEPS):
        with sf.GradientTape() as tape:
            loss = _loss(w, sf.constant(X))
        opt.apply_gradients([(tape.gradient(loss, w), w)])
    rates = [0.02] * (STEPS // 2) + [0.005] * (STEPS // 2)
    np.testing.assert_allclose(w.numpy(), _sgd_reference(rates), rtol=1e-9, atol=1e-12)


def test_copies_of_a_model_with_its_optimizer_keep_their_slots_linked() -> None:
    model = sf.Module(name="model")
    model.w = sf.Variable([1.0, 2.0], name="w")
    model.optimizer = sf.optimizers.Adam(0.1)
    model.optimizer.apply_gradients([(sf.constant([1.0, 1.0]), model.w)])
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        slot = clone.optimizer.get_slot(clone.w, "m")
        assert slot is not model.optimizer.get_slot(model.w, "m")
        np.testing.assert_allclose(slot.numpy(), [0.1, 0.1], rtol=1e-6)
        clone.optimizer.apply_gradients([(sf.constant([1.0, 1.0]), clone.w)])
        assert int(clone.optimizer.iterations.numpy()) == 2
        assert len(clone.optimizer.variables) == 3  # no second set of slots
    assert int(model.optimizer.iterations.numpy()) == 1
