"""Write the API reference pages (docs/reference/*.md) from the public names.

Run ``python docs/gen_reference.py`` after adding or removing a public name; the test
suite (tests/test_docs.py) fails while a page is out of date. Each page lists one
``::: scopeflow.NAME`` block per name of a namespace's ``__all__``, which mkdocstrings
renders from the docstrings at build time.
"""

from __future__ import annotations

import inspect
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"

# The public submodules and one line about each, in the order of the navigation.
SUBMODULES: dict[str, str] = {
    "nn": "activations, softmax and numerically stable losses",
    "random": "random ops and the per-context global seed",
    "debugging": "run-time checks that are ops in graphs",
    "debug": "scope introspection: `describe_scopes()`",
    "optimizers": "optimizers with lazily created slot variables",
    "train": "checkpoints",
    "saved_model": "exporting and loading traced models",
    "errors": "the error hierarchy",
}

# Top-level names are grouped by the private module that defines them.
SECTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("Graphs, tensors and sessions", ("_graph", "_operation", "_tensor", "_execution")),
    ("Scopes and execution modes", ("_context", "_scopes", "_init_scope", "_device")),
    ("Concurrency helpers", ("_generators",)),
    (
        "Traced functions and variables",
        ("_function", "_func_graph", "_concrete", "_call_keys", "_variables"),
    ),
    ("Gradients", ("_tape", "_gradients", "_backprop", "_custom_gradient")),
    ("Control flow", ("_control_flow",)),
    ("Model state", ("_module", "_optimizers", "_checkpoint")),
    ("Errors", ("errors",)),
]
OPS = "Ops"
DTYPES = "Data types"


def _defining_module(obj: object) -> str:
    path: str | None = None
    if isinstance(obj, type):
        # Exported classes say ``__module__ = "scopeflow"``: ask their methods instead.
        for value in vars(obj).values():
            code = getattr(getattr(value, "fget", value), "__code__", None)
            if code is not None:
                path = code.co_filename
                break
    else:
        try:
            path = inspect.getsourcefile(obj)  # type: ignore[arg-type]
        except TypeError:
            return ""
    if path is None:
        return ""
    parts = Path(path).with_suffix("").parts
    return parts[-1] if parts[-2] != "_ops" else "_ops"


def _section_of(name: str, obj: object) -> str:
    if isinstance(obj, np.dtype):
        return DTYPES
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return "Errors"
    if name in ("custom_gradient", "stop_gradient"):
        return "Gradients"
    module = _defining_module(obj)
    for title, modules in SECTIONS:
        if module in modules:
            return title
    return OPS


def _page(title: str, intro: str, blocks: list[tuple[str, list[str]]]) -> str:
    lines = [f"# {title}", "", intro, ""]
    for heading, names in blocks:
        if heading:
            lines += [f"## {heading}", ""]
        for name in names:
            lines += [f"::: {name}", ""]
    return "\n".join(lines).rstrip() + "\n"


def pages() -> dict[str, str]:
    """File name -> content of every reference page."""
    sys.path.insert(0, str(ROOT / "src"))
    import scopeflow as sf

    out: dict[str, str] = {}
    grouped: dict[str, list[str]] = {}
    submodules: list[str] = []
    for name in sf.__all__:
        obj = getattr(sf, name)
        if isinstance(obj, types.ModuleType):
            submodules.append(name)
            continue
        grouped.setdefault(_section_of(name, obj), []).append(f"scopeflow.{name}")
    order = [title for title, _ in SECTIONS] + [OPS, DTYPES]
    blocks = [(title, grouped[title]) for title in order if title in grouped]
    intro = (
        "Every name of `scopeflow.__all__` (`import scopeflow as sf`), rendered from its "
        "docstring. The submodules have their own pages: "
        + ", ".join(f"[`sf.{m}`]({m}.md)" for m in SUBMODULES if m in submodules)
        + "."
    )
    out["scopeflow.md"] = _page("scopeflow", intro, blocks)
    for module_name in SUBMODULES:
        if module_name not in submodules:
            continue
        module = getattr(sf, module_name)
        names = [f"scopeflow.{module_name}.{n}" for n in module.__all__]
        intro = f"`sf.{module_name}`: {SUBMODULES[module_name]}."
        out[f"{module_name}.md"] = _page(f"scopeflow.{module_name}", intro, [("", names)])
    index = [
        "# API reference",
        "",
        "Generated from the docstrings of every public name; each example in them runs as a "
        "doctest with the test suite.",
        "",
        "| Namespace | What it holds |",
        "| --- | --- |",
        "| [`scopeflow`](scopeflow.md) | graphs, tensors, sessions, scopes, traced "
        "functions, variables, gradients, control flow, ops and dtypes |",
    ]
    index += [
        f"| [`scopeflow.{m}`]({m}.md) | {SUBMODULES[m]} |" for m in SUBMODULES if m in submodules
    ]
    out["index.md"] = "\n".join(index) + "\n"
    return out


def main() -> None:
    """Rewrite docs/reference/ to match the public names."""
    wanted = pages()
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for stale in REFERENCE.glob("*.md"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (REFERENCE / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(wanted)} pages to {REFERENCE}")


if __name__ == "__main__":
    main()
