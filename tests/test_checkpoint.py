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
