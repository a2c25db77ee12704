"""``sf.saved_model``: export traced functions and variables, load them without the classes."""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import weakref
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf
from scopeflow import _saved_model_format as fmt
from scopeflow._ops._core import apply
from scopeflow._ops._registry import register_op

PACKAGE_PARENT = Path(sf.__file__).resolve().parent.parent
SPEC = sf.TensorSpec((None, 4), sf.float32, name="x")


class Dense(sf.Module):
    def __init__(self, n_in: int, n_out: int, name: str | None = None, seed: int = 0) -> None:
        super().__init__(name=name)
        rng = np.random.default_rng(seed)
        self.w = sf.Variable(rng.normal(size=(n_in, n_out)).astype(np.float32), name="w")
        self.b = sf.Variable(rng.normal(size=(n_out,)).astype(np.float32), name="b")

    def __call__(self, x: Any) -> Any:
        return sf.matmul(x, self.w) + self.b


class MLP(sf.Module):
    def __init__(self) -> None:
        super().__init__(name="mlp")
        self.hidden = Dense(4, 8, seed=1)
        self.out = Dense(8, 3, name="out", seed=2)
        self.steps = sf.Variable(0, name="steps", trainable=False)

    @sf.function(input_signature=[SPEC])
    def __call__(self, x: Any) -> Any:
        return self.out(sf.relu(self.hidden(x)))

    @sf.function(input_signature=[SPEC])
    def predict(self, x: Any) -> Any:
        logits = self(x)
        return {"logits": logits, "best": sf.reduce_max(logits, axis=1)}

    @sf.function(input_signature=[sf.TensorSpec((), sf.float32, name="x")])
    def loop(self, x: Any) -> Any:
        def body(i: Any, y: Any) -> Any:
            y = sf.cond(y > 10.0, lambda: y - 3.0, lambda: y * 2.0 + self.out.b[0])
            return i + 1, y

        return sf.while_loop(lambda i, y: i < 4, body, [0, x])[1]

    @sf.function
    def count(self) -> Any:
        return self.steps.assign_add(1)


def _inputs(seed: int = 7) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).normal(size=(5, 4)).astype(np.float32)


def _saved(tmp_path: Path, model: MLP | None = None) -> tuple[MLP, str]:
    model = model or MLP()
    model.count()  # one trace, so it is saved as a method
    path = str(tmp_path / "model")
    sf.saved_model.save(model, path)
    return model, path


def _tape_grads(fn: Any, x: np.ndarray[Any, Any], variables: Any) -> list[np.ndarray[Any, Any]]:
    xt = sf.constant(x)
    with sf.GradientTape() as tape:
        tape.watch(xt)
        y = sf.reduce_sum(sf.square(fn(xt)))
    grads = tape.gradient(y, [xt, *variables])
    return [g.numpy() for g in grads]


# -- round trips ---------------------------------------------------------------------------


def test_round_trip_in_a_fresh_process_gives_identical_predictions_and_gradients(
    tmp_path: Path,
) -> None:
    model = MLP()
    opt = sf.optimizers.SGD(0.05, momentum=0.9)
    x = _inputs()
    for _ in range(3):
        with sf.GradientTape() as tape:
            loss = sf.reduce_mean(sf.square(model(x)))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    _, path = _saved(tmp_path, model)
    np.save(tmp_path / "x.npy", x)
    want_pred = model(x).numpy()
    want_grads = _tape_grads(model, x, model.trainable_variables)
    want_loop = model.loop(sf.constant(1.5)).numpy()
    # The subprocess imports scopeflow only: the model classes are never defined there.
    script = textwrap.dedent(
        f"""
        import numpy as np, scopeflow as sf
        loaded = sf.saved_model.load({path!r})
        x = np.load({str(tmp_path / "x.npy")!r})
        pred = loaded.signatures["__call__"](x=x)["output_0"].numpy()
        xt = sf.constant(x)
        with sf.GradientTape() as tape:
            tape.watch(xt)
            y = sf.reduce_sum(sf.square(loaded(xt)))
        grads = tape.gradient(y, [xt, *loaded.trainable_variables])
        np.savez({str(tmp_path / "out.npz")!r}, pred=pred,
                 loop=loaded.loop(np.float32(1.5)).numpy(),
                 *[g.numpy() for g in grads])
        print(sorted(loaded.signatures), [v.name for v in loaded.variables])
        """
    )
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_PARENT))
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "MLP" not in result.stdout
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(out["pred"], want_pred)
    np.testing.assert_array_equal(out["loop"], want_loop)
    for i, want in enumerate(want_grads):
        np.testing.assert_array_equal(out[f"arr_{i}"], want)
    assert result.stdout.strip() == (
        "['__call__', 'count', 'loop', 'predict'] "
        "['mlp/dense/b:0', 'mlp/dense/w:0', 'mlp/out/b:0', 'mlp/out/w:0', 'mlp/steps:0']"
    )


def test_loaded_functions_keep_structure_names_and_variables(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    loaded = sf.saved_model.load(path)
    x = _inputs()
    result = loaded.predict(x)
    assert sorted(result) == ["best", "logits"]
    np.testing.assert_array_equal(result["best"].numpy(), model.predict(x)["best"].numpy())
    sig = loaded.signatures["predict"]
    assert sig.input_names == ("x",)
    assert sig.input_signature == (SPEC,)
    np.testing.assert_array_equal(sig(x=x)["logits"].numpy(), model.predict(x)["logits"].numpy())
    assert [v.name for v in loaded.trainable_variables] == [
        v.name for v in model.trainable_variables
    ]
    assert all(v.graph is None for v in loaded.variables)


def test_loaded_stateful_method_updates_its_variable(tmp_path: Path) -> None:
    _, path = _saved(tmp_path)  # the model's counter is 1 when saved
    loaded = sf.saved_model.load(path)
    assert int(loaded.count()) == 2
    assert int(loaded.count()) == 3
    (steps,) = [v for v in loaded.variables if v.name == "mlp/steps:0"]
    assert int(steps.numpy()) == 3


def test_gradients_through_loaded_loop_and_branch_match_the_original(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    loaded = sf.saved_model.load(path)
    for start in (1.5, 12.0):
        x = np.float32(start)
        want = _tape_grads(model.loop, x, [model.out.b])
        got = _tape_grads(loaded.loop, x, [loaded.trainable_variables[2]])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)


def test_load_inside_a_graph_adds_one_call_op_run_by_a_session(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    x = _inputs()
    want = model(x).numpy()
    g = sf.Graph()
    with g.as_default():
        loaded = sf.saved_model.load(path)
        before = len(g.get_operations())
        y = loaded.signatures["__call__"](x=sf.placeholder(sf.float32, (None, 4), name="x"))
        y = y["output_0"]
        init = sf.global_variables_initializer()
    added = [op.type for op in g.get_operations()[before:]]
    assert added.count("PartitionedCall") + added.count("StatefulPartitionedCall") == 1
    assert all(v.graph is g for v in loaded.variables)
    with sf.Session(g) as sess:
        sess.run(init)
        got = sess.run(y, {g.get_tensor_by_name("x:0"): x})
    np.testing.assert_array_equal(got, want)


def test_load_inside_a_traced_function_lifts_its_variables(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    holder: dict[str, Any] = {}

    @sf.function(input_signature=[SPEC])
    def serve(x: Any) -> Any:
        if "model" not in holder:
            holder["model"] = sf.saved_model.load(path)
        return holder["model"](x) * 2.0

    x = _inputs()
    np.testing.assert_allclose(serve(x).numpy(), model(x).numpy() * 2.0, rtol=1e-6)
    np.testing.assert_allclose(serve(x + 1).numpy(), model(x + 1).numpy() * 2.0, rtol=1e-6)
    assert serve.trace_count == 1
    assert all(v.graph is None for v in holder["model"].variables)  # lifted to eager


def test_loaded_variables_checkpoint_by_their_saved_paths(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    loaded = sf.saved_model.load(path)
    ckpt_path = sf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    for v in loaded.trainable_variables:
        v.assign(np.zeros(v.shape, v.dtype))
    sf.train.Checkpoint(model=loaded).restore(ckpt_path, expect_partial=True)
    x = _inputs()
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_arrays_of_every_dtype_and_shape_round_trip_exactly(tmp_path: Path) -> None:
    values = [
        np.array([True, False]),
        np.arange(6, dtype=np.int8).reshape(2, 3),
        np.array(-3, dtype=np.int64),
        np.array([2**63 - 1], dtype=np.int64),
        np.array([65535], dtype=np.uint16),
        np.array([1.5, -0.0, np.inf, np.nan], dtype=np.float16),
        np.array([1 + 2j, -3j], dtype=np.complex64),
        np.array([[1e300 + 1e-300j]], dtype=np.complex128),
        np.zeros((0, 3), dtype=np.float64),
        np.array([1.0, 2.0], dtype=">f8"),  # big-endian comes back as native
    ]
    module = sf.Module(name="m")
    module.f = sf.function(lambda: [sf.constant(v) for v in values])
    module.f()
    path = str(tmp_path / "consts")
    sf.saved_model.save(module, path)
    got = sf.saved_model.load(path).f()
    for g, want in zip(got, values, strict=True):
        assert g.dtype == want.dtype.newbyteorder("=")
        assert g.shape == want.shape
        np.testing.assert_array_equal(g.numpy(), want)


def test_a_method_with_several_traces_dispatches_on_the_arguments(tmp_path: Path) -> None:
    module = sf.Module(name="m")
    module.double = sf.function(lambda x: x * 2)
    module.double(sf.constant([1.0, 2.0]))
    module.double(sf.constant(3))
    path = str(tmp_path / "m")
    sf.saved_model.save(module, path, signatures={})
    loaded = sf.saved_model.load(path)
    assert loaded.signatures == {}
    np.testing.assert_array_equal(loaded.double(np.array([1.0, 2.0], np.float32)).numpy(), [2, 4])
    assert loaded.double(np.int32(3)).numpy() == 6
    with pytest.raises(TypeError, match=r"^double\(\): no saved trace fits these arguments: "):
        loaded.double(np.array([1.0], np.float64))


def test_concurrent_calls_from_threads_give_each_caller_its_result(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    loaded = sf.saved_model.load(path)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        x = _inputs(seed)
        barrier.wait()
        try:
            for _ in range(20):
                np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.anyio
async def test_tasks_loading_into_their_own_graphs_do_not_see_each_other(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    x = _inputs()
    want = model(x).numpy()
    graphs: dict[int, sf.Graph] = {}

    async def task(i: int) -> None:
        g = graphs[i] = sf.Graph()
        with g.as_default():
            await anyio.sleep(0)
            loaded = sf.saved_model.load(path)
            await anyio.sleep(0)
            y = loaded(x)
            init = sf.global_variables_initializer()
            assert sf.get_default_graph() is g
        with sf.Session(g) as sess:
            sess.run(init)
            np.testing.assert_array_equal(sess.run(y), want)

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(task, i)
    for g in graphs.values():
        assert len(g.get_collection("variables")) == 5
    assert not sf.has_default_graph() or sf.get_default_graph() not in graphs.values()


# -- saving: what is written, and what is refused ------------------------------------------


def test_the_document_is_versioned_json_with_digests(tmp_path: Path) -> None:
    _, path = _saved(tmp_path)
    assert sorted(os.listdir(path)) == [
        "constants.safetensors",
        "saved_model.json",
        "variables.safetensors",
    ]
    doc = json.loads(Path(path, "saved_model.json").read_text())
    assert (doc["format"], doc["version"]) == ("scopeflow.saved_model", 1)
    assert doc["integrity"]["document"] == fmt.document_digest(doc)
    assert [v["path"] for v in doc["variables"]] == [
        "hidden/b", "hidden/w", "out/b", "out/w", "steps",
    ]  # fmt: skip
    # Every function with an input_signature or exactly one trace is a signature.
    assert sorted(doc["signatures"]) == ["__call__", "count", "loop", "predict"]


def test_save_replaces_an_existing_saved_model_and_refuses_other_paths(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    model.out.b.assign(np.full(3, 9.0, np.float32))
    sf.saved_model.save(model, path)
    loaded = sf.saved_model.load(path)
    np.testing.assert_array_equal(loaded.variables[2].numpy(), [9.0, 9.0, 9.0])
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"^Cannot save to '.*notes': it exists and is not"):
        sf.saved_model.save(model, str(other))
    assert (other / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "notes"]  # no temp left


def test_save_refuses_variables_the_model_does_not_reach(tmp_path: Path) -> None:
    stray = sf.Variable(1.0, name="stray")
    module = sf.Module(name="m")
    module.f = sf.function(lambda: stray * 2.0)
    module.f()
    with pytest.raises(
        ValueError,
        match=r"^Cannot save op .*attribute 'var': it uses variable "
        r"'stray:0', which is not reachable from the saved object",
    ):
        sf.saved_model.save(module, str(tmp_path / "m"))
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_graph_mode_and_non_modules(tmp_path: Path) -> None:
    with (
        sf.Graph().as_default(),
        pytest.raises(RuntimeError, match=r"^sf.saved_model.save\(\) must"),
    ):
        sf.saved_model.save(MLP(), str(tmp_path / "m"))
    with pytest.raises(TypeError, match=r"^sf.saved_model.save\(\) takes an sf.Module"):
        sf.saved_model.save(object(), str(tmp_path / "m"))
    with pytest.raises(ValueError, match=r"^signatures\['f'\]: .* has 0 traces; give it an"):
        sf.saved_model.save(sf.Module(), str(tmp_path / "m"), {"f": sf.function(lambda x: x)})


# -- loading bad input ----------------------------------------------------------------------


def _edit(path: str, change: Any) -> None:
    """Apply ``change`` to the document and sign it again, as a deliberate editor would."""
    doc_path = Path(path, "saved_model.json")
    doc = json.loads(doc_path.read_text())
    change(doc)
    doc["integrity"]["document"] = fmt.document_digest(doc)
    doc_path.write_bytes(fmt.canonical(doc))


def _first_op(doc: dict[str, Any], op_type: str) -> dict[str, Any]:
    for fn in doc["functions"].values():
        for op in fn["ops"]:
            if op["type"] == op_type:
                return op  # type: ignore[no-any-return]
    raise AssertionError(op_type)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda d: _first_op(d, "MatMul").update(type="System"), r"unknown op type 'System'"),
        (
            lambda d: d.update(version=2),
            r"version 2 is not supported; this scopeflow reads version 1",
        ),
        (
            lambda d: _first_op(d, "Const")["outputs"][0].__setitem__(0, "float64"),
            r"op '.*' \(Const\): the recorded outputs float64",
        ),
        (
            lambda d: _first_op(d, "MatMul")["inputs"].__setitem__(0, "nowhere:0"),
            r"input 'nowhere:0' names no earlier op",
        ),
        (
            lambda d: d["variables"][0].update(shape=[7]),
            r"variables\[0\]: variables.safetensors entry 'hidden/b' has dtype float32 and shape",
        ),
        (lambda d: d["functions"].popitem(), r"is not defined in functions|not in functions"),
        (lambda d: _first_op(d, "While")["attrs"].update(n_vars=40), r"attribute 'n_vars' must be"),
        (
            lambda d: _first_op(d, "Const")["attrs"].update(value={"pickle": "x"}),
            r"unknown tag 'pickle'",
        ),
    ],
    ids=["op-type", "version", "dtype", "ref", "var-shape", "drop-fn", "loop-attr", "tag"],
)
def test_load_rejects_invalid_documents_naming_file_and_entry(
    tmp_path: Path, change: Any, pattern: str
) -> None:
    _, path = _saved(tmp_path)
    _edit(path, change)
    g = sf.Graph()
    with (
        g.as_default(),
        pytest.raises(ValueError, match=r"^Invalid saved model '.*saved_model.json': .*" + pattern),
    ):
        sf.saved_model.load(path)
    assert g.get_operations() == []  # nothing was built in the caller's graph


def test_load_rejects_missing_and_corrupted_files_naming_them(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^Cannot read '.*nothing/saved_model.json': "):
        sf.saved_model.load(tmp_path / "nothing")
    _, path = _saved(tmp_path)
    data = Path(path, "variables.safetensors").read_bytes()
    Path(path, "variables.safetensors").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(
        ValueError,
        match=r"^Invalid saved model '.*variables.safetensors': the "
        r"file does not match its digest",
    ):
        sf.saved_model.load(path)
    Path(path, "variables.safetensors").write_bytes(data)
    sf.saved_model.load(path)
    doc = Path(path, "saved_model.json")
    doc.write_bytes(doc.read_bytes().replace(b'"trainable":true', b'"trainable":false', 1))
    with pytest.raises(
        ValueError,
        match=r"^Invalid saved model '.*saved_model.json': the document "
        r"does not match its digest",
    ):
        sf.saved_model.load(path)


def test_loaded_function_arguments_are_checked(tmp_path: Path) -> None:
    _, path = _saved(tmp_path)
    sig = sf.saved_model.load(path).signatures["predict"]
    with pytest.raises(
        TypeError, match=r"^predict\(\) got an unexpected argument 'y'; its inputs are x$"
    ):
        sig(y=_inputs())
    with pytest.raises(TypeError, match=r"^predict\(\) is missing the argument\(s\) x$"):
        sig()
    with pytest.raises(
        ValueError, match=re.escape("predict() argument 'x' (dtype float32, shape (2, 3))")
    ):
        sig(x=np.zeros((2, 3), np.float32))


def test_symbolic_gradients_through_a_loaded_function_in_a_graph_and_a_trace(
    tmp_path: Path,
) -> None:
    model, path = _saved(tmp_path)
    x = _inputs()
    want = _tape_grads(model, x, [])[0]
    g = sf.Graph()
    with g.as_default():
        loaded = sf.saved_model.load(path)
        ph = sf.placeholder(sf.float32, (None, 4))
        (dx,) = sf.gradients(sf.reduce_sum(sf.square(loaded(ph))), [ph])
        init = sf.global_variables_initializer()
    with sf.Session(g) as sess:
        sess.run(init)
        got = sess.run(dx, {ph: x})
    np.testing.assert_allclose(got, want, rtol=1e-5)

    eager_loaded = sf.saved_model.load(path)

    @sf.function(input_signature=[SPEC])
    def grad(x: Any) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = sf.reduce_sum(sf.square(eager_loaded(x)))
        return tape.gradient(y, x)

    np.testing.assert_allclose(grad(x).numpy(), want, rtol=1e-5)


def test_signatures_return_dicts_and_methods_return_their_structure(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    loaded = sf.saved_model.load(path)
    x = _inputs()
    out = loaded.signatures["__call__"](x=x)
    assert sorted(out) == ["output_0"]  # a lone tensor, keyed as TensorFlow keys it
    np.testing.assert_array_equal(out["output_0"].numpy(), model(x).numpy())
    assert sorted(loaded.signatures["predict"](x=x)) == ["best", "logits"]  # its own dict
    assert isinstance(loaded(x), sf.EagerTensor)


def test_the_saved_object_structure_is_restored_as_attributes(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    loaded = sf.saved_model.load(path)
    np.testing.assert_array_equal(loaded.hidden.w.numpy(), model.hidden.w.numpy())
    assert loaded.out.b is loaded.variables[2]
    stack = sf.Module(name="stack")
    stack.layers = [Dense(2, 2, seed=3), Dense(2, 1, seed=4)]
    sf.saved_model.save(stack, str(tmp_path / "stack"))
    restored = sf.saved_model.load(str(tmp_path / "stack"))
    np.testing.assert_array_equal(restored.layers[1].w.numpy(), stack.layers[1].w.numpy())
    with pytest.raises(AttributeError, match=r"^the saved object has no attribute 'v'; it has "):
        _ = restored.layers[0].v


def test_a_loaded_model_can_be_exported_again(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    loaded = sf.saved_model.load(path)
    again = str(tmp_path / "again")
    sf.saved_model.save(loaded, again)
    reloaded = sf.saved_model.load(again)
    x = _inputs()
    assert sorted(reloaded.signatures) == sorted(loaded.signatures)
    np.testing.assert_array_equal(reloaded(x).numpy(), model(x).numpy())
    np.testing.assert_array_equal(
        reloaded.predict(x)["best"].numpy(), model.predict(x)["best"].numpy()
    )
    assert [v.name for v in reloaded.variables] == [v.name for v in loaded.variables]
    np.testing.assert_array_equal(reloaded.hidden.w.numpy(), model.hidden.w.numpy())


def test_nested_function_calls_and_captured_eager_values_round_trip(tmp_path: Path) -> None:
    c = sf.constant([1.0, 2.0])
    module = sf.Module(name="m")
    module.v = sf.Variable([3.0, 4.0], name="v")
    inner = sf.function(lambda x: x * c + module.v)

    @sf.function(input_signature=[sf.TensorSpec((2,), sf.float32, name="x")])
    def outer(x: Any) -> Any:
        return inner(x) + inner(x * 2.0) + c

    module.outer = outer
    sf.saved_model.save(module, str(tmp_path / "m"))
    loaded = sf.saved_model.load(str(tmp_path / "m"))
    x = sf.constant([1.0, -1.0])
    np.testing.assert_array_equal(loaded.outer(x).numpy(), outer(x).numpy())
    want = _tape_grads(outer, x.numpy(), [module.v])
    got = _tape_grads(loaded.outer, x.numpy(), [loaded.v])
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    g = sf.Graph()
    with g.as_default():
        in_graph = sf.saved_model.load(str(tmp_path / "m"))
        y = in_graph.outer(x.numpy())
        init = sf.global_variables_initializer()
    with sf.Session(g) as sess:
        sess.run(init)
        got_in_graph = sess.run(y)
    np.testing.assert_array_equal(got_in_graph, outer(x).numpy())


def test_a_dropped_loaded_model_is_freed(tmp_path: Path) -> None:
    _, path = _saved(tmp_path)
    refs = []
    for _ in range(2):
        loaded = sf.saved_model.load(path)
        x = sf.constant(_inputs())
        with sf.GradientTape() as tape:
            y = sf.reduce_sum(loaded(x))
        tape.gradient(y, loaded.trainable_variables)
        refs += [
            weakref.ref(loaded.variables[0]),
            weakref.ref(loaded.predict.traces[0].concrete.graph),
        ]
        del loaded, tape, y
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)


_OPAQUE = register_op(
    "TestSavedModelOpaqueAttr", infer=lambda specs, attrs: specs, kernel=lambda attrs, x: x
)


def test_save_refuses_an_attribute_it_cannot_encode_naming_op_and_attribute(
    tmp_path: Path,
) -> None:
    module = sf.Module(name="m")
    module.f = sf.function(lambda x: apply(_OPAQUE, (x,), {"how": object()}, "opaque"))
    module.f(sf.constant(1.0))
    with pytest.raises(
        ValueError,
        match=r"^Cannot save op 'opaque' \(TestSavedModelOpaqueAttr\) of function '<lambda>': "
        r"attribute 'how': the value <object object at .*> of type object has no encoding$",
    ):
        sf.saved_model.save(module, str(tmp_path / "m"))
    assert list(tmp_path.iterdir()) == []


def test_a_loaded_concrete_function_is_callable_directly(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    concrete = sf.saved_model.load(path).signatures["__call__"].concrete
    x = _inputs()
    np.testing.assert_array_equal(concrete(sf.constant(x)).numpy(), model(x).numpy())
