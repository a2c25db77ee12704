"""sf.print and sf.debugging: when they run, in which order, and what failures say."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

import scopeflow as sf

# -- print ---------------------------------------------------------------------------------


def test_eager_print_writes_at_once_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert sf.print("x =", sf.constant([1.5, 2.0]), 3) is None
    assert capsys.readouterr().out == "x = [1.5 2. ] 3\n"


def test_print_formats_like_tensorflow() -> None:
    stream = io.StringIO()
    sf.print(sf.constant(np.arange(10)), output_stream=stream)
    sf.print(sf.constant(np.arange(10)), output_stream=stream, summarize=None)
    sf.print(sf.constant(np.arange(10)), output_stream=stream, summarize=1)
    sf.print("a", "b", sep=",", end="!\n", output_stream=stream)
    sf.print({"w": sf.constant([1, 2]), "n": "s"}, ["t", 2], output_stream=stream)
    assert stream.getvalue().splitlines() == [
        "[0 1 2 ... 7 8 9]",
        "[0 1 2 3 4 5 6 7 8 9]",
        "[0 ... 9]",
        "a,b!",
        "{'w': [1 2], 'n': 's'} ['t', 2]",
    ]


def test_print_in_a_graph_writes_on_every_run_only() -> None:
    stream = io.StringIO()
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.int32, shape=(None,))
        op = sf.print("got", x, output_stream=stream)
    assert isinstance(op, sf.Operation)
    assert stream.getvalue() == ""
    sess = sf.Session(g)
    sess.run(op, {x: [1, 2]})
    sess.run(op, {x: [3]})
    assert stream.getvalue() == "got [1 2]\ngot [3]\n"


def test_print_in_a_function_runs_each_call_in_program_order() -> None:
    stream = io.StringIO()
    v = sf.Variable(0.0)

    @sf.function
    def step(x: Any) -> Any:
        sf.print("before", v, output_stream=stream)
        v.assign_add(x)
        sf.print("after", v, output_stream=stream)
        sf.print("nothing returned depends on me", output_stream=stream)
        return sf.constant(0.0)

    step(sf.constant(1.0))
    step(sf.constant(2.0))
    assert stream.getvalue().splitlines() == [
        "before 0.",
        "after 1.",
        "nothing returned depends on me",
        "before 1.",
        "after 3.",
        "nothing returned depends on me",
    ]


def test_print_resolves_stdout_when_it_runs(capsys: pytest.CaptureFixture[str]) -> None:
    @sf.function
    def f(x: Any) -> Any:
        sf.print("value", x)
        return x

    f(sf.constant(1))
    f(sf.constant(2))
    assert capsys.readouterr().out == "value 1\nvalue 2\n"


def test_print_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"^print\(\): output_stream must have a write\(\)"):
        sf.print("x", output_stream="stdout")
    with pytest.raises(TypeError, match=r"^print\(\): summarize must be an int or None"):
        sf.print("x", summarize=2.5)
    with pytest.raises(TypeError, match=r"^print\(\): sep and end must be strings"):
        sf.print("x", sep=None)


# -- assertions ----------------------------------------------------------------------------


def test_eager_assertions_pass_silently_and_raise_at_once() -> None:
    x = sf.constant([1, 2, 3])
    assert sf.debugging.assert_equal(x, [1, 2, 3]) is None
    assert sf.debugging.assert_less(x, 4) is None
    assert sf.debugging.assert_greater(x, 0) is None
    assert sf.debugging.assert_non_negative(x) is None
    with pytest.raises(sf.errors.InvalidArgumentError) as info:
        sf.debugging.assert_less(x, 2, message="too big")
    assert str(info.value).splitlines() == [
        "too big: Condition x < y did not hold for 2 of 3 elements.",
        "Indices of the first failures: [[1], [2]]",
        "First 3 elements of x: [1 2 3]",
        "First 3 elements of y: [2]",
    ]


def test_assertion_messages_show_only_the_first_summarize_elements() -> None:
    x = sf.constant(np.arange(100, 110, dtype=np.float32))
    with pytest.raises(sf.errors.InvalidArgumentError) as info:
        sf.debugging.assert_non_negative(-x, summarize=2)
    message = str(info.value)
    assert message.startswith("Condition x >= 0 did not hold for 10 of 10 elements.")
    assert "First 2 elements of x: [-100. -101. ...]" in message
    assert "-102" not in message


@pytest.mark.parametrize(
    ("check", "args"),
    [
        (sf.debugging.assert_equal, ([1.0, 2.0], [1.0, 3.0])),
        (sf.debugging.assert_less, ([1.0, 5.0], [2.0, 2.0])),
        (sf.debugging.assert_greater, ([1.0, 5.0], [2.0, 2.0])),
    ],
)
def test_graph_assertions_raise_when_run(check: Any, args: tuple[Any, Any]) -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(2,), name="x")
        op = check(x, args[1])
        with sf.control_dependencies([op]):
            y = sf.identity(x)
    assert isinstance(op, sf.Operation)
    with pytest.raises(sf.errors.InvalidArgumentError, match=r"First 3 elements of x \('x:0'\)"):
        sf.Session(g).run(y, {x: args[0]})


def test_graph_assertion_that_holds_lets_dependents_run() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(None,))
        with sf.control_dependencies([sf.debugging.assert_non_negative(x)]):
            y = sf.sqrt(x)
    np.testing.assert_allclose(sf.Session(g).run(y, {x: [4.0]}), [2.0])


def test_assertion_in_a_function_runs_on_every_call_and_stops_later_effects() -> None:
    v = sf.Variable(0.0)

    @sf.function
    def step(x: Any) -> Any:
        sf.debugging.assert_greater(x, 0.0, message="x must be positive")
        v.assign_add(x)
        return v.read_value()

    assert float(step(sf.constant(1.0))) == 1.0
    with pytest.raises(sf.errors.InvalidArgumentError, match=r"^x must be positive: "):
        step(sf.constant(-5.0))
    assert float(v.numpy()) == 1.0  # the write after the failed check never ran


def test_assertions_reject_mismatched_dtypes_and_shapes() -> None:
    with pytest.raises(TypeError, match=r"same dtype, got float32 and int32"):
        sf.debugging.assert_equal(sf.constant([1.0]), sf.constant([1]))
    with pytest.raises(ValueError, match=r"^assert_less\(\): shapes \(2,\) and \(3,\) cannot"):
        sf.debugging.assert_less(sf.constant([1.0, 2.0]), sf.constant([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match=r"^assert_less\(\) does not compare values of dtype bool"):
        sf.debugging.assert_less(sf.constant([True]), sf.constant([False]))
    with pytest.raises(TypeError, match=r"^assert_equal\(\): message must be a string"):
        sf.debugging.assert_equal(1, 1, message=3)  # type: ignore[arg-type]


# -- check_numerics ------------------------------------------------------------------------


def test_check_numerics_passes_values_through_in_every_mode() -> None:
    x = sf.constant([1.0, 2.0])
    np.testing.assert_array_equal(sf.debugging.check_numerics(x, "x").numpy(), [1.0, 2.0])
    f = sf.function(lambda t: sf.debugging.check_numerics(t * 2.0, "doubled"))
    np.testing.assert_array_equal(f(x).numpy(), [2.0, 4.0])


def test_check_numerics_raises_on_nan_and_inf() -> None:
    with pytest.raises(sf.errors.InvalidArgumentError, match=r"^bad log : Tensor had NaN values"):
        sf.debugging.check_numerics(sf.log(sf.constant([-1.0, 1.0])), "bad log")
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(None,))
        y = sf.debugging.check_numerics(1.0 / x, "inverse")
    assert isinstance(y, sf.Tensor)
    assert y.shape == (None,)
    np.testing.assert_allclose(sf.Session(g).run(y, {x: [2.0]}), [0.5])
    with pytest.raises(sf.errors.InvalidArgumentError, match=r"^inverse : Tensor had Inf values"):
        sf.Session(g).run(y, {x: [0.0, 1.0]})
    with pytest.raises(TypeError, match=r"needs a floating-point tensor, got dtype int32"):
        sf.debugging.check_numerics(sf.constant([1]), "ints")


def test_check_numerics_checks_the_gradient_too() -> None:
    x = sf.constant([0.0, 4.0])
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = sf.debugging.check_numerics(x * x, "square")
        z = sf.sqrt(sf.debugging.check_numerics(x, "root"))  # d sqrt(x) at 0 is inf
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [0.0, 8.0])
    with pytest.raises(sf.errors.InvalidArgumentError, match=r"in the gradient\. root"):
        tape.gradient(z, x)


def test_print_in_cond_branches_and_loop_bodies_runs_when_they_run() -> None:
    stream = io.StringIO()

    def branch(label: str, x: Any) -> Any:
        sf.print(label, x, output_stream=stream)
        return sf.identity(x)

    @sf.function
    def f(x: Any, flag: Any) -> Any:
        y = sf.cond(flag, lambda: branch("true", x), lambda: branch("false", x))

        def body(i: Any) -> Any:
            sf.print("iteration", i, output_stream=stream)
            return i + 1

        sf.while_loop(lambda i: i < 2, body, [sf.constant(0)])
        return y

    f(sf.constant(1), sf.constant(True))
    f(sf.constant(2), sf.constant(False))
    assert stream.getvalue().splitlines() == [
        "true 1",
        "iteration 0",
        "iteration 1",
        "false 2",
        "iteration 0",
        "iteration 1",
    ]


def test_graph_assertion_on_constants_fails_while_building() -> None:
    with sf.Graph().as_default():
        assert isinstance(sf.debugging.assert_less(sf.constant([1, 2]), 3), sf.Operation)
        with pytest.raises(sf.errors.InvalidArgumentError, match=r"^Condition x == y did not"):
            sf.debugging.assert_equal(sf.constant([1, 2]), 1)
