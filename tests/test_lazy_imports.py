"""``import scopeflow`` leaves model state and executor helpers unloaded until first use."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

import scopeflow as sf

SRC = str(Path(__file__).resolve().parent.parent / "src")
LAZY = ["saved_model", "train", "ScopedExecutor", "ScopesSnapshot", "copy_scopes",
        "run_in_scopes"]  # fmt: skip


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": SRC, "PATH": ""},
    )
    return out.stdout.strip()


def test_import_loads_none_of_the_lazy_modules() -> None:
    code = (
        "import sys, scopeflow as sf\n"
        "mods = ['json', 'hashlib', 'tempfile', 'anyio', 'concurrent.futures', "
        "'typing_extensions', 'scopeflow.saved_model', 'scopeflow.train', 'scopeflow._carry', "
        "'scopeflow._checkpoint']\n"
        "print(sorted(m for m in mods if m in sys.modules))\n"
        "x = sf.function(lambda t: t * 2)(sf.constant([1.0]))\n"
        "print(sorted(m for m in mods if m in sys.modules))\n"
    )
    assert _run(code).splitlines() == ["[]", "[]"]


@pytest.mark.parametrize("name", LAZY)
def test_lazy_names_resolve_in_a_fresh_interpreter(name: str) -> None:
    code = (
        "import scopeflow as sf, types\n"
        f"a = sf.{name}\n"
        f"from scopeflow import {name} as b\n"
        f"print(a is b, {name!r} in dir(sf), isinstance(a, types.ModuleType) or "
        f"getattr(a, '__module__', None) in ('scopeflow', 'scopeflow._carry'))\n"
    )
    assert _run(code) == "True True True"


def test_star_import_and_submodule_import() -> None:
    code = (
        "import scopeflow.saved_model as m\n"
        "import scopeflow as sf\n"
        "print(m is sf.saved_model)\n"
        "from scopeflow import *\n"
        "print(train.__name__, ScopedExecutor.__module__)\n"
    )
    assert _run(code).splitlines() == ["True", "scopeflow.train scopeflow"]


def test_lazy_names_in_this_process() -> None:
    for name in LAZY:
        value = getattr(sf, name)
        assert name in vars(sf)
        if isinstance(value, type):
            assert value.__module__ == "scopeflow"
        elif isinstance(value, types.ModuleType):
            assert value.__name__ == f"scopeflow.{name}"
    with pytest.raises(AttributeError, match="module 'scopeflow' has no attribute 'nothing'"):
        sf.nothing  # noqa: B018
