"""``sf.train.Checkpoint``: safetensors files by object path, atomic, all-or-nothing restore."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy

import scopeflow as sf

PACKAGE_PARENT = Path(sf.__file__).resolve().parent.parent


class Dense(sf.Module):
    def __init__(self, n_in: int, n_out: int, name: str | None = None, seed: int = 0) -> None:
        super().__init__(name=name)
        rng = np.random.default_rng(seed)
        self.w = sf.Variable(rng.normal(size=(n_in, n_out)).astype(np.float32), name="w")
        self.b = sf.Variable(np.zeros(n_out, np.float32), name="b")

    def __call__(self, x: Any) -> Any:
        return sf.matmul(x, self.w) + self.b


class Model(sf.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__(name="model")
        self.layers = [Dense(3, 4, seed=seed), Dense(4, 1, name="out", seed=seed + 1)]

    def __call__(self, x: Any) -> Any:
        return self.layers[1](sf.relu(self.layers[0](x)))


def _train(model: Model, opt: Any, steps: int = 3) -> None:
    x = sf.constant(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    for _ in range(steps):
        with sf.GradientTape() as tape:
            loss = sf.reduce_sum(sf.square(model(x)))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))


def _values(*objects: Any) -> list[np.ndarray]:
    out = []
    for obj in objects:
        out.extend(np.array(v.numpy()) for v in obj.variables)
    return out


def test_round_trip_by_object_path(tmp_path: Path) -> None:
    model, opt = Model(), sf.optimizers.Adam(0.1)
    _train(model, opt)
    ckpt = sf.train.Checkpoint(model=model, optimizer=opt)
    path = ckpt.write(tmp_path / "ckpt.safetensors")
    arrays = safetensors.numpy.load_file(path)
    assert sorted(arrays) == sorted(
        [
            "model/layers/0/b",
            "model/layers/0/w",
            "model/layers/1/b",
            "model/layers/1/w",
            "optimizer/iterations",
            *[
                f"optimizer/slots/model/layers/{i}/{p}/{s}"
                for i in (0, 1)
                for p in "bw"
                for s in "mv"
            ],
        ]
    )
    saved = _values(model, opt)
    _train(model, opt)  # move every variable
    assert not np.array_equal(_values(model)[0], saved[len(opt.variables)])
    status = ckpt.restore(path)
    assert status.assert_consumed() is status
    for got, want in zip(_values(model, opt), saved, strict=True):
        np.testing.assert_array_equal(got, want)


def test_restore_into_a_fresh_model_creates_the_optimizer_slots(tmp_path: Path) -> None:
    model, opt = Model(seed=1), sf.optimizers.SGD(0.1, momentum=0.9)
    _train(model, opt)
    path = sf.train.Checkpoint(model=model, optimizer=opt).write(tmp_path / "c")
    fresh, fresh_opt = Model(seed=2), sf.optimizers.SGD(0.1, momentum=0.9)
    assert fresh_opt.variables == ()
    sf.train.Checkpoint(model=fresh, optimizer=fresh_opt).restore(path)
    for got, want in zip(_values(fresh, fresh_opt), _values(model, opt), strict=True):
        np.testing.assert_array_equal(got, want)
    # Training continues identically from the restored state.
    _train(model, opt)
    _train(fresh, fresh_opt)
    for got, want in zip(_values(fresh, fresh_opt), _values(model, opt), strict=True):
        np.testing.assert_array_equal(got, want)


def test_restore_in_another_process(tmp_path: Path) -> None:
    model = Model(seed=3)
    _train(model, sf.optimizers.SGD(0.05))
    path = sf.train.Checkpoint(model=model).write(tmp_path / "weights")
    x = np.array([[0.5, -0.25, 1.0]], np.float32)
    expected = model(sf.constant(x)).numpy()
    script = textwrap.dedent(
        f"""
        import numpy as np, scopeflow as sf
        class Dense(sf.Module):
            def __init__(self, n_in, n_out, name=None):
                super().__init__(name=name)
                self.w = sf.Variable(np.zeros((n_in, n_out), np.float32), name="w")
                self.b = sf.Variable(np.zeros(n_out, np.float32), name="b")
        class Model(sf.Module):
            def __init__(self):
                super().__init__(name="model")
                self.layers = [Dense(3, 4), Dense(4, 1, name="out")]
        m = Model()
        sf.train.Checkpoint(model=m).restore({str(path)!r})
        x = sf.constant(np.array({x.tolist()!r}, np.float32))
        h = sf.relu(sf.matmul(x, m.layers[0].w) + m.layers[0].b)
        print(repr((sf.matmul(h, m.layers[1].w) + m.layers[1].b).numpy().tolist()))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_PARENT)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert eval(result.stdout) == expected.tolist()


def _corrupt_check(ckpt: Any, model: Model, path: str, pattern: str) -> None:
    before = _values(model)
    with pytest.raises(ValueError, match=pattern):
        ckpt.restore(path)
    for got, want in zip(_values(model), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_truncated_and_garbage_files_raise_and_change_nothing(tmp_path: Path) -> None:
    model = Model()
    ckpt = sf.train.Checkpoint(model=model)
    path = ckpt.write(tmp_path / "ok")
    data = Path(path).read_bytes()
    for name, blob in [
        ("truncated", data[: len(data) // 2]),
        ("header-only", data[:8]),
        ("empty", b""),
        ("garbage", os.urandom(200)),
        ("bad-json", struct.pack("<Q", 10) + b"{not json}"),
    ]:
        bad = tmp_path / name
        bad.write_bytes(blob)
        _corrupt_check(ckpt, model, str(bad), rf"'{bad}'")
    _corrupt_check(ckpt, model, str(tmp_path / "missing"), r"^Cannot read '.*missing'")


def _rewrite(path: str, out: Path, change: Any, metadata: dict[str, str] | None = None) -> str:
    arrays = dict(safetensors.numpy.load_file(path))
    change(arrays)
    meta = metadata or {"format": "scopeflow.checkpoint", "version": "1"}
    out.write_bytes(safetensors.numpy.save(arrays, metadata=meta))
    return str(out)


def test_wrong_shape_dtype_extra_and_missing_entries(tmp_path: Path) -> None:
    model = Model()
    ckpt = sf.train.Checkpoint(model=model)
    path = ckpt.write(tmp_path / "ok")

    def reshape(a: dict[str, Any]) -> None:
        a["model/layers/1/w"] = np.zeros((4, 2), np.float32)

    def retype(a: dict[str, Any]) -> None:
        a["model/layers/0/b"] = np.zeros(4, np.float64)

    def extra(a: dict[str, Any]) -> None:
        a["model/layers/2/w"] = np.zeros(1, np.float32)

    def missing(a: dict[str, Any]) -> None:
        del a["model/layers/0/w"]

    cases = [
        (reshape, r"entry 'model/layers/1/w' has dtype float32 and shape \(4, 2\)"),
        (retype, r"entry 'model/layers/0/b' has dtype float64"),
        (extra, r"entry 'model/layers/2/w' matches no tracked object"),
        (missing, r"has no entry for 'model/layers/0/w'"),
    ]
    for change, pattern in cases:
        bad = _rewrite(path, tmp_path / change.__name__, change)
        _corrupt_check(ckpt, model, bad, pattern)
    # An extra entry is fine when asked for.
    ckpt.restore(_rewrite(path, tmp_path / "extra2", extra), expect_partial=True)


def test_files_of_another_format_or_version(tmp_path: Path) -> None:
    model = Model()
    ckpt = sf.train.Checkpoint(model=model)
    path = ckpt.write(tmp_path / "ok")
    other = _rewrite(path, tmp_path / "other", lambda a: None, {"format": "something"})
    _corrupt_check(ckpt, model, other, r"is not a scopeflow.checkpoint file")
    newer = _rewrite(
        path, tmp_path / "v9", lambda a: None, {"format": "scopeflow.checkpoint", "version": "9"}
    )
    _corrupt_check(ckpt, model, newer, r"has scopeflow.checkpoint version '9'")
    plain = tmp_path / "plain"
    plain.write_bytes(safetensors.numpy.save({"x": np.zeros(1)}))
    _corrupt_check(ckpt, model, str(plain), r"has no scopeflow metadata")
    assert json.loads(Path(path).read_bytes()[8:].split(b"}}", 1)[0] + b"}}")


def test_save_counts_and_latest_checkpoint(tmp_path: Path) -> None:
    model = Model()
    ckpt = sf.train.Checkpoint(model=model)
    prefix = tmp_path / "run" / "ckpt"
    prefix.parent.mkdir()
    assert sf.train.latest_checkpoint(prefix) is None
    paths = [ckpt.save(prefix) for _ in range(3)]
    assert [Path(p).name for p in paths] == ["ckpt-1", "ckpt-2", "ckpt-3"]
    assert sf.train.latest_checkpoint(prefix) == paths[-1]
    assert int(ckpt.save_counter.numpy()) == 3
    fresh = sf.train.Checkpoint(model=Model())
    fresh.restore(paths[1])
    assert int(fresh.save_counter.numpy()) == 2
    assert not [n for n in os.listdir(prefix.parent) if n.startswith(".tmp-")]


def test_a_failed_save_leaves_no_file_and_no_counter_step(tmp_path: Path) -> None:
    holder = sf.Module(name="holder")
    holder.z = sf.Variable(np.zeros(2, np.complex128), name="z")  # safetensors has no c128
    ckpt = sf.train.Checkpoint(holder=holder)
    with pytest.raises(ValueError, match=r"^Cannot write checkpoint .*complex128"):
        ckpt.save(tmp_path / "c")
    assert os.listdir(tmp_path) == []
    assert int(ckpt.save_counter.numpy()) == 0


def test_bad_objects_and_graph_variables(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"^Checkpoint\(model=\.\.\.\) takes modules"):
        sf.train.Checkpoint(model=object())
    with pytest.raises(ValueError, match="reserved"):
        sf.train.Checkpoint(save_counter=sf.Variable(1))
    g = sf.Graph()
    with g.as_default():
        v = sf.Variable(1.0, name="gv")
    with pytest.raises(TypeError, match=r"^Cannot checkpoint graph variable 'gv:0'"):
        sf.train.Checkpoint(v=v).write(tmp_path / "g")


def test_slots_of_untracked_variables_are_refused(tmp_path: Path) -> None:
    model, loose = Model(), sf.Variable(1.0, name="loose")
    opt = sf.optimizers.Adam()
    opt.apply_gradients([(sf.constant(1.0), loose)])
    with pytest.raises(ValueError, match=r"slot for 'loose:0', which this checkpoint does not"):
        sf.train.Checkpoint(model=model, optimizer=opt).write(tmp_path / "c")


def test_a_reader_never_sees_a_torn_checkpoint(tmp_path: Path) -> None:
    """A writer saves k in every variable while readers restore: all values agree."""
    writer_model = Model()
    writer = sf.train.Checkpoint(model=writer_model)
    path = tmp_path / "live"
    for v in writer_model.variables:
        v.assign(np.zeros(v.shape, np.float32))
    writer.write(path)
    stop = threading.Event()
    problems: list[str] = []

    def write_loop() -> None:
        k = 0.0
        while not stop.is_set():
            k += 1
            for v in writer_model.variables:
                v.assign(np.full(v.shape, k, np.float32))
            writer.write(path)

    def read_loop() -> None:
        reader_model = Model()
        reader = sf.train.Checkpoint(model=reader_model)
        for _ in range(60):
            try:
                reader.restore(path)
            except ValueError as err:  # pragma: no cover - the failure being tested
                problems.append(str(err))
                return
            values = [np.unique(v.numpy()) for v in reader_model.variables]
            if any(u.size != 1 for u in values):
                problems.append("mixed values inside one variable")
            seen = {float(u[0]) for u in values}
            if len(seen) > 1:
                problems.append(f"values from several saves: {seen}")

    w = threading.Thread(target=write_loop)
    readers = [threading.Thread(target=read_loop) for _ in range(2)]
    w.start()
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    stop.set()
    w.join()
    assert problems == []
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]


def test_restore_refuses_graph_variables_before_changing_anything(tmp_path: Path) -> None:
    early = sf.Variable(5.0, name="early")
    path = sf.train.Checkpoint(a=early, z=sf.Variable(2.0)).write(tmp_path / "c")
    early.assign(7.0)
    with sf.Graph().as_default():
        late = sf.Variable(1.0, name="late")
    with pytest.raises(TypeError, match=r"^Cannot restore into graph variable 'late:0' \('z'\)"):
        sf.train.Checkpoint(a=early, z=late).restore(path)
    assert float(early.numpy()) == 7.0  # 'a' sorts first: it must not have been restored


def test_a_failed_restore_creates_no_optimizer_state(tmp_path: Path) -> None:
    model, opt = Model(), sf.optimizers.Adam(0.1)
    _train(model, opt)
    path = sf.train.Checkpoint(model=model, optimizer=opt).save(tmp_path / "c")

    def reshape(a: dict[str, Any]) -> None:
        a["model/layers/1/w"] = np.zeros((4, 2), np.float32)

    def drop_one_slot(a: dict[str, Any]) -> None:
        del a["optimizer/slots/model/layers/0/w/v"]

    def retype_slot(a: dict[str, Any]) -> None:
        a["optimizer/slots/model/layers/0/b/m"] = np.zeros(4, np.float64)

    cases = [
        (reshape, r"entry 'model/layers/1/w' has dtype float32 and shape \(4, 2\)"),
        (drop_one_slot, r"has no entry for 'optimizer/slots/model/layers/0/w/v'"),
        (retype_slot, r"entry 'optimizer/slots/model/layers/0/b/m' has dtype float64"),
    ]
    for change, pattern in cases:
        bad = _rewrite(path, tmp_path / change.__name__, change)
        fresh, fresh_opt = Model(seed=5), sf.optimizers.Adam(0.1)
        ckpt = sf.train.Checkpoint(model=fresh, optimizer=fresh_opt)
        before = _values(fresh)
        with pytest.raises(ValueError, match=pattern):
            ckpt.restore(bad)
        assert fresh_opt.variables == ()  # no slot and no step counter was created
        assert "save_counter" not in dict(ckpt._sf_children())
        for got, want in zip(_values(fresh), before, strict=True):
            np.testing.assert_array_equal(got, want)


def test_object_paths_that_collide_are_refused(tmp_path: Path) -> None:
    for mapping in (
        {"a/b": sf.Variable(1.0), "a": {"b": sf.Variable(2.0)}},
        {1: sf.Variable(1.0), "1": sf.Variable(2.0)},
    ):
        holder = sf.Module(name="holder")
        holder.d = mapping
        with pytest.raises(ValueError, match=r"^Two variables have the object path 'h/d/(a/b|1)'"):
            sf.train.Checkpoint(h=holder).write(tmp_path / "c")
        assert os.listdir(tmp_path) == []


def test_restore_none_restores_nothing_and_its_assertions_fail() -> None:
    model = Model()
    before = _values(model)
    status = sf.train.Checkpoint(model=model).restore(sf.train.latest_checkpoint("/nonexistent/c"))
    with pytest.raises(AssertionError, match=r"^Nothing was restored: restore\(None\)"):
        status.assert_consumed()
    with pytest.raises(AssertionError, match=r"^Nothing was restored"):
        status.assert_existing_objects_matched()
    for got, want in zip(_values(model), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_deeply_nested_header_is_a_value_error(tmp_path: Path) -> None:
    blob = b"[" * 100_000 + b"]" * 100_000
    bad = tmp_path / "deep"
    bad.write_bytes(struct.pack("<Q", len(blob)) + blob)
    model = Model()
    _corrupt_check(sf.train.Checkpoint(model=model), model, str(bad), rf"^Cannot read '{bad}'")


def test_fuzzed_files_restore_exactly_or_raise_value_error(tmp_path: Path) -> None:
    model = Model()
    ckpt = sf.train.Checkpoint(model=model)
    good = Path(ckpt.write(tmp_path / "good")).read_bytes()
    saved = _values(model)
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad"
    for i in range(150):
        blob = bytearray(good)
        if i % 3 == 0:
            blob = blob[: int(rng.integers(0, len(blob)))]
        else:
            for pos in rng.integers(0, len(blob), size=int(rng.integers(1, 4))):
                blob[pos] ^= 1 << int(rng.integers(0, 8))
        bad.write_bytes(bytes(blob))
        for v in model.variables:
            v.assign(np.full(v.shape, -1.0, np.float32))
        message = ""
        try:
            ckpt.restore(bad)
        except ValueError as err:
            message = str(err)
        if message:
            assert str(bad) in message
            assert all((v.numpy() == -1.0).all() for v in model.variables)  # unchanged
        else:  # a flip inside the data: every entry still has its shape and dtype
            assert [v.shape for v in model.variables] == [a.shape for a in saved]


def test_save_and_restore_in_a_graph_context_act_on_eager_state(
    tmp_path: Path,
) -> None:
    model = Model()
    ckpt = sf.train.Checkpoint(model=model)
    with sf.Graph().as_default():
        first = ckpt.save(tmp_path / "c")
        assert ckpt.save_counter.graph is None
        ckpt.restore(first)
    assert Path(first).name == "c-1"
    assert int(ckpt.save_counter.numpy()) == 1


def test_save_creates_directories_and_refuses_a_directory_target(tmp_path: Path) -> None:
    ckpt = sf.train.Checkpoint(model=Model())
    path = ckpt.save(tmp_path / "new" / "deeper" / "ckpt")
    assert Path(path).is_file()
    target = tmp_path / "adir"
    target.mkdir()
    with pytest.raises(IsADirectoryError, match=rf"Cannot write checkpoint '{target}': it is a"):
        ckpt.write(target)
    (tmp_path / "adir-2").mkdir()
    with pytest.raises(IsADirectoryError, match=r"Cannot write checkpoint '.*adir-2'"):
        ckpt.save(tmp_path / "adir")
    assert int(ckpt.save_counter.numpy()) == 1  # the failed save used no number
    assert os.listdir(target) == []
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]


def test_threads_saving_one_checkpoint_get_distinct_numbers(tmp_path: Path) -> None:
    ckpt = sf.train.Checkpoint(model=Model())
    barrier = threading.Barrier(4)
    paths: list[str] = []

    def worker() -> None:
        barrier.wait()
        for _ in range(5):
            paths.append(ckpt.save(tmp_path / "c"))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(paths) == sorted(str(tmp_path / f"c-{n}") for n in range(1, 21))
    assert int(ckpt.save_counter.numpy()) == 20
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["checkpoint_state.json", *(f"c-{n}" for n in range(1, 21))]
    )
    assert sf.train.latest_checkpoint(tmp_path) == str(tmp_path / "c-20")


def test_latest_checkpoint_takes_a_directory_and_follows_a_restarted_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert sf.train.latest_checkpoint(run) is None  # no directory yet
    first = sf.train.Checkpoint(model=Model())
    for _ in range(3):
        first.save(run / "ckpt")
    (run / "ckpt-9").mkdir()  # unrelated entries are never the answer
    (run / "ckpt-7.bak").write_bytes(b"")
    (run / "other-12").write_bytes(b"")
    assert sf.train.latest_checkpoint(run) == str(run / "ckpt-3")
    assert sf.train.latest_checkpoint(run / "ckpt") == str(run / "ckpt-3")
    # A new run counts from 1 again in the same directory: its save is the latest.
    restarted = sf.train.Checkpoint(model=Model())
    path = restarted.save(run / "ckpt")
    assert Path(path).name == "ckpt-1"
    assert sf.train.latest_checkpoint(run) == path
    assert sf.train.latest_checkpoint(run / "ckpt") == path
    # Without the record (files copied alone, or a damaged record), the highest number.
    for damaged in (b"{not json", b'{"format": "scopeflow.checkpoint_state", "latest": "../x"}'):
        (run / "checkpoint_state.json").write_bytes(damaged)
        assert sf.train.latest_checkpoint(run / "ckpt") == str(run / "ckpt-3")
        assert sf.train.latest_checkpoint(run) is None
    status = restarted.restore(sf.train.latest_checkpoint(run / "ckpt"))
    assert status.assert_consumed() is status


def test_checkpoint_files_are_readable_like_plainly_written_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    path = sf.train.Checkpoint(model=Model()).save(tmp_path / "ckpt")
    assert os.stat(path).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
    os.chmod(path, 0o640)  # an existing file keeps its mode when overwritten
    sf.train.Checkpoint(model=Model()).write(path)
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_a_name_too_long_is_an_os_error_naming_the_target(tmp_path: Path) -> None:
    ckpt = sf.train.Checkpoint(model=Model())
    target = tmp_path / ("x" * 300)
    with pytest.raises(OSError, match=r"^\[Errno \d+\] Cannot write checkpoint '.*xxxx'"):
        ckpt.write(target)
    assert os.listdir(tmp_path) == []


def _momentum_states(steps: int) -> list[tuple[float, float]]:
    """(w, velocity) after k constant-gradient SGD-momentum steps, k = 0..steps."""
    w, velocity, out = 0.0, 0.0, [(0.0, 0.0)]
    for _ in range(steps):
        velocity = 0.9 * velocity - 0.01 * 1.0
        w = w + velocity
        out.append((w, velocity))
    return out


def test_saves_and_restores_never_split_a_training_step(tmp_path: Path) -> None:
    """Steps run in a thread while the main thread saves and restores."""
    model = sf.Module(name="model")
    model.w = sf.Variable(np.zeros(64), name="w")
    opt = sf.optimizers.SGD(0.01, momentum=0.9)
    opt.build([model.w])
    ckpt = sf.train.Checkpoint(model=model, optimizer=opt)
    reference = _momentum_states(400)
    stop = threading.Event()
    g = sf.constant(np.ones(64))

    def train() -> None:
        while not stop.is_set() and int(opt.iterations.numpy()) < 390:
            opt.apply_gradients([(g, model.w)])

    def consistent(w: np.ndarray, velocity: np.ndarray, k: int) -> bool:
        want_w, want_v = reference[k]
        return bool(np.allclose(w, want_w, rtol=1e-9) and np.allclose(velocity, want_v, rtol=1e-9))

    early = ckpt.write(tmp_path / "early")
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread = threading.Thread(target=train)
    thread.start()
    try:
        for i in range(30):
            arrays = safetensors.numpy.load_file(ckpt.write(tmp_path / f"c{i}"))
            k = int(arrays["optimizer/iterations"])
            assert consistent(arrays["model/w"], arrays["optimizer/slots/model/w/momentum"], k), (
                f"save {i} mixes steps (iterations={k})"
            )
            if i % 5 == 0:
                ckpt.restore(early)  # back to step 0 while training runs
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(old)
    k = int(opt.iterations.numpy())
    assert consistent(model.w.numpy(), opt.get_slot(model.w, "momentum").numpy(), k)


def test_classes_are_not_trackable_objects() -> None:
    with pytest.raises(TypeError, match=r"^Checkpoint\(opt=\.\.\.\) takes modules"):
        sf.train.Checkpoint(opt=sf.optimizers.Adam)


def test_slots_for_an_integer_variable_are_refused_before_anything_changes(
    tmp_path: Path,
) -> None:
    holder = sf.Module(name="holder")
    holder.w = sf.Variable(np.ones(2, np.float32), name="w")
    holder.count = sf.Variable(np.zeros(2, np.float32), name="count")
    first, second = sf.optimizers.Adam(), sf.optimizers.SGD(0.1, momentum=0.5)
    first.apply_gradients([(sf.constant([1.0, 1.0]), holder.w)])
    second.apply_gradients([(sf.constant([1.0, 1.0]), holder.count)])
    path = sf.train.Checkpoint(h=holder, a=first, b=second).write(tmp_path / "c")
    fresh = sf.Module(name="holder")
    fresh.w = sf.Variable(np.zeros(2, np.float32), name="w")
    fresh.count = sf.Variable(np.zeros(2, np.int32), name="count")  # an int now
    fresh_first, fresh_second = sf.optimizers.Adam(), sf.optimizers.SGD(0.1, momentum=0.5)
    ckpt = sf.train.Checkpoint(h=fresh, a=fresh_first, b=fresh_second)
    with pytest.raises(ValueError, match=r"has optimizer slots for 'h/count' \('count:0'\), whose"):
        ckpt.restore(path)
    assert fresh_first.variables == () == fresh_second.variables
    assert fresh.w.numpy().tolist() == [0.0, 0.0]


def test_checkpoint_methods_refuse_to_run_while_tracing(tmp_path: Path) -> None:
    model = Model()
    ckpt = sf.train.Checkpoint(model=model)
    path = ckpt.write(tmp_path / "c")
    calls = {
        "write": lambda: ckpt.write(tmp_path / "d"),
        "save": lambda: ckpt.save(tmp_path / "e"),
        "restore": lambda: ckpt.restore(path),
    }
    for method, call in calls.items():

        @sf.function
        def traced(call: Any = call) -> Any:
            call()
            return sf.constant(0.0)

        with pytest.raises(
            RuntimeError, match=rf"^Checkpoint\.{method}\(\) was called while tracing"
        ):
            traced()
    assert sorted(os.listdir(tmp_path)) == ["c"]
    assert ckpt.save_counter.numpy() == 0


def _file_with_header(path: Path, header: bytes, data: bytes) -> str:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return str(path)


def test_crafted_headers_are_value_errors_naming_the_file(tmp_path: Path) -> None:
    model = sf.Module(name="m")
    model.v = sf.Variable(np.ones(2, np.float32), name="v")
    ckpt = sf.train.Checkpoint(m=model)
    meta = b'"__metadata__": {"format": "scopeflow.checkpoint", "version": "1"}'

    def entry(dtype: str, shape: bytes, end: int) -> bytes:
        return b'{%s, "m/v": {"dtype": "%s", "shape": [%s], "data_offsets": [0, %d]}}' % (
            meta,
            dtype.encode(),
            shape,
            end,
        )

    cases = {
        "bf16": (entry("BF16", b"2", 4), 4, r"dtype 'BF16' has no NumPy equivalent"),
        "f8": (entry("F8_E4M3", b"2", 2), 2, r"dtype 'F8_E4M3' has no NumPy equivalent"),
        "overflow": (
            entry("F32", b"1099511627776, 1099511627776", 8),
            8,
            r"holds 8 bytes, but its shape \(1099511627776, 1099511627776\)",
        ),
        "long-int": (entry("F32", b"9" * 5000, 8), 8, r"its header is not valid JSON"),
    }
    for name, (header, size, pattern) in cases.items():
        bad = _file_with_header(tmp_path / name, header, b"\0" * size)
        with pytest.raises(ValueError, match=rf"^Cannot read '{bad}': .*{pattern}"):
            ckpt.restore(bad)
        assert model.v.numpy().tolist() == [1.0, 1.0]


DTYPES = [
    np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
    np.uint64, np.float16, np.float32, np.float64, np.complex64,
]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_supported_dtype_round_trips_with_0d_and_empty_shapes(
    tmp_path: Path, dtype: Any
) -> None:
    rng = np.random.default_rng(1)
    values = {
        "scalar": np.array(rng.integers(0, 2), dtype),
        "empty": np.zeros((0, 3), dtype),
        "matrix": (rng.normal(size=(3, 2)) * 10).astype(dtype),
    }
    holder = sf.Module(name="holder")
    holder.vars = {k: sf.Variable(v, name=k) for k, v in values.items()}
    ckpt = sf.train.Checkpoint(holder=holder)
    path = ckpt.write(tmp_path / "c")
    for var in holder.vars.values():
        var.assign(np.ones(var.shape, dtype))
    ckpt.restore(path)
    for key, want in values.items():
        got = holder.vars[key].numpy()
        assert got.dtype == np.dtype(dtype)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert safetensors.numpy.load_file(path)["holder/vars/matrix"].dtype == np.dtype(dtype)


def test_tensors_must_tile_the_data_exactly(tmp_path: Path) -> None:
    """Overlapping, gapped or trailing data is refused, as the safetensors format demands."""
    model = Model()
    ckpt = sf.train.Checkpoint(model=model)
    good = Path(ckpt.write(tmp_path / "good")).read_bytes()
    (size,) = struct.unpack("<Q", good[:8])
    header = json.loads(good[8 : 8 + size])
    cases = {}
    trailing = good + b"\0\0\0\0"
    cases["trailing"] = (trailing, r"4 bytes after the last tensor")
    overlap = dict(header)
    _, second = sorted(
        (k for k in overlap if k != "__metadata__"), key=lambda k: overlap[k]["data_offsets"][0]
    )[:2]
    shifted = dict(overlap[second])
    begin, end = shifted["data_offsets"]
    shifted["data_offsets"] = [begin - 4, end - 4]
    overlap[second] = shifted
    blob = json.dumps(overlap).encode()
    cases["overlap"] = (
        struct.pack("<Q", len(blob)) + blob + good[8 + size :],
        r"does not start where expected",
    )
    for name, (data, pattern) in cases.items():
        bad = tmp_path / name
        bad.write_bytes(data)
        _corrupt_check(ckpt, model, str(bad), pattern)


def test_restored_values_are_read_only_and_independent(tmp_path: Path) -> None:
    model = Model()
    ckpt = sf.train.Checkpoint(model=model)
    path = ckpt.write(tmp_path / "c")
    ckpt.restore(path)
    first, second = model.variables[:2]
    before = np.array(second.numpy())
    assert not first.numpy().flags.writeable
    first.assign(np.full(first.shape, 7.0, np.float32))
    np.testing.assert_array_equal(second.numpy(), before)
    assert np.all(first.numpy() == 7.0)


def test_sync_flushes_to_disk_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Model()
    ckpt = sf.train.Checkpoint(model=model)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    ckpt.write(tmp_path / "fast")
    assert synced == []  # atomic (temp file + rename) without waiting for the disk
    path = ckpt.save(tmp_path / "durable", sync=True)
    assert len(synced) == 1
    ckpt.restore(path).assert_consumed()
