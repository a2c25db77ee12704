"""Op and scope names: which are valid, and a graph's table of names in use.

The table follows TensorFlow's unique-name rule, kept small. The rule: names compare
case-insensitively; asking for a name that is taken gives ``name_1``, ``name_2``, ...
(skipping suffixes taken otherwise), and every name handed out counts as taken. Written
out, that stores two keys per auto-named op ("add" with its count and the generated
"add_7"); this table stores only the counts of the names asked for (``counts``). A
generated ``base_N`` with ``1 <= N < counts[base]`` is taken *implicitly*: when ``base``
had count ``N``, either ``base_N`` was free and handed out, or it was taken already.
Only a suffixed name taken some other way (asked for by that name, given verbatim, or
handed out past a taken one) is stored, and ``high[base]`` keeps its largest suffix, so
that a new ``base_N`` with ``N > high[base]`` needs no probe. A name given verbatim
counts too without handing out a suffix, so it stores the suffix it skips as free
(count 0).

That keeps the table at one entry per distinct name asked for, instead of two entries
per op: the graph-building hot path does one lookup and one store in a small dict
(SPEC section 11, bench_tasks: a growing dict per graph cost cache misses on every op
of interleaved tasks). Callers hold the graph's lock.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["NameMemo", "check_name", "count_of", "note", "take_verbatim", "unique"]

_SUFFIXED: Final = re.compile(r"(.*)_([1-9][0-9]*)", re.DOTALL)
_VALID_OP_NAME: Final = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*")
_VALID_SCOPE_NAME: Final = re.compile(r"[A-Za-z0-9_.\\/>-]*")
# Names already validated, per pattern: name scopes are entered again and again.
_valid_root: set[str] = set()
_valid_nested: set[str] = set()


class NameMemo:
    """The automatic names of one op type in one name scope of a graph, while they are
    handed out in a row: ``full`` (``"scope/Type"``), its key and its count.

    While a memo exists, its count is the true count of its key (the table's entry is
    stale), and no name ``key_N`` with ``N >= count`` is taken, so the next name is
    ``f"{full}_{count}"`` with no lookup in the table: the graph writes the counts back
    before it uses the table itself, and takes them back after, dropping a memo whose
    next name may be taken then (SPEC section 11, bench_tasks: saves two lookups and a
    store per op in a dict that interleaved tasks keep cold).
    """

    __slots__ = ("count", "full", "key", "op_type", "prefix")

    def __init__(self, op_type: str, prefix: str, full: str, key: str, count: int) -> None:
        self.op_type = op_type
        self.prefix = prefix
        self.full = full
        self.key = key
        self.count = count


def _split(key: str) -> tuple[str, int] | None:
    """``("base", N)`` for a key ``"base_N"`` as the rule generates it, else None."""
    m = _SUFFIXED.fullmatch(key)
    return None if m is None else (m[1], int(m[2]))


def count_of(counts: dict[str, int], key: str) -> int:
    """How often ``key`` was taken: its count, 1 if only generated, 0 if free."""
    i = counts.get(key)
    if i is not None:
        return i
    split = _split(key)
    if split is not None and counts.get(split[0], 0) > split[1]:
        return 1  # generated implicitly (see the module docstring)
    return 0


def note(counts: dict[str, int], high: dict[str, int], key: str, count: int) -> None:
    """Store ``count`` for ``key``, keeping ``high`` up to date for a new suffixed key."""
    if key not in counts:
        split = _split(key)
        if split is not None:
            base, n = split
            if n > high.get(base, 0):
                high[base] = n
    counts[key] = count


def unique(counts: dict[str, int], high: dict[str, int], name: str, mark: bool) -> str:
    """``name`` made unique (``name_N``), and taken when ``mark`` is true."""
    key = name.lower()
    # count_of's first step inlined: most keys asked for are in the table (~60 ns per
    # name_scope('a') in a graph, bench_scopes).
    i = counts.get(key)
    if i is None:
        i = count_of(counts, key)
    if i == 0:
        if mark:
            note(counts, high, key, 1)
        return name
    j = i
    if j <= high.get(key, 0):  # some base_N with N >= i may be taken: probe
        while f"{key}_{j}" in counts:
            j += 1
    if mark:
        if key in counts:
            counts[key] = i + 1
        else:
            note(counts, high, key, i + 1)
        if j != i:
            note(counts, high, f"{key}_{j}", 1)  # past a taken one: not implicit
    return f"{name}_{j}"


def take_verbatim(counts: dict[str, int], high: dict[str, int], key: str) -> None:
    """Count a name given verbatim (the caller checked that no op has it)."""
    c = count_of(counts, key)
    if c:
        # The count grows without a suffix being handed out: base_c stays free.
        free = f"{key}_{c}"
        if free not in counts:
            note(counts, high, free, 0)
    note(counts, high, key, c + 1)


def check_name(name: str, nested: bool) -> None:
    valid = _valid_nested if nested else _valid_root
    if name in valid:
        return
    pattern = _VALID_SCOPE_NAME if nested else _VALID_OP_NAME
    if pattern.fullmatch(name):
        if len(valid) > 4096:
            valid.clear()
        valid.add(name)
    else:
        where = "inside a name scope" if nested else "at the root"
        msg = (
            f"{name!r} is not a valid name {where}: names use letters, digits and . _ - / > "
            f"(no ':'), and a name at the root may not start with '_' or '-'"
        )
        raise ValueError(msg)
