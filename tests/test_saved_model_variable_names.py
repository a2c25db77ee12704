"""Variable names in saved models: what saving accepts, loading accepts too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import scopeflow as sf


class _Block(sf.Module):  # a private class: its name scope is "_block"
    def __init__(self) -> None:
        super().__init__()
        with self.name_scope:
            self.w = sf.Variable(3.0)


class Model(sf.Module):
    def __init__(self, block: sf.Module) -> None:
        super().__init__()
        self.block = block

    @sf.function(input_signature=[sf.TensorSpec((), sf.float32)])
    def f(self, x: sf.Tensor) -> sf.Tensor:
        return x * self.block.w


def test_a_variable_of_a_private_module_class_saves_and_loads(tmp_path: Path) -> None:
    block = _Block()
    assert block.w.name == "_block/Variable:0"
    path = str(tmp_path / "m")
    sf.saved_model.save(Model(block), path)
    loaded = sf.saved_model.load(path)
    assert float(loaded.f(2.0)) == 6.0
    g = sf.Graph()
    with g.as_default():  # a graph refuses a leading "_" at its root: the loader drops it
        in_graph = sf.saved_model.load(path)
        out = in_graph.f(sf.constant(2.0))
        init = sf.global_variables_initializer()
    with sf.Session(g) as session:
        session.run(init)
        assert float(session.run(out)) == 6.0


def test_a_name_no_saved_model_can_hold_is_refused_at_save(tmp_path: Path) -> None:
    model = Model(_Block())
    model.block.w = sf.Variable(1.0, name="a b")
    path = str(tmp_path / "m")
    with pytest.raises(ValueError, match=r"^Cannot save variable 'a b' \(at 'block/w'\)"):
        sf.saved_model.save(model, path)
    assert not os.path.exists(path)
