"""``import scopeflow`` leaves model state unloaded until first use, without a module
``__getattr__`` on the package (it would keep every ``sf.X`` lookup off CPython's cache)."""

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
        "mods = ['json', 'hashlib', 'tempfile', 'anyio', 'safetensors', "
        "'typing_extensions', 'scopeflow.saved_model', 'scopeflow.train', "
        "'scopeflow._saved_model_load', 'scopeflow._checkpoint']\n"
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


def test_the_package_has_no_module_getattr() -> None:
    # A namespace holding __getattr__ is never specialised by CPython's LOAD_ATTR cache:
    # sf.X would cost 20-30 ns more on every use (bench_scopes query rows).
    assert "__getattr__" not in vars(sf)


def test_lazy_submodules_load_once_from_many_threads() -> None:
    code = (
        "import threading, scopeflow as sf\n"
        "stand_in = sf.saved_model\n"
        "seen = []\n"
        "barrier = threading.Barrier(8)\n"
        "def use():\n"
        "    barrier.wait()\n"
        "    seen.append((stand_in.save, sf.train.Checkpoint))\n"
        "threads = [threading.Thread(target=use) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "import scopeflow.saved_model as real\n"
        "print(len(seen), len(set(seen)), sf.saved_model is real, real.save is seen[0][0])\n"
        "print(repr(stand_in).startswith(\"<module 'scopeflow.saved_model'\"), "
        "'save' in dir(stand_in), stand_in.__all__ == real.__all__)\n"
    )
    assert _run(code).splitlines() == ["8 1 True True", "True True True"]


def test_a_patch_through_the_stand_in_reaches_the_real_module() -> None:
    """``mock.patch.object(sf.saved_model, "load")`` before the first use: the patch is
    what every caller sees (the first attribute read imports the real module, which then
    takes the stand-in's place on the package), and the exit restores the function."""
    code = (
        "from unittest import mock\n"
        "import scopeflow as sf\n"
        "stand_in = sf.saved_model\n"
        "with mock.patch.object(sf.saved_model, 'load', return_value=42) as m:\n"
        "    print(sf.saved_model.load('x'), stand_in.load('y'), m.call_count)\n"
        "import scopeflow.saved_model as real\n"
        "print(real.load.__name__, stand_in.load is real.load, sf.saved_model is real)\n"
    )
    assert _run(code).splitlines() == ["42 42 2", "load True True"]


def test_writes_through_a_held_stand_in_reach_the_real_module() -> None:
    code = (
        "import scopeflow as sf\n"
        "from scopeflow import train\n"  # the stand-in, held before the first use
        "train.MARK = 1\n"
        "import scopeflow.train as real\n"
        "print(real.MARK, sf.train.MARK, train.MARK)\n"
        "del train.MARK\n"
        "print(hasattr(real, 'MARK'), hasattr(train, 'MARK'))\n"
    )
    assert _run(code).splitlines() == ["1 1 1", "False False"]


def test_the_stand_in_has_the_real_docstring_and_spec() -> None:
    code = (
        "import scopeflow as sf\n"
        "doc, spec, name = sf.train.__doc__, sf.train.__spec__, sf.train.__name__\n"
        "import scopeflow.train as real\n"
        "print(doc == real.__doc__, spec is real.__spec__, name == real.__name__)\n"
        "print(sf.saved_model.__loader__ is not None, sf.saved_model.__package__)\n"
    )
    assert _run(code).splitlines() == ["True True True", "True scopeflow"]


def test_reloading_the_package_keeps_imported_submodules() -> None:
    code = (
        "import importlib, sys, scopeflow as sf\n"
        "sf.train.Checkpoint\n"
        "importlib.reload(sf)\n"
        "print(sf.train is sys.modules['scopeflow.train'], type(sf.saved_model).__name__)\n"
    )
    assert _run(code).splitlines() == ["True LazySubmodule"]
