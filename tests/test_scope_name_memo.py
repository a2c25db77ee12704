"""A graph's name-scope memo (``Graph._scope_name``) hands out the names of the rule.

A name scope asked for twice in a row gets a NameMemo, as op types do: the next names
(``a_2``, ``a_3``, ...) come without the name table. Every other use of the table writes
the memo back first and takes it back after, so the names must be those of TensorFlow's
unique-name rule written out, whatever the requests in between (ops, explicit and
verbatim names, peeks, other scopes, case variants).
"""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

import scopeflow as sf
from scopeflow._graph_build import SCOPE_MEMO


class Reference:
    """TensorFlow's unique-name rule with every name in use stored."""

    def __init__(self) -> None:
        self.in_use: dict[str, int] = {}

    def unique(self, name: str, mark: bool = True) -> str:
        in_use = self.in_use
        key = name.lower()
        i = in_use.get(key, 0)
        if mark:
            in_use[key] = i + 1
        if i == 0:
            return name
        base = key
        while key in in_use:
            key = f"{base}_{i}"
            i += 1
        if mark:
            in_use[key] = 1
        return f"{name}_{i - 1}"

    def verbatim(self, key: str) -> None:
        self.in_use[key] = self.in_use.get(key, 0) + 1


@pytest.mark.parametrize("seed", range(40))
def test_scope_names_follow_the_rule_with_everything_in_between(seed: int) -> None:
    rng = random.Random(seed)
    ref = Reference()
    g = sf.Graph()
    taken: set[str] = set()
    with g.as_default():
        c = sf.placeholder(np.float32, (), name="c")
    ref.unique("c")
    taken.add("c")
    for _ in range(300):
        outer = rng.choice(["", "", "", "a/", "Add/"])
        with g.as_default(), sf.name_scope(outer or None):
            prefix = outer
            roll = rng.random()
            if roll < 0.45:  # repeated requests make the memo; case variants share a key
                name = rng.choice(["a", "a", "a", "A", "add", "Add", "a_2", "b"])
                with sf.name_scope(name) as scope:
                    assert scope == ref.unique(prefix + name) + "/", seed
                    if rng.random() < 0.3:
                        got = sf.add(c, c).op.name  # an op type with a memo inside
                        assert got == ref.unique(scope + "Add"), seed
            elif roll < 0.6:  # an op whose memo key may be the scope memo's
                got = sf.add(c, c).op.name
                assert got == ref.unique(prefix + "Add"), seed
            elif roll < 0.75:
                name = rng.choice(["a", "a_3", "A_4", "add_1", "b_1"])
                got = sf.identity(c, name=name).op.name
                assert got == ref.unique(prefix + name), seed
            elif roll < 0.9:
                name = prefix + rng.choice(["a_5", "a_6", "add_2", "b_2", "a_1_1"])
                if name in taken:
                    with pytest.raises(ValueError, match="already exists"):
                        sf.identity(c, name=f"{name}/")
                else:
                    assert sf.identity(c, name=f"{name}/").op.name == name
                    ref.verbatim(name.lower())
            else:
                name = rng.choice(["a", "A", "b"])
                peek = g.unique_name(name, mark_as_used=False)
                assert peek == ref.unique(prefix + name, False), seed
        taken.update(op.name for op in g.get_operations())


def test_a_name_asked_twice_in_a_row_gets_the_memo() -> None:
    g = sf.Graph()
    with g.as_default():
        with sf.name_scope("a"):
            pass
        assert SCOPE_MEMO not in g._name_memo  # asked once: no memo
        with sf.name_scope("a"):
            pass
        memo = g._name_memo[SCOPE_MEMO]
        assert (memo.full, memo.count) == ("a", 2)
        with sf.name_scope("a") as s:
            assert s == "a_2/"
        assert memo.count == 3
        with sf.name_scope("b"):  # another name: the memo stays
            pass
        assert g._name_memo[SCOPE_MEMO] is memo
        with sf.name_scope("a") as s:
            assert s == "a_3/"


def test_the_memo_goes_when_a_name_past_its_count_is_taken() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(np.float32, (), name="x")
        for _ in range(2):
            with sf.name_scope("a"):
                pass
        assert SCOPE_MEMO in g._name_memo
        sf.identity(x, name="a_2/")  # verbatim: the memo's next name is taken
        assert SCOPE_MEMO not in g._name_memo
        with sf.name_scope("a") as s:
            assert s == "a_3/"


def test_an_op_memo_with_the_same_key_replaces_the_scope_memo() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(np.float32, (), name="x")
        for expected in ["add/", "add_1/"]:
            with sf.name_scope("add") as s:
                assert s == expected
        assert g._name_memo[SCOPE_MEMO].key == "add"
        assert sf.add(x, x).op.name == "Add_2"  # the op type's memo takes the key
        assert SCOPE_MEMO not in g._name_memo
        assert g._name_memo["Add"].key == "add"
        names = []
        for _ in range(2):
            with sf.name_scope("add") as s:
                names.append(s)
            names.append(sf.add(x, x).op.name)
        assert names == ["add_3/", "Add_4", "add_5/", "Add_6"]
        assert SCOPE_MEMO not in g._name_memo  # never two memos with one key


def test_nested_and_graph_method_scopes_use_the_memo() -> None:
    g = sf.Graph()
    with g.as_default(), sf.name_scope("outer"):
        got = []
        for _ in range(3):
            with sf.name_scope("inner") as s:
                got.append(s)
    assert got == ["outer/inner/", "outer/inner_1/", "outer/inner_2/"]
    assert g._name_memo[SCOPE_MEMO].full == "outer/inner"
    other = sf.Graph()
    got = []
    for _ in range(3):
        with other.name_scope("s") as s:  # not the default graph
            got.append(s)
    assert got == ["s/", "s_1/", "s_2/"]


def test_threads_asking_for_one_name_get_unique_names() -> None:
    g = sf.Graph()
    names: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def work() -> None:
        try:
            barrier.wait()
            for _ in range(300):
                with g.as_default(), sf.name_scope("layer") as scope:
                    with lock:
                        names.append(scope)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(names) == sorted(["layer/"] + [f"layer_{i}/" for i in range(1, 1200)])


@pytest.mark.parametrize("seed", range(20))
def test_const_names_built_with_their_op_follow_the_rule_too(seed: int) -> None:
    """``x + 1.0`` names its Const and its op under one hold of the lock (the Const memo,
    _const_op): with name scopes called 'Const' or 'Add' (the scope memo may hold such a
    key), explicit and verbatim 'Const_N' names and peeks in between, every name is the
    rule's."""
    rng = random.Random(seed)
    ref = Reference()
    g = sf.Graph()
    with g.as_default():
        c = sf.placeholder(np.float32, (), name="c")
    ref.unique("c")
    for _ in range(300):
        outer = rng.choice(["", "", "a/", "Const/", "a/Const/"])
        with g.as_default(), sf.name_scope(outer or None):
            roll = rng.random()
            if roll < 0.3:
                name = rng.choice(["a", "Const", "const", "Const", "Add", "Const_2", "Mul"])
                with sf.name_scope(name) as scope:
                    assert scope == ref.unique(outer + name) + "/", seed
                    if rng.random() < 0.5:
                        t = c + 1.0
                        want = (ref.unique(scope + "Const"), ref.unique(scope + "Add"))
                        assert (t.op.inputs[1].op.name, t.op.name) == want, seed
            elif roll < 0.55:
                if rng.random() < 0.6:
                    t = 3.0 * c
                    want = (ref.unique(outer + "Const"), ref.unique(outer + "Mul"))
                    assert (t.op.inputs[0].op.name, t.op.name) == want, seed
                else:
                    got = sf.constant(1.0).op.name
                    assert got == ref.unique(outer + "Const"), seed
            elif roll < 0.7:
                name = rng.choice(["Const_3", "const_5", "Add_1", "Const", "a_3"])
                got = sf.identity(c, name=name).op.name
                assert got == ref.unique(outer + name), seed
            elif roll < 0.85:
                name = outer + rng.choice(["Const_7", "const_9", "Add_4", "Const_1_1"])
                taken = {op.name for op in g.get_operations()}
                if name in taken:
                    with pytest.raises(ValueError, match="already exists"):
                        sf.identity(c, name=f"{name}/")
                else:
                    assert sf.identity(c, name=f"{name}/").op.name == name
                    ref.verbatim(name.lower())
            else:
                name = rng.choice(["a", "Const", "Add"])
                peek = g.unique_name(name, mark_as_used=False)
                assert peek == ref.unique(outer + name, False), seed
    names = [op.name for op in g.get_operations()]  # a verbatim name may differ in case only
    assert len(set(names)) == len(names)
