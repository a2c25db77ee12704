"""Adversarial review of the model-state changes: checkpoint attributes, the module walk,
variable conversions and ``assign(read_value=...)``. Each test pins a bug found in review
(it failed before its fix) or an edge case that must keep working."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import scopeflow as sf
from scopeflow._checkpoint import FORMAT, read_arrays

# -- Checkpoint attributes ----------------------------------------------------------------


def test_del_tracked_attribute_untracks_it(tmp_path: Path) -> None:
    # As TensorFlow's AutoTrackable: ``del ckpt.x`` drops the dependency (it raised
    # AttributeError and kept saving the object).
    a, b = sf.Variable(1.0), sf.Variable(2.0)
    ckpt = sf.train.Checkpoint(a=a, b=b)
    del ckpt.a
    assert not hasattr(ckpt, "a")
    assert ckpt.b is b
    path = ckpt.write(str(tmp_path / "c.safetensors"))
    assert _keys(path) == ["b"]


def test_del_missing_or_reserved_attribute_raises() -> None:
    ckpt = sf.train.Checkpoint(a=sf.Variable(1.0))
    with pytest.raises(AttributeError, match="zzz"):
        del ckpt.zzz
    with pytest.raises(AttributeError):
        del ckpt.save
    assert isinstance(ckpt.a, sf.Variable)


def test_dir_lists_tracked_attributes() -> None:
    ckpt = sf.train.Checkpoint(model=sf.Variable(1.0))
    ckpt.step = sf.Variable(0)
    assert {"model", "step", "save", "restore"} <= set(dir(ckpt))


def test_attribute_set_after_save_restores(tmp_path: Path) -> None:
    m = sf.Module(name="m")
    m.w = sf.Variable([1.0, 2.0], name="w")
    ckpt = sf.train.Checkpoint()
    ckpt.step = sf.Variable(3, dtype=sf.int64)
    ckpt.model = m
    path = ckpt.save(str(tmp_path / "ckpt"))
    # Another checkpoint, attributes set in the other order (and one in the constructor).
    m2 = sf.Module(name="m")
    m2.w = sf.Variable([0.0, 0.0], name="w")
    other = sf.train.Checkpoint(model=m2)
    other.step = sf.Variable(0, dtype=sf.int64)
    other.restore(path).assert_consumed()
    assert other.step.numpy() == 3
    np.testing.assert_array_equal(m2.w.numpy(), [1.0, 2.0])
    assert other.save_counter.numpy() == 1


def test_overwrite_tracked_attribute_saves_new_object(tmp_path: Path) -> None:
    a, b = sf.Variable(1.0), sf.Variable(5.0)
    ckpt = sf.train.Checkpoint(x=a)
    with pytest.raises(TypeError):
        ckpt.x = None  # refused, not silently dropped: x stays tracked
    assert ckpt.x is a
    ckpt.x = b
    path = ckpt.write(str(tmp_path / "c.safetensors"))
    restored = sf.Variable(0.0)
    sf.train.Checkpoint(x=restored).restore(path).assert_consumed()
    assert restored.numpy() == 5.0


def test_threads_setting_attributes_while_saving(tmp_path: Path) -> None:
    ckpt = sf.train.Checkpoint(base=sf.Variable(0.0))
    errors: list[BaseException] = []

    def setter(k: int) -> None:
        try:
            for i in range(40):
                setattr(ckpt, f"v{k}_{i}", sf.Variable(float(i)))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=setter, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for i in range(5):
        ckpt.write(str(tmp_path / f"c{i}.safetensors"))
    for t in threads:
        t.join()
    assert not errors
    path = ckpt.write(str(tmp_path / "final.safetensors"))
    assert len(_keys(path)) == 1 + 80


def _keys(path: str) -> list[str]:
    return sorted(read_arrays(path, FORMAT))


# -- the module walk ------------------------------------------------------------------------


def test_module_holding_loaded_model_lists_its_variables(tmp_path: Path) -> None:
    # Fine-tuning a loaded backbone: its variables are the holder's (they were dropped
    # from variables/trainable_variables when the walk stopped at non-modules).
    inner = sf.Module(name="inner")
    inner.w = sf.Variable([1.0], name="w")
    inner.s = sf.Variable([2.0], name="s", trainable=False)
    sf.saved_model.save(inner, str(tmp_path / "sm"))
    loaded = sf.saved_model.load(str(tmp_path / "sm"))
    holder = sf.Module(name="holder")
    holder.a = sf.Variable(0.0, name="a")
    holder.backbone = loaded
    assert holder.variables == (holder.a, *loaded.variables)
    assert holder.trainable_variables == (holder.a, *loaded.trainable_variables)
    assert set(map(id, holder.non_trainable_variables)) == {
        id(v) for v in loaded.variables if not v.trainable
    }


def test_module_holding_optimizer_does_not_list_slots() -> None:
    m = sf.Module(name="m")
    m.w = sf.Variable([1.0], name="w")
    m.opt = sf.optimizers.Adam(0.1)
    with sf.GradientTape() as tape:
        loss = sf.reduce_sum(m.w * m.w)
    m.opt.apply_gradients(zip(tape.gradient(loss, [m.w]), [m.w], strict=True))
    assert m.variables == (m.w,)


def test_module_walk_cycles_shared_and_unsortable_keys() -> None:
    shared = sf.Variable(1.0, name="shared")
    a = sf.Module(name="a")
    b = sf.Module(name="b")
    a.v = shared
    b.v = shared
    root = sf.Module(name="root")
    root.children = [b, a]
    root.d = {1: sf.Variable(2.0, name="one"), "x": sf.Variable(3.0, name="x")}
    root.me = root
    a.parent = root
    b.loop = [b, {"self": b}]
    names = [v.name for v in root.variables]
    assert names == ["one:0", "x:0", "shared:0"]
    assert root.submodules == (b, a)


def test_module_walk_deep_tree_no_recursion_error() -> None:
    root = sf.Module(name="root")
    cur = root
    for _ in range(3000):
        child = sf.Module(name="n")
        cur.child = child
        cur = child
    cur.v = sf.Variable(1.0, name="leaf")
    assert len(root.submodules) == 3000
    assert root.variables == (cur.v,)


def test_saved_model_variable_order_stable(tmp_path: Path) -> None:
    def build(order: list[str]) -> sf.Module:
        m = sf.Module(name="m")
        for n in order:
            setattr(m, n, sf.Variable([float(len(n))], name=n))
        return m

    sf.saved_model.save(build(["b", "a", "c"]), str(tmp_path / "one"))
    sf.saved_model.save(build(["c", "b", "a"]), str(tmp_path / "two"))
    one = [v.name for v in sf.saved_model.load(str(tmp_path / "one")).variables]
    two = [v.name for v in sf.saved_model.load(str(tmp_path / "two")).variables]
    assert one == two


# -- conversions and read_value -------------------------------------------------------------


def test_bool_of_variable_in_traced_if_raises() -> None:
    v = sf.Variable(1.0)

    @sf.function
    def f(x: sf.Tensor) -> sf.Tensor:
        if v:
            return x + 1
        return x - 1

    with pytest.raises(TypeError, match="sf.cond"):
        f(sf.constant(1.0))


@pytest.mark.parametrize("conv", [bool, float, int, complex, list])
def test_conversions_in_graph_raise_type_error(conv: type) -> None:
    g = sf.Graph()
    with g.as_default():
        v = sf.Variable(1.0)
        with pytest.raises(TypeError):
            conv(v)


def test_read_value_false_in_function_and_graph() -> None:
    v = sf.Variable(1.0)

    @sf.function
    def f(x: sf.Tensor) -> sf.Tensor:
        assert v.assign_add(x, read_value=False) is not None  # the write's op
        return v.read_value()

    assert f(sf.constant(2.0)).numpy() == 3.0
    assert v.assign(5.0, read_value=False) is None
    g = sf.Graph()
    with g.as_default():
        gv = sf.Variable(1.0)
        op = gv.assign_sub(1.0, read_value=False, use_locking="yes")
        assert isinstance(op, sf.Operation)


def test_control_dependencies_of_a_bare_variable_says_wrap_it() -> None:
    # Variables became iterable (iter() reads the value): a bare variable passed to
    # control_dependencies was iterated (eagerly accepted silently, traced: "cannot be
    # iterated") instead of the usual "wrap a single one in a list".
    v = sf.Variable([1.0, 2.0])
    with pytest.raises(TypeError, match="Wrap a single one in a list"):
        sf.control_dependencies(v)

    @sf.function
    def f() -> sf.Tensor:
        with sf.control_dependencies(v):
            return sf.constant(1.0)

    with pytest.raises(TypeError, match="Wrap a single one in a list"):
        f()
    with sf.control_dependencies([v]):
        pass


def test_checkpoint_of_module_still_saves_held_optimizer_slots(tmp_path: Path) -> None:
    # Module.variables no longer walks into an optimizer; checkpoints still do.
    m = sf.Module(name="m")
    m.w = sf.Variable([1.0], name="w")
    m.opt = sf.optimizers.Adam(0.1)
    with sf.GradientTape() as tape:
        loss = sf.reduce_sum(m.w * m.w)
    m.opt.apply_gradients(zip(tape.gradient(loss, [m.w]), [m.w], strict=True))
    path = sf.train.Checkpoint(model=m).write(str(tmp_path / "c.safetensors"))
    keys = _keys(path)
    assert "model/w" in keys
    assert "model/opt/iterations" in keys
    assert any(k.startswith("model/opt/slots/") for k in keys)


def test_private_name_given_to_constructor_stays_tracked_when_set(tmp_path: Path) -> None:
    # Checkpoint(_x=v) tracks v as "_x" and ckpt._x reads it; setting ckpt._x = w made a
    # plain attribute, so ckpt._x was w while saves kept writing v.
    v, w = sf.Variable(1.0), sf.Variable(9.0)
    ckpt = sf.train.Checkpoint(_x=v)
    assert ckpt._x is v
    ckpt._x = w
    assert ckpt._x is w
    path = ckpt.write(str(tmp_path / "c.safetensors"))
    got = sf.Variable(0.0)
    sf.train.Checkpoint(_x=got).restore(path).assert_consumed()
    assert got.numpy() == 9.0
    del ckpt._x
    assert not hasattr(ckpt, "_x")
    ckpt._y = 3  # an untracked private name stays a plain attribute
    assert ckpt._y == 3
    assert _keys(ckpt.write(str(tmp_path / "d.safetensors"))) == []
