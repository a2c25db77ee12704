"""while_loop shape invariants (SPEC section 10): build-time checks, run-time checks, and
static output shapes that never claim more than the loop can produce."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import pytest

import scopeflow as sf

CHANGED = r"^while_loop 'while': loop variable 1 \('m:0'\) changed shape from \(2, 2\) to \(4, 2\)"


def _double_rows(i: Any, m: Any) -> tuple[Any, Any]:
    return i + 1, sf.concat([m, m], 0)


def _ones(name: str = "m") -> Any:
    return sf.constant(np.ones((2, 2), np.float32), name=name)


def _state(g: sf.Graph) -> tuple[Any, ...]:
    return sf.get_default_graph() is g, sf.get_name_scope(), len(sf.context_switches())


def test_body_that_changes_a_static_shape_fails_at_build_time_naming_the_variable() -> None:
    g = sf.Graph()
    with g.as_default(), sf.name_scope("s"):
        m = _ones()
        before = _state(g)
        with pytest.raises(ValueError, match=CHANGED.replace("m:0", "s/m:0") + r".*shape_inv"):
            sf.while_loop(lambda i, m: i < 2, _double_rows, [0, m])
        assert _state(g) == before  # every stack as it was


def test_shape_invariants_relax_the_check_and_give_the_output_shape() -> None:
    g = sf.Graph()
    with g.as_default():
        i, m = sf.while_loop(
            lambda i, m: i < 2, _double_rows, [0, _ones()], shape_invariants=[(), (None, 2)]
        )
    assert (i.shape, m.shape) == ((), (None, 2))
    with sf.Session(g) as sess:
        got = sess.run(m)
    np.testing.assert_array_equal(got, np.ones((8, 2), np.float32))


def test_a_less_specific_body_output_is_rejected_unless_the_invariant_allows_it() -> None:
    # The case: the output used to claim (3,) while holding a (1,) value.
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=(None,), name="p")
        start = sf.constant([1.0, 2.0, 3.0], name="start")
        with pytest.raises(
            ValueError,
            match=r"^while_loop 'w': loop variable 0 \('start:0'\) changed shape "
            r"from \(3,\) to \(None,\)",
        ):
            sf.while_loop(lambda x: sf.reduce_sum(x) < 10.0, lambda x: p, [start], name="w")
        with pytest.raises(
            ValueError,
            match=r"^while_loop 'w': the body returns shape \(None,\) for loop "
            r"variable 0 \('start:0'\), which its shape invariant \(3,\) does not allow",
        ):
            sf.while_loop(
                lambda x: sf.reduce_sum(x) < 10.0, lambda x: p, [start], shape_invariants=[(3,)],
                name="w",
            )  # fmt: skip
        (out,) = sf.while_loop(
            lambda x: sf.reduce_sum(x) < 10.0, lambda x: p, [start], shape_invariants=[(None,)]
        )
        assert out.shape == (None,)
        total = out + sf.constant([1.0, 1.0, 1.0])
    with sf.Session(g) as sess:
        np.testing.assert_array_equal(sess.run(total, {p: [20.0]}), [21.0, 21.0, 21.0])


def test_unknown_rank_invariant() -> None:
    g = sf.Graph()
    with g.as_default():
        _, out = sf.while_loop(
            lambda i, x: i < 3,
            lambda i, x: (i + 1, sf.stack([x, x])),
            [0, sf.constant(1.0)],
            shape_invariants=[(), None],
        )
        assert out.shape is None
    with sf.Session(g) as sess:
        assert sess.run(out).shape == (2, 2, 2)


def test_a_value_that_breaks_its_invariant_at_run_time_raises() -> None:
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=(None,), name="p")
        (out,) = sf.while_loop(
            lambda x: sf.reduce_sum(x) < 10.0, lambda x: x * 2.0, [p], shape_invariants=[(3,)]
        )
        capped = sf.while_loop(
            lambda x: sf.reduce_sum(x) < 10.0,
            lambda x: x * 2.0,
            [p],
            shape_invariants=[(3,)],
            maximum_iterations=0,
        )[0]
    assert out.shape == (3,)  # the claim the run-time check keeps true
    with sf.Session(g) as sess:
        np.testing.assert_array_equal(sess.run(out, {p: [1.0, 1.0, 1.0]}), [4.0, 4.0, 4.0])
        for fetch in (out, capped):
            with pytest.raises(
                sf.errors.InvalidArgumentError,
                match=r"^while_loop 'while': loop variable 0 \('p:0'\) has shape \(1,\) on "
                r"entry, which breaks its shape invariant \(3,\)",
            ):
                sess.run(fetch, {p: [1.0]})


def test_dtype_change_names_the_variable() -> None:
    g = sf.Graph()
    with g.as_default():
        k = sf.constant(1, name="k")
        with pytest.raises(
            TypeError, match=r"^while_loop 'while': loop variable 0 \('k:0'\) changed dtype "
            r"from int32 to float32"
        ):  # fmt: skip
            sf.while_loop(lambda x: x < 3, lambda x: sf.cast(x, sf.float32), [k])


def test_initial_value_must_fit_its_invariant() -> None:
    g = sf.Graph()
    with g.as_default():
        with pytest.raises(
            ValueError, match=r"^while_loop 'while': loop variable 1 \('m:0'\) enters the loop "
            r"with shape \(2, 2\), which its shape invariant \(3, None\) does not allow"
        ):  # fmt: skip
            sf.while_loop(
                lambda i, m: i < 2, _double_rows, [0, _ones()], shape_invariants=[(), (3, None)]
            )


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_shape_invariants_are_validated(mode: str) -> None:
    def loop(invariants: Any) -> Any:
        return sf.while_loop(
            lambda i, m: i < 2, lambda i, m: (i + 1, m), [0, _ones()], shape_invariants=invariants
        )

    def check() -> None:
        structure = r"^while_loop 'while': shape_invariants must have the structure of loop_vars"
        with pytest.raises(ValueError, match=structure + r".*shape_invariants is \[\(\)\]"):
            loop([()])
        with pytest.raises(ValueError, match=structure + r".*shape_invariants is 3,"):
            loop(3)
        with pytest.raises(
            TypeError, match=r"^while_loop 'while': the shape invariant of loop variable 1 .*"
            r"must be a shape .*got \[None, 'a'\]"
        ):  # fmt: skip
            loop([(), [None, "a"]])
        with pytest.raises(TypeError, match=r"got \(-1, 2\)$"):
            loop([(), (-1, 2)])
        with pytest.raises(
            TypeError,
            match=r"^while_loop\(\) maximum_iterations must be an integer, got \[\(\)\]; "
            r"pass shape invariants by keyword",
        ):
            sf.while_loop(lambda i: i < 2, lambda i: i + 1, [0], [()])  # type: ignore[arg-type]

    if mode == "eager":
        check()
    else:
        g = sf.Graph()
        with g.as_default():
            before = _state(g)
            check()
            assert _state(g) == before
            assert g.get_operations() == [op for op in g.get_operations() if op.type == "Const"]


def test_eager_accepts_shape_invariants() -> None:
    i, m = sf.while_loop(
        lambda i, m: i < 2, _double_rows, [0, sf.ones((2, 2))], shape_invariants=[(), (None, 2)]
    )
    assert int(i) == 2
    assert m.shape == (8, 2)
    with pytest.raises(ValueError, match=r"changed shape from \(2, 2\) to \(4, 2\)"):
        sf.while_loop(lambda i, m: i < 2, _double_rows, [0, sf.ones((2, 2))])
    with pytest.raises(ValueError, match=r"the body returns shape \(4, 2\) for loop variable 1"):
        sf.while_loop(
            lambda i, m: i < 2, _double_rows, [0, sf.ones((2, 2))], shape_invariants=[(), (2, 2)]
        )


def test_nested_loop_vars_take_nested_invariants() -> None:
    Pair = collections.namedtuple("Pair", ["a", "b"])

    def body(i: Any, state: dict[str, Any]) -> Any:
        return i + 1, {"grow": sf.concat([state["grow"], state["grow"]], 0), "p": state["p"]}

    g = sf.Graph()
    with g.as_default():
        start = {"grow": sf.constant([1.0]), "p": Pair(sf.constant(1), sf.constant([2.0, 3.0]))}
        _, out = sf.while_loop(
            lambda i, s: i < 3,
            body,
            [0, start],
            shape_invariants=[(), {"grow": (None,), "p": Pair((), (2,))}],
        )
        assert out["grow"].shape == (None,)
        assert out["p"].b.shape == (2,)
        with pytest.raises(ValueError, match=r"shape_invariants\[1\] is \{'grow': \(None,\)\}"):
            sf.while_loop(
                lambda i, s: i < 3, body, [0, start], shape_invariants=[(), {"grow": (None,)}]
            )
    with sf.Session(g) as sess:
        assert sess.run(out["grow"]).shape == (8,)


def test_traced_function_checks_and_relaxes_shapes() -> None:
    @sf.function
    def grow(m: Any) -> Any:
        return sf.while_loop(
            lambda i, m: i < 2, _double_rows, [0, m], shape_invariants=[(), (None, 2)]
        )[1]

    @sf.function
    def strict(m: Any) -> Any:
        return sf.while_loop(lambda i, m: i < 2, _double_rows, [0, m])[1]

    x = sf.ones((2, 2))
    assert grow(x).shape == (8, 2)
    (out,) = grow.get_concrete_function(x).outputs
    assert out.shape == (None, 2)
    with pytest.raises(ValueError, match=r"loop variable 1 \('m:0'\) changed shape from \(2, 2\)"):
        strict(x)
