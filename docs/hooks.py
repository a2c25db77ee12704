"""MkDocs hooks: graph pictures drawn at build time, and Sphinx roles made plain.

A fenced block whose info string is ``scopeflow-graph`` holds a complete Python program
that leaves the thing to draw in a variable named ``picture`` (a graph, a traced function
or a concrete function). At build time the program runs (in its own copy of the context,
so no scope leaks into the next block), its code is shown, and below it the picture:
an SVG rendered by Graphviz's ``dot`` when it is installed, else a Mermaid diagram that
the browser draws. No image is checked in.

Docstrings use Sphinx roles (``:class:`Graph```), which mkdocstrings leaves as text; they
are reduced to plain code spans here.
"""

from __future__ import annotations

import contextvars
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

GRAPH_FENCE = re.compile(r"^( *)```scopeflow-graph\n(.*?)^\1```\n", re.MULTILINE | re.DOTALL)
ROLE = re.compile(r":(?:class|func|meth|attr|mod|exc|data|obj):(<code>)~?(?:[\w.]+\.)?")
XML_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def draw(code: str, where: str) -> str:
    """Markdown for one ``scopeflow-graph`` block: its code, then its picture."""
    from scopeflow import _pictures
    from scopeflow._cli_graph import graph_of

    namespace: dict[str, Any] = {"__name__": "__docs__"}
    contextvars.copy_context().run(exec, compile(code, where, "exec"), namespace)
    if "picture" not in namespace:
        msg = f"{where}: a scopeflow-graph block must set a variable named `picture`"
        raise ValueError(msg)
    graph = graph_of(namespace["picture"], f"`picture` in {where}")
    shown = f"```python\n{code}```\n\n"
    dot = shutil.which("dot")
    if dot is None:
        return f"{shown}```mermaid\n{_pictures.to_mermaid(graph)}```\n"
    svg = subprocess.run(
        [dot, "-Tsvg"], input=_pictures.to_dot(graph), capture_output=True, text=True, check=True
    ).stdout
    svg = XML_PROLOGUE.sub("", svg)
    return f'{shown}<figure class="scopeflow-graph" markdown="0">\n{svg}\n</figure>\n'


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Replace every ``scopeflow-graph`` block of a page with its code and picture."""
    where = str(page.file.src_path)

    def replace(match: re.Match[str]) -> str:
        indent = match.group(1)
        rendered = draw(textwrap.dedent(match.group(2)), where)
        return textwrap.indent(rendered, indent)

    return GRAPH_FENCE.sub(replace, markdown)


def on_page_content(html: str, **_: Any) -> str:
    """``:class:`~scopeflow.errors.X``` in a docstring becomes a plain ``X`` code span."""
    return ROLE.sub(r"\1", html)
