"""``sf.saved_model`` with every kind of op a function can hold, and how loaded models behave.

Random ops keep their seeds and draw anew on each call; ``sf.print`` prints when a loaded
function runs; tensor indexing, assertions and stop_gradient round trip; Python code
(custom gradients) and traces a loaded method could not tell apart are refused at save
time; signatures take keyword arguments only, as in TensorFlow.
"""

from __future__ import annotations

import copy
import re
import threading
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf

X = np.arange(6, dtype=np.float32).reshape(2, 3)
SPEC = sf.TensorSpec((2, 3), sf.float32, name="x")


def _module(fn: Any, spec: sf.TensorSpec = SPEC) -> sf.Module:
    class M(sf.Module):
        def __init__(self) -> None:
            super().__init__(name="m")
            self.v = sf.Variable(np.full((2, 3), 2.0, np.float32), name="v")

        @sf.function(input_signature=[spec])
        def __call__(self, x: Any) -> Any:
            return fn(self, x)

    return M()


def _round_trip(tmp_path: Path, model: sf.Module, name: str = "model") -> Any:
    path = str(tmp_path / name)
    sf.saved_model.save(model, path)
    return sf.saved_model.load(path)


def _numpy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _numpy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numpy(v) for v in value]
    return value.numpy()


def _random_outputs(m: Any, x: Any) -> Any:
    return {
        "uniform": sf.random.uniform((4,), seed=3),
        "normal": sf.random.normal((4,), seed=4),
        "truncated": sf.random.truncated_normal((4,), seed=5),
        "ints": sf.random.uniform((4,), 0, 1000, dtype=sf.int32, seed=6),
        "shuffled": sf.random.shuffle(sf.range(10), seed=7),
        "classes": sf.random.categorical(x, 5, seed=8),
        "scaled": sf.random.uniform(sf.shape(x), seed=9) * x,
    }


def test_seeded_random_ops_keep_their_seeds_and_draw_anew_on_each_call(tmp_path: Path) -> None:
    model = _module(_random_outputs)
    loaded = _round_trip(tmp_path, model)
    again = sf.saved_model.load(str(tmp_path / "model"))
    want = _numpy(model(X))  # the original's first call: the draws 0 of each seed
    first = _numpy(loaded(X))
    assert first.keys() == want.keys()
    for key, value in want.items():
        np.testing.assert_array_equal(first[key], value, err_msg=key)
    second = _numpy(loaded(X))
    assert any(not np.array_equal(first[k], second[k]) for k in first)
    assert not np.array_equal(first["uniform"], second["uniform"])
    # Another load of the same directory has its own streams, from the first draw on.
    for key, value in _numpy(again(X)).items():
        np.testing.assert_array_equal(first[key], value, err_msg=key)


def test_unseeded_random_ops_load_and_draw_new_values(tmp_path: Path) -> None:
    loaded = _round_trip(tmp_path, _module(lambda m, x: sf.random.normal((64,)) + 0.0))
    a, b = loaded(X).numpy(), loaded(X).numpy()
    assert a.shape == (64,)
    assert not np.array_equal(a, b)


def test_print_in_a_loaded_function_prints_on_every_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def fn(m: Any, x: Any) -> Any:
        sf.print("x:", {"a": [x[0], "t"]}, (1, x[1, 0]), sep="|", summarize=-1)
        return x * 2.0

    model = _module(fn)
    capsys.readouterr()
    path = str(tmp_path / "model")
    sf.saved_model.save(model, path)
    loaded = sf.saved_model.load(path)
    assert capsys.readouterr().out == ""  # loading runs nothing
    np.testing.assert_array_equal(loaded(X).numpy(), X * 2)
    want = "x:|{'a': [[0. 1. 2.], 't']}|(1, 3.)\n"
    assert capsys.readouterr().out == want
    loaded(X + 1)
    assert capsys.readouterr().out == "x:|{'a': [[1. 2. 3.], 't']}|(1, 4.)\n"


def test_tensor_indexing_round_trips_with_its_gradient(tmp_path: Path) -> None:
    def fn(m: Any, x: Any) -> Any:
        i = sf.cast(x[0, 1], sf.int32)  # 1
        return x[i, i:] * m.v[:, sf.constant(1)][0] + sf.reduce_sum(x[x > 2.0])

    model = _module(fn)
    loaded = _round_trip(tmp_path, model)
    np.testing.assert_array_equal(loaded(X).numpy(), model(X).numpy())
    x = sf.constant(X)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        want, got = model(x), loaded(x)
    np.testing.assert_array_equal(tape.gradient(got, x).numpy(), tape.gradient(want, x).numpy())


def test_assertions_and_stop_gradient_round_trip(tmp_path: Path) -> None:
    def fn(m: Any, x: Any) -> Any:
        sf.debugging.assert_greater(x, -1.0, message="x too small")
        return sf.stop_gradient(x * m.v) + x * x

    loaded = _round_trip(tmp_path, _module(fn))
    x = sf.constant(X)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = loaded(x)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), 2 * X)
    with pytest.raises(sf.errors.InvalidArgumentError, match="x too small"):
        loaded(X - 5.0)


def test_a_custom_gradient_is_refused_at_save_naming_the_op(tmp_path: Path) -> None:
    @sf.custom_gradient
    def clipped(x: Any) -> Any:
        return x * 3.0, lambda dy: sf.clip_by_value(dy, -0.1, 0.1)

    model = _module(lambda m, x: clipped(x))
    with pytest.raises(
        ValueError,
        match=r"^Cannot save op 'clipped' \(CustomGradient\) of function '__call__': "
        r"attribute 'grad_fn': it holds the Python function .*a saved model holds no code",
    ):
        sf.saved_model.save(model, str(tmp_path / "model"))
    assert not (tmp_path / "model").exists()


def test_signatures_take_keyword_arguments_only(tmp_path: Path) -> None:
    loaded = _round_trip(tmp_path, _module(lambda m, x: x + m.v))
    sig = loaded.signatures["__call__"]
    with pytest.raises(
        TypeError,
        match=re.escape(
            "signature '__call__' takes its inputs by keyword only, got 1 positional "
            "argument(s); call it as signatures['__call__'](x=...)"
        ),
    ):
        sig(X)
    np.testing.assert_array_equal(sig(x=X)["output_0"].numpy(), X + 2)
    np.testing.assert_array_equal(loaded(X).numpy(), X + 2)  # methods take positions


class Switch(sf.Module):
    def __init__(self) -> None:
        super().__init__(name="switch")
        self.scale = sf.Variable(3.0, name="scale")

    @sf.function
    def __call__(self, x: Any, training: bool = False) -> Any:
        return x * self.scale if training else x


def test_traces_that_differ_in_python_arguments_are_refused(tmp_path: Path) -> None:
    model = Switch()
    model(sf.constant([1.0]), training=True)
    model(sf.constant([1.0, 2.0]))  # training=False: told apart from the first by shape only
    with pytest.raises(
        ValueError,
        match=r"^Cannot save method '__call__': its traces were made with different Python "
        r"arguments \(\[False\], \[True\]\), which a loaded method cannot tell apart",
    ):
        sf.saved_model.save(model, str(tmp_path / "model"))
    assert not (tmp_path / "model").exists()
    same = Switch()
    same(sf.constant([1.0]))
    same(sf.constant([1.0, 2.0]))  # the same Python values: saved, dispatched by shape
    loaded = _round_trip(tmp_path, same, "same")
    np.testing.assert_array_equal(loaded(np.array([4.0, 5.0], np.float32)).numpy(), [4, 5])


class Counter(sf.Module):
    def __init__(self) -> None:
        super().__init__(name="counter")
        self.total = sf.Variable(0.0, name="total")

    @sf.function(input_signature=[sf.TensorSpec((), sf.float32, name="d")])
    def add(self, d: Any) -> Any:
        self.total.assign_add(d)
        return self.total.read_value()

    @sf.function(input_signature=[])
    def read(self) -> Any:
        return self.total.read_value()

    @sf.function(input_signature=[sf.TensorSpec((), sf.float32, name="x")])
    def cube(self, x: Any) -> Any:
        return x * x * x + self.total


def test_signatures_share_variables_and_loads_are_independent(tmp_path: Path) -> None:
    model = Counter()
    path = str(tmp_path / "model")
    sf.saved_model.save(model, path, signatures={"add": model.add, "read": model.read})
    a, b = sf.saved_model.load(path), sf.saved_model.load(path)
    a.signatures["add"](d=2.0)
    a.add(3.0)
    assert float(a.signatures["read"]()["output_0"]) == 5.0
    assert float(a.total.numpy()) == 5.0
    assert float(model.total.numpy()) == 0.0
    assert float(b.read()) == 0.0  # another load: other variables


def test_second_order_gradients_through_a_loaded_function(tmp_path: Path) -> None:
    loaded = _round_trip(tmp_path, Counter())
    x = sf.constant(2.0)
    with sf.GradientTape() as outer:
        outer.watch(x)
        with sf.GradientTape() as inner:
            inner.watch(x)
            y = loaded.cube(x)
        dy = inner.gradient(y, x)
    assert float(dy) == 12.0
    assert float(outer.gradient(dy, x)) == 12.0


def test_threads_load_and_call_one_directory_concurrently(tmp_path: Path) -> None:
    path = str(tmp_path / "model")
    sf.saved_model.save(Counter(), path)
    barrier = threading.Barrier(4)
    results: list[float] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            loaded = sf.saved_model.load(path)
            barrier.wait()
            loaded.add(float(i))
            results.append(float(loaded.read()) - i)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [0.0] * 4  # each thread's model has its own variables


@pytest.mark.anyio
async def test_tasks_load_and_call_eagerly_with_awaits_in_between(tmp_path: Path) -> None:
    path = str(tmp_path / "model")
    sf.saved_model.save(Counter(), path)
    got: dict[int, float] = {}

    async def task(i: int) -> None:
        await anyio.sleep(0)
        loaded = sf.saved_model.load(path)
        await anyio.sleep(0)
        loaded.add(float(i))
        await anyio.sleep(0)
        got[i] = float(loaded.cube(1.0))

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(task, i)
    assert got == {i: 1.0 + i for i in range(4)}


class Dropout(sf.Module):
    def __init__(self) -> None:
        super().__init__(name="dropout")
        self.inner = sf.Module(name="inner")
        self.inner.w = sf.Variable(np.ones((256,), np.float32), name="w")

    @sf.function(input_signature=[sf.TensorSpec((256,), sf.float32, name="x")])
    def __call__(self, x: Any) -> Any:
        keep = sf.cast(sf.random.uniform((256,), seed=11) > 0.5, sf.float32)
        return x * keep * self.inner.w


def test_a_tape_differentiates_a_loaded_random_op_with_the_values_it_drew(
    tmp_path: Path,
) -> None:
    loaded = _round_trip(tmp_path, Dropout())
    x = sf.constant(np.full((256,), 3.0, np.float32))
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = loaded(x)
    mask = y.numpy() / 3.0
    assert 0 < mask.sum() < 256
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), mask)
    # Exported again, the seed still names the same draws.
    again = _round_trip(tmp_path, loaded, "again")
    np.testing.assert_array_equal(
        again(x).numpy(), _round_trip(tmp_path, Dropout(), "b")(x).numpy()
    )


def test_saved_objects_can_be_copied(tmp_path: Path) -> None:
    loaded = _round_trip(tmp_path, Dropout())
    node = copy.copy(loaded.inner)
    assert node.w is loaded.inner.w
    with pytest.raises(AttributeError, match="the saved object has no attribute 'nope'"):
        _ = node.nope
