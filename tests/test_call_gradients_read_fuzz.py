"""Traced programs that read and write variables differentiate as their eager runs do.

Random small programs mix reads (``x * a + b``), writes, checks, nested traced calls (a
shared function called from several places), conds and while loops. Run eagerly under a
tape, every read is recorded with the value it returned: the reference. The same program
traced must give the same outputs, gradients (input and variables) and final variable
values, under an eager tape, with a tape inside a traced function (graph gradients of the
conds, loops and calls themselves), and through ``sf.gradients`` in a session.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scopeflow as sf

Step = tuple[Any, ...]


def _program(rng: random.Random, depth: int, calls: tuple[int, ...]) -> list[Step]:
    steps: list[Step] = []
    for _ in range(rng.randint(1, 4)):
        kinds = ["lin", "lin", "write", "check"]
        if depth < 2:
            kinds += ["cond", "loop"] + (["call"] if calls else [])
        kind = rng.choice(kinds)
        if kind == "lin":
            steps.append(("lin", rng.choice("ab"), rng.choice("ab")))
        elif kind == "write":
            steps.append(("write", rng.choice("ab"), rng.choice([0.5, -0.25, 1.0])))
        elif kind == "check":
            steps.append(("check",))
        elif kind == "call":
            steps.append(("call", rng.choice(calls)))
        elif kind == "cond":
            steps.append(("cond", _program(rng, depth + 1, calls), _program(rng, depth + 1, calls)))
        else:
            steps.append(("loop", rng.randint(1, 3), _program(rng, depth + 1, calls)))
    return steps


def _build(
    seed: int, variables: dict[str, sf.Variable], wrap: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """The program of ``seed`` as a function of x; ``wrap`` makes its nested functions."""
    rng = random.Random(seed)
    shared = [_program(rng, 1, ()), _program(rng, 1, (0,))]  # the second calls the first
    main = _program(rng, 0, (0, 1))

    def run(steps: list[Step], x: Any) -> Any:
        for step in steps:
            kind = step[0]
            if kind == "lin":
                x = x * (variables[step[1]] * 0.5) + variables[step[2]] * 0.1
            elif kind == "write":
                variables[step[1]].assign_add(step[2])
            elif kind == "check":
                sf.debugging.assert_less(x, 1e12)
            elif kind == "call":
                x = nested[step[1]](x)
            elif kind == "cond":
                x = sf.cond(
                    x > -1e9,
                    lambda s=step, x=x: run(s[1], x),
                    lambda s=step, x=x: run(s[2], x),
                )
            else:
                x = sf.while_loop(
                    lambda i, x, s=step: i < s[1],
                    lambda i, x, s=step: (i + 1, run(s[2], x)),
                    [0, x],
                )[1]
        return x

    nested = [wrap(lambda x, s=s: run(s, x)) for s in shared]
    return lambda x: run(main, x)


def _variables() -> dict[str, sf.Variable]:
    return {"a": sf.Variable(1.5, dtype=sf.float64), "b": sf.Variable(0.7, dtype=sf.float64)}


def _values(results: list[Any], variables: dict[str, sf.Variable]) -> list[float]:
    return [float(np.asarray(r)) for r in results] + [
        float(np.asarray(v.numpy())) for v in variables.values()
    ]


def _eager(seed: int) -> list[float]:
    v = _variables()
    f = _build(seed, v, lambda fn: fn)
    x = sf.constant(0.9, dtype=sf.float64)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
        v["a"].assign_add(0.375)  # a write after the program, before the gradient
    grads = tape.gradient(y, [x, v["a"], v["b"]], unconnected_gradients="zero")
    return _values([y, *grads], v)


def _traced(seed: int, mode: str) -> list[float]:
    if mode == "session":
        g = sf.Graph()
        with g.as_default():
            v = _variables()
            f = sf.function(_build(seed, v, sf.function))
            xp = sf.placeholder(sf.float64, ())
            y = f(xp)
            with sf.control_dependencies([y]):
                write = v["a"].assign_add(0.375)
            with sf.control_dependencies([write]):
                grads = sf.gradients(y, [xp, v["a"], v["b"]], unconnected_gradients="zero")
            init = sf.global_variables_initializer()
        with sf.Session(g) as sess:
            sess.run(init)
            results = sess.run([y, *grads], {xp: 0.9})
            return [float(r) for r in results] + [float(r) for r in sess.run([v["a"], v["b"]])]
    v = _variables()
    x = sf.constant(0.9, dtype=sf.float64)
    if mode == "eager tape":
        f = sf.function(_build(seed, v, sf.function))
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
            v["a"].assign_add(0.375)
        grads = tape.gradient(y, [x, v["a"], v["b"]], unconnected_gradients="zero")
        return _values([y, *grads], v)
    body = _build(seed, v, sf.function)  # its conds and loops straight on the tape

    @sf.function
    def with_tape(x: Any) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = body(x)
            v["a"].assign_add(0.375)
        return [y, *tape.gradient(y, [x, v["a"], v["b"]], unconnected_gradients="zero")]

    return _values(with_tape(x), v)


@pytest.mark.parametrize("mode", ["eager tape", "tape in a traced function", "session"])
@pytest.mark.parametrize("block", range(4))
def test_traced_programs_differentiate_as_their_eager_runs(mode: str, block: int) -> None:
    for seed in range(block * 25, block * 25 + 25):
        try:
            expected = _eager(seed)
        except sf.errors.InvalidArgumentError:  # a check failed: so must the traced run
            with pytest.raises(sf.errors.InvalidArgumentError):
                _traced(seed, mode)
            continue
        np.testing.assert_allclose(
            _traced(seed, mode), expected, rtol=1e-9, atol=1e-12, err_msg=f"seed {seed}"
        )
