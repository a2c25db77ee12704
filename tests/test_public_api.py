"""The public namespace: ``__all__`` is sorted and complete, exported classes look public."""

from __future__ import annotations

import importlib
import importlib.resources
import pickle
import re
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest

import scopeflow as sf

ROOT = Path(__file__).resolve().parent.parent


def _public_attributes() -> set[str]:
    """Names a user sees with ``dir(sf)``: no underscore, no submodule."""
    return {
        name
        for name, value in vars(sf).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def test_all_is_sorted_without_duplicates() -> None:
    assert sf.__all__ == sorted(set(sf.__all__))


def test_every_name_in_all_exists() -> None:
    missing = [name for name in sf.__all__ if not hasattr(sf, name)]
    assert missing == []


def test_all_lists_every_public_attribute() -> None:
    assert sorted(_public_attributes() - set(sf.__all__)) == []


def test_modules_in_all_are_public_submodules() -> None:
    modules = {name: getattr(sf, name) for name in sf.__all__}
    modules = {k: v for k, v in modules.items() if isinstance(v, types.ModuleType)}
    assert modules == {
        "errors": sf.errors,
        "nn": sf.nn,
        "optimizers": sf.optimizers,
        "debug": sf.debug,
        "debugging": sf.debugging,
        "random": sf.random,
        "saved_model": sf.saved_model,
        "train": sf.train,
    }
    for name, module in modules.items():
        assert module.__name__ == f"scopeflow.{name}"
        assert module.__doc__
        assert sorted(module.__all__) == sorted(set(module.__all__))
        assert [n for n in module.__all__ if not hasattr(module, n)] == []


@pytest.mark.parametrize("name", ["random", "debugging", "debug"])
def test_public_submodules_import_and_document_their_names(name: str) -> None:
    module = importlib.import_module(f"scopeflow.{name}")
    assert module is getattr(sf, name)
    assert module.__all__ == sorted(module.__all__)
    assert module.__doc__ is not None
    for public in module.__all__:
        assert callable(getattr(module, public))
        assert f":func:`{public}`" in module.__doc__, public


def test_the_random_submodule_does_not_shadow_the_stdlib_random() -> None:
    import random

    assert random.__name__ == "random"
    assert hasattr(random, "Random")


def test_dtype_constants_are_numpy_dtypes() -> None:
    dtypes = {name: getattr(sf, name) for name in sf.__all__}
    dtypes = {k: v for k, v in dtypes.items() if isinstance(v, np.dtype)}
    assert {"bool_", "float32", "float64", "int32", "int64"} <= set(dtypes)
    for name, dtype in dtypes.items():
        assert dtype == np.dtype(name), name


def test_exported_classes_claim_the_package_as_their_module() -> None:
    classes = [getattr(sf, name) for name in sf.__all__ if isinstance(getattr(sf, name), type)]
    assert classes
    wrong = {c.__qualname__: c.__module__ for c in classes if c.__module__ != "scopeflow"}
    assert wrong == {}
    # The name the class reports resolves to the class itself.
    assert [c for c in classes if getattr(sf, c.__qualname__, None) is not c] == []


def test_every_error_class_resolves_where_it_claims_to_live() -> None:
    for name in sf.errors.__all__:
        cls = getattr(sf.errors, name)
        err = pickle.loads(pickle.dumps(cls("message")))
        assert type(err) is cls
        assert str(err) == "message"


@pytest.mark.parametrize("cls", [sf.Operation, sf.Tensor, sf.EagerTensor], ids=lambda c: c.__name__)
def test_library_made_objects_refuse_public_construction(cls: type) -> None:
    for args, kwargs in [((), {}), ((1.0,), {"name": "x"})]:
        with pytest.raises(TypeError) as info:
            cls(*args, **kwargs)
        message = str(info.value)
        # It names the class and says which function gives you one.
        assert re.search(rf"\b{cls.__name__}\b", message), message
        assert re.search(r"\bsf\.\w+\(", message), message


def test_package_ships_py_typed() -> None:
    assert importlib.resources.files("scopeflow").joinpath("py.typed").is_file()
    pyproject = ROOT / "pyproject.toml"
    if pyproject.is_file():  # a source checkout: the wheel must include the marker too
        config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        assert "py.typed" in config["tool"]["setuptools"]["package-data"]["scopeflow"]
