"""The documentation site: its code runs and prints what the pages show, and it is complete.

Every ```` ```python ```` block of ``docs/**/*.md`` is a complete program, run as
``__main__`` with warnings as errors, on the ``scopeflow`` this test session imports (all
blocks in one fresh interpreter, each in its own namespace and context). Its output is
checked in one of two ways:

- a ```` ```text ```` block right after it is the whole output (``...`` matches anything);
- otherwise each ``print(...)  # text`` line prints one line that ``text`` starts with.

Blocks fenced otherwise (```` ```bash ````, ```` ```pycon ````) are not run. A
```` ```scopeflow-graph ```` block is a program that sets ``picture``; the MkDocs hook
(``docs/hooks.py``) draws it at build time, and a test here draws each one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

import scopeflow as sf

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PACKAGE_PARENT = Path(sf.__file__).resolve().parent.parent

_BLOCK = re.compile(
    r"^( *)```(python|scopeflow-graph)\n(.*?)^\1```\n(?:\n*^\1```text\n(.*?)^\1```)?",
    re.MULTILINE | re.DOTALL,
)


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _blocks(kind: str) -> list[tuple[str, str, str | None]]:
    """(page#index, code, expected output or None) for the blocks of one kind."""
    found = []
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        n = 0
        for m in _BLOCK.finditer(text):
            if m.group(2) != kind:
                continue
            expected = None if m.group(4) is None else textwrap.dedent(m.group(4))
            found.append((f"{page.relative_to(DOCS)}#{n}", textwrap.dedent(m.group(3)), expected))
            n += 1
    return found


PYTHON_BLOCKS = _blocks("python")
GRAPH_BLOCKS = _blocks("scopeflow-graph")


# Runs every block in one fresh interpreter (warnings as errors), each as ``__main__`` in
# its own namespace and its own copy of the context, with the global default graph and the
# execution mode reset in between: as isolated as a process per block for what the docs
# do, at the cost of one import of numpy and scopeflow instead of one per block.
RUNNER = """
import contextvars, io, json, sys, traceback
from contextlib import redirect_stdout

import scopeflow as sf

results = []
for where, code in json.load(sys.stdin):
    out = io.StringIO()
    error = None
    try:
        with redirect_stdout(out):
            namespace = {"__name__": "__main__"}
            contextvars.copy_context().run(exec, compile(code, where, "exec"), namespace)
    except BaseException:
        error = traceback.format_exc()
    sf.enable_eager_execution()
    sf.reset_default_graph()
    results.append((out.getvalue(), error))
json.dump(results, sys.__stdout__)
"""


@pytest.fixture(scope="module")
def block_results() -> dict[str, tuple[str, str | None]]:
    """page#index -> (stdout, traceback or None) of every python block of the docs."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PACKAGE_PARENT), *filter(None, [env.get("PYTHONPATH")])]
    )
    blocks = [(where, code) for where, code, _ in PYTHON_BLOCKS]
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", RUNNER],
        input=json.dumps(blocks),
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=DOCS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)
    return {where: (out, error) for (where, _), (out, error) in zip(blocks, results, strict=True)}


def _matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is ``expected`` with each ``...`` standing for any text.

    Trailing newlines do not count (``print(text)`` of a text that ends with one).
    """
    pattern = ".*?".join(re.escape(part) for part in expected.rstrip("\n").split("..."))
    return re.fullmatch(pattern, actual.rstrip("\n"), re.DOTALL) is not None


def test_the_docs_have_code() -> None:
    assert len(PYTHON_BLOCKS) >= 20
    assert len(GRAPH_BLOCKS) >= 2
    assert any(expected is not None for _, _, expected in PYTHON_BLOCKS)


@pytest.mark.parametrize(
    ("where", "code", "expected"), PYTHON_BLOCKS, ids=[b[0] for b in PYTHON_BLOCKS]
)
def test_docs_code_prints_what_the_page_shows(
    where: str,
    code: str,
    expected: str | None,
    block_results: dict[str, tuple[str, str | None]],
) -> None:
    stdout, error = block_results[where]
    assert error is None, f"{where}\n{code}\n{error}"
    result = types.SimpleNamespace(stdout=stdout)
    if expected is not None:
        assert _matches(expected, result.stdout), f"{where} printed:\n{result.stdout}"
        return
    prints = [line.strip() for line in code.splitlines() if line.strip().startswith("print(")]
    printed = result.stdout.splitlines()
    assert len(printed) == len(prints), f"{where}: {result.stdout}"
    for source, out in zip(prints, printed, strict=True):
        _, sep, comment = source.partition(")  # ")
        if sep:
            assert comment.startswith(out), f"{where}: {source!r} printed {out!r}"


def _load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", DOCS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("where", "code", "expected"), GRAPH_BLOCKS, ids=[b[0] for b in GRAPH_BLOCKS]
)
def test_graph_blocks_draw_a_picture(
    where: str, code: str, expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = _load("hooks")
    drawn = hooks.draw(code, where)
    assert drawn.startswith(f"```python\n{code}```\n\n")
    assert "<svg" in drawn or "```mermaid\nflowchart TD\n" in drawn
    # Without Graphviz the page gets a Mermaid diagram instead.
    monkeypatch.setattr(hooks.shutil, "which", lambda _: None)
    assert "```mermaid\nflowchart TD\n" in hooks.draw(code, where)


def test_a_graph_block_without_picture_is_an_error() -> None:
    hooks = _load("hooks")
    with pytest.raises(ValueError, match=r"^page\.md: a scopeflow-graph block must set"):
        hooks.draw("x = 1\n", "page.md")


def test_hooks_draw_graph_blocks_and_plain_sphinx_roles() -> None:
    hooks = _load("hooks")
    page: Any = types.SimpleNamespace(file=types.SimpleNamespace(src_path="p.md"))
    code = "import scopeflow as sf\npicture = sf.Graph('empty')\n"
    markdown = f"before\n\n```scopeflow-graph\n{code}```\n\nafter\n"
    out = hooks.on_page_markdown(markdown, page)
    assert out.startswith(f"before\n\n```python\n{code}```\n\n")
    assert out.endswith("\nafter\n")
    html = ":class:<code>~scopeflow.errors.InvalidArgumentError</code> and :func:<code>cond</code>"
    assert hooks.on_page_content(html) == "<code>InvalidArgumentError</code> and <code>cond</code>"


# -- completeness -------------------------------------------------------------------------


def _public_names() -> set[str]:
    names = set()
    for name in sf.__all__:
        obj = getattr(sf, name)
        if isinstance(obj, types.ModuleType):
            names |= {f"scopeflow.{name}.{n}" for n in obj.__all__}
        else:
            names.add(f"scopeflow.{name}")
    return names


def test_the_api_reference_covers_every_public_name() -> None:
    documented = set()
    for page in (DOCS / "reference").glob("*.md"):
        documented |= set(re.findall(r"^::: (\S+)$", page.read_text(encoding="utf-8"), re.M))
    assert sorted(_public_names() - documented) == []
    assert sorted(documented - _public_names()) == []


def test_the_api_reference_pages_are_up_to_date() -> None:
    wanted = _load("gen_reference").pages()
    stale = [
        name
        for name, text in wanted.items()
        if not (DOCS / "reference" / name).is_file()
        or (DOCS / "reference" / name).read_text(encoding="utf-8") != text
    ]
    extra = sorted({p.name for p in (DOCS / "reference").glob("*.md")} - set(wanted))
    assert (stale, extra) == ([], []), "run `python docs/gen_reference.py`"


def _nav_pages() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text.split("\nnav:\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"([\w/-]+\.md)$", nav, re.M)


def test_every_page_is_in_the_navigation() -> None:
    pages = sorted(str(p.relative_to(DOCS)) for p in _pages())
    assert sorted(_nav_pages()) == pages


def test_the_readme_is_a_short_front_page_linking_every_guide() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 250
    guides = [p for p in _nav_pages() if not p.startswith("reference/") and p != "index.md"]
    missing = [p for p in guides if f"(docs/{p})" not in text]
    assert missing == []
    assert "(docs/reference/index.md)" in text
    assert "## API at a glance" in text


def test_every_relative_link_of_the_readme_and_the_docs_resolves() -> None:
    broken = []
    for page in [README, *_pages()]:
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text):
            link = m.group(1)
            if re.match(r"^[a-z]+://", link) or link == "...":
                continue
            if not (page.parent / link).exists():
                broken.append(f"{page.relative_to(ROOT)}: {link}")
    assert broken == []


def test_the_readme_api_table_names_real_public_names() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("## API at a glance", 1)[1].split("\n## ", 1)[0]
    unknown = []
    for row in re.findall(r"^\| (.+?) \| .+ \|$", table, re.M)[2:]:  # skip the header
        for token in re.findall(r"`@?([A-Za-z_][\w.]*)(?:[( ][^`]*)?`", row):
            parts = token.split(".")
            if parts[0] == "sf":
                obj: Any = sf
                parts = parts[1:]
            elif parts[0] in {"Graph", "g"}:
                obj = sf.Graph
                parts = parts[1:]
            else:
                unknown.append(token)  # a bare name: write it as sf.NAME
                continue
            for part in parts:
                obj = getattr(obj, part, None)
            if obj is None:
                unknown.append(token)
    assert unknown == []
