"""``sf.Module``: a name scope per module, variable and submodule tracking."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import anyio
import pytest

import scopeflow as sf
from scopeflow import _context


class Dense(sf.Module):
    def __init__(self, n_in: int, n_out: int, name: str | None = None) -> None:
        super().__init__(name=name)
        # Callables: a module made while a function is traced lifts its variables out,
        # and their initial values must be computed outside the function (SPEC section 7).
        self.w = sf.Variable(lambda: sf.ones((n_in, n_out)), name="w")
        self.b = sf.Variable(lambda: sf.zeros((n_out,)), name="b")

    def __call__(self, x: Any) -> Any:
        with self.name_scope:
            return sf.add(sf.matmul(x, self.w), self.b, name="out")


class MLP(sf.Module):
    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)
        self.hidden = Dense(2, 3)
        self.head = Dense(3, 1, name="head")
        self.steps = sf.Variable(0, name="steps", trainable=False)

    def __call__(self, x: Any) -> Any:
        with self.name_scope:
            return self.head(sf.relu(self.hidden(x)))


def test_variables_made_in_init_carry_the_module_scope() -> None:
    model = MLP()
    assert model.name == "mlp"
    assert sorted(v.name for v in model.variables) == [
        "mlp/dense/b:0",
        "mlp/dense/w:0",
        "mlp/head/b:0",
        "mlp/head/w:0",
        "mlp/steps:0",
    ]
    assert sf.get_name_scope() == ""  # the scope closed when __init__ returned


def test_tracking_order_is_deterministic_and_filters_trainable() -> None:
    model = MLP()
    # As tf.Module: the module's own variables first (attributes sorted: head, hidden,
    # steps), then each submodule's in that order; each module's b before w.
    assert [v.name for v in model.variables] == [
        "mlp/steps:0",
        "mlp/head/b:0",
        "mlp/head/w:0",
        "mlp/dense/b:0",
        "mlp/dense/w:0",
    ]
    assert [v.name for v in model.trainable_variables] == [
        "mlp/head/b:0",
        "mlp/head/w:0",
        "mlp/dense/b:0",
        "mlp/dense/w:0",
    ]
    assert model.submodules == (model.head, model.hidden)
    assert [v.name for v in model.non_trainable_variables] == ["mlp/steps:0"]


def test_containers_shared_objects_and_cycles_are_walked_once() -> None:
    root = sf.Module(name="root")
    layer = Dense(1, 1, name="layer")
    shared = sf.Variable(1.0, name="shared")
    root.layers = [layer, (layer, {"k": shared})]
    root.by_name = {"b": shared, "a": layer}
    root.me = root
    layer.parent = root  # a cycle through a submodule
    assert root.submodules == (layer,)
    # root's own leaves first (by_name: a -> layer, b -> shared), then layer's
    assert [v.name for v in root.variables] == ["shared:0", "layer/b:0", "layer/w:0"]


def test_methods_reenter_the_scope_exactly_in_graph_mode() -> None:
    g = sf.Graph()
    with g.as_default():
        first, second = MLP(), MLP()
        y = second(sf.ones((1, 2)))
    assert second.name == "mlp"
    assert second.variables[1].name == "mlp_1/head/b:0"  # after the module's own steps
    assert y.op.name == "mlp_1/head/out"
    assert first.name_scope is first.name_scope


def test_eager_module_call_matches_numpy() -> None:
    model = MLP()
    out = model(sf.constant([[1.0, -2.0]]))
    # hidden: [1, -2] @ ones(2, 3) = -1 each; relu -> 0; head: 0 @ ones + 0 = 0
    assert out.numpy().tolist() == [[0.0]]


def test_invalid_names_and_missing_super_init() -> None:
    with pytest.raises(ValueError, match=r"^'bad name' is not a valid module name"):
        sf.Module(name="bad name")

    class Forgetful(sf.Module):
        def __init__(self) -> None:
            self.x = 1

    with pytest.raises(TypeError, match=r"^Forgetful.__init__ did not call super\(\).__init__"):
        Forgetful()


def test_a_failing_init_leaves_the_scopes_as_they_were() -> None:
    class Broken(sf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = sf.Variable(1.0, name="w")
            raise RuntimeError("boom")

    before = _context.current()
    with pytest.raises(RuntimeError, match="boom"):
        Broken()
    assert _context.current() is before


def test_subclass_of_a_subclass_keeps_one_scope() -> None:
    class Wide(Dense):
        def __init__(self) -> None:
            super().__init__(2, 4, name="wide")
            self.extra = sf.Variable(2.0, name="extra")

    layer = Wide()
    assert sorted(v.name for v in layer.variables) == ["wide/b:0", "wide/extra:0", "wide/w:0"]
    assert sf.get_name_scope() == ""


def test_module_created_while_tracing_lifts_its_variables() -> None:
    holder: list[MLP] = []

    @sf.function
    def predict(x: Any) -> Any:
        if not holder:
            holder.append(MLP())
        return holder[0](x)

    out = predict(sf.ones((1, 2)))
    out2 = predict(sf.ones((1, 2)))
    assert out.numpy().tolist() == out2.numpy().tolist() == [[6.0]]
    assert all(v.graph is None for v in holder[0].variables)  # eager, outside the function
    assert sorted(v.name for v in holder[0].trainable_variables)[0] == "mlp/dense/b:0"


@pytest.mark.anyio
async def test_tasks_entering_one_module_scope_stay_apart() -> None:
    g = sf.Graph()
    with g.as_default():
        model = MLP()
    names: dict[int, list[str]] = {}

    async def build(k: int) -> None:
        async with g.as_default():
            with sf.name_scope(f"task{k}"):
                pass
            async with model.name_scope:
                await anyio.sleep(0)
                c = sf.constant(float(k), name=f"c{k}")
                await anyio.sleep(0)
                names[k] = [c.op.name, sf.get_name_scope()]
            names[k].append(sf.get_name_scope())

    async with anyio.create_task_group() as tg:
        for k in range(3):
            tg.start_soon(build, k)
    assert names == {k: [f"mlp/c{k}", "mlp", ""] for k in range(3)}


def test_an_init_inherited_from_a_mixin_closes_the_scope() -> None:
    class WithBias:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.bias = sf.Variable(0.0, name="bias")

    class Biased(WithBias, sf.Module):
        pass

    class MoreBiased(Biased):
        pass

    before = _context.current()
    for cls, name in ((Biased, "biased"), (MoreBiased, "more_biased")):
        layer = cls()
        assert [v.name for v in layer.variables] == [f"{name}/bias:0"]
        assert sf.get_name_scope() == ""
        assert _context.current() is before


def test_calling_module_init_directly_opens_no_scope() -> None:
    module = sf.Module.__new__(sf.Module)
    sf.Module.__init__(module, name="direct")
    assert sf.get_name_scope() == ""
    assert module.name == "direct"


def test_attributes_that_are_classes_or_functions_are_not_walked() -> None:
    class Trainer(sf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.optimizer_cls = sf.optimizers.Adam  # a class, with an unbound _sf_children
            self.checkpoint_cls = sf.train.Checkpoint
            self.activation = sf.nn.relu
            self.w = sf.Variable(1.0, name="w")

    assert [v.name for v in Trainer().variables] == ["trainer/w:0"]
    assert Trainer().submodules == ()


def test_with_name_scope_decorator() -> None:
    class Scaled(sf.Module):
        def __init__(self) -> None:
            super().__init__(name="scaled")
            self.k = sf.Variable(2.0, name="k")

        @sf.Module.with_name_scope
        def __call__(self, x: Any) -> Any:
            """Scale x."""
            return sf.multiply(x, self.k, name="mul")

    g = sf.Graph()
    with g.as_default():
        layer = Scaled()
        y = layer(sf.constant(3.0))
        assert sf.get_name_scope() == ""
    assert y.op.name == "scaled/mul"
    assert Scaled.__call__.__doc__ == "Scale x."
    assert float(Scaled()(sf.constant(3.0)).numpy()) == 6.0


def test_attributes_are_inspected_on_their_type_only() -> None:
    class LazyProxy:  # like a context-local proxy: any instance attribute lookup fails
        def __getattr__(self, name: str) -> Any:
            msg = "working outside of a request context"
            raise RuntimeError(msg)

    layer = Dense(1, 1, name="layer")
    layer.proxy = LazyProxy()
    assert [v.name for v in layer.variables] == ["layer/b:0", "layer/w:0"]


def test_copies_and_pickles_get_their_own_scope_object() -> None:
    layer = Dense(2, 1, name="layer")
    with layer.name_scope:  # the scope object holds this task's frame while entered
        clone = copy.deepcopy(layer)
        restored = pickle.loads(pickle.dumps(layer))
    for other in (clone, restored):
        assert other.name == "layer"
        assert other.name_scope is not layer.name_scope
        assert [v.name for v in other.variables] == ["layer/b:0", "layer/w:0"]
        assert other.w is not layer.w
        with other.name_scope:
            assert sf.get_name_scope() == "layer"
    assert sf.get_name_scope() == ""
    assert copy.copy(layer).w is layer.w  # a shallow copy shares the variables


def test_diamond_inheritance_keeps_one_scope() -> None:
    class WithA(sf.Module):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.a = sf.Variable(1.0, name="a")

    class WithB(sf.Module):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.b = sf.Variable(1.0, name="b")

    class Both(WithA, WithB):
        def __init__(self) -> None:
            super().__init__(name="both")
            self.c = sf.Variable(1.0, name="c")

    class Inherited(WithA, WithB):
        pass

    assert [v.name for v in Both().variables] == ["both/a:0", "both/b:0", "both/c:0"]
    assert [v.name for v in Inherited(name="inh").variables] == ["inh/a:0", "inh/b:0"]
    assert sf.get_name_scope() == ""


def test_variables_and_submodules_in_tensorflow_order() -> None:
    # tf.Module._flatten: a module's own leaves, then each submodule walked the same way
    # (depth first over modules); an optimizer held as an attribute is not walked into.
    root = sf.Module(name="root")
    root.a = sf.Module(name="a")
    root.a.c = sf.Module(name="c")
    root.a.c.w = sf.Variable(1.0, name="cw")
    root.a.w = sf.Variable(1.0, name="aw")
    root.b = sf.Module(name="b")
    root.b.w = sf.Variable(1.0, name="bw")
    root.z = sf.Variable(1.0, name="rz")
    root.opt = sf.optimizers.SGD(0.1)
    root.opt.apply_gradients([(sf.constant(1.0), root.z)])
    assert [v.name for v in root.variables] == ["rz:0", "aw:0", "cw:0", "bw:0"]
    assert [m.name for m in root.submodules] == ["a", "b", "c"]  # root's own, then a's
    # checkpoints still save the optimizer's state (paths walk every tracked object)
    from scopeflow._module import walk_attributes

    paths = ["/".join(path) for path, _ in walk_attributes(root)]
    assert "opt/iterations" in paths
