"""Graph pictures: Graphviz DOT and Mermaid text for a graph and its function graphs.

Both writers share one walk (:func:`_layout`): the graph's ops in creation order, grouped
by name scope, then every function graph an op refers to through an attribute (the
function of a call op, the branches of ``If``, the condition and body of ``While``), each
drawn once, as its own box, linked from the ops that use it. The walk is iterative and
ordered, so the text is deterministic and deep nesting cannot hit the recursion limit.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._concrete import ConcreteFunction
    from ._graph import Graph, Operation

__all__ = ["render", "to_dot", "to_mermaid"]


@dataclass
class _Scope:
    """A name scope of one drawn graph: its ops and nested scopes, in creation order."""

    path: str
    ops: list[str] = field(default_factory=list)
    children: dict[str, _Scope] = field(default_factory=dict)


@dataclass
class _Drawn:
    """One graph to draw: an id prefix, a title, its scope tree, edges and links."""

    prefix: str
    name: str
    title: str
    root: _Scope
    labels: dict[str, tuple[str, str]]  # node id -> (op type, op name)
    data: list[tuple[str, str, str]]  # (from, to, tensor label)
    control: list[tuple[str, str]]
    links: list[tuple[str, str, str]]  # (call op node, function graph prefix, attribute)


def _shape_label(dtype: object, shape: tuple[int | None, ...] | None) -> str:
    dims = (
        "<unknown>"
        if shape is None
        else "(" + ", ".join(map(str, shape)) + (",)" if len(shape) == 1 else ")")
    )
    return f"{dtype} {dims}"


def _functions_of(op: Operation, concrete_type: type[ConcreteFunction]) -> list[tuple[str, Graph]]:
    """(attribute, function graph) for each traced function the op refers to."""
    found: list[tuple[str, Graph]] = []
    for key, value in op._attrs.items():
        values = value if isinstance(value, (list, tuple)) else (value,)
        found.extend((key, v.graph) for v in values if isinstance(v, concrete_type))
    return found


def _layout(graph: Graph) -> list[_Drawn]:
    from ._concrete import ConcreteFunction  # imported late: it imports the op layer

    drawn: list[_Drawn] = []
    # Edge labels repeat: format each (dtype, shape) once (str() of a dtype is slow).
    shape_labels: dict[tuple[object, object], str] = {}
    prefixes: dict[int, str] = {id(graph): "g0"}
    todo: list[Graph] = [graph]
    while todo:
        g = todo.pop(0)
        prefix = prefixes[id(g)]
        kind = "function graph" if g.building_function else "graph"
        item = _Drawn(prefix, g.name, f"{kind} {g.name}", _Scope(""), {}, [], [], [])
        ops = g.get_operations()
        ids = {id(op): f"{prefix}_{i}" for i, op in enumerate(ops)}
        for op in ops:
            node = ids[id(op)]
            item.labels[node] = (op.type, op.name)
            scope = item.root
            parts = op.name.split("/")[:-1]
            for depth in range(len(parts)):
                path = "/".join(parts[: depth + 1])
                scope = scope.children.setdefault(path, _Scope(path))
            scope.ops.append(node)
            for t in op.inputs:
                src = ids.get(id(t._op))
                if src is not None:
                    key = (t._dtype, t._shape)
                    label = shape_labels.get(key)
                    if label is None:
                        label = shape_labels[key] = _shape_label(t._dtype, t._shape)
                    item.data.append((src, node, label))
            for c in op.control_inputs:
                src = ids.get(id(c))
                if src is not None:
                    item.control.append((src, node))
            for attr, fn_graph in _functions_of(op, ConcreteFunction):
                if id(fn_graph) not in prefixes:
                    prefixes[id(fn_graph)] = f"g{len(prefixes)}"
                    todo.append(fn_graph)
                item.links.append((node, prefixes[id(fn_graph)], attr))
        drawn.append(item)
    return drawn


def _walk(root: _Scope) -> Iterator[tuple[int, str | _Scope | None, int]]:
    """The scope tree in drawing order, without recursion (scopes nest arbitrarily deep).

    Yields ``(depth, node id, 0)`` for an op, ``(depth, scope, i)`` when the ``i``-th child
    scope opens (its contents follow at ``depth + 1``) and ``(depth, None, 0)`` when it
    closes; ``depth`` is 0 for the root's contents.
    """
    yield from ((0, node, 0) for node in root.ops)
    stack = [(0, enumerate(root.children.values()))]
    while stack:
        depth, children = stack[-1]
        step = next(children, None)
        if step is None:
            stack.pop()
            if stack:
                yield depth - 1, None, 0
            continue
        i, child = step
        yield depth, child, i
        yield from ((depth + 1, node, 0) for node in child.ops)
        stack.append((depth + 1, enumerate(child.children.values())))


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph) -> str:
    """Graphviz DOT text for ``graph`` (see :meth:`Graph.to_dot`)."""
    lines = [
        f"digraph {_dot_quote(graph.name)} {{",
        "  rankdir=TB;",
        '  graph [fontname="Helvetica"];',
        '  node [shape=box, style="rounded,filled", fillcolor="#f5f5f5", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]

    def scope_lines(item: _Drawn, indent: str) -> None:
        for depth, what, _ in _walk(item.root):
            pad = indent + "  " * depth
            if isinstance(what, str):
                op_type, name = item.labels[what]
                shape = ", shape=ellipse" if op_type == "Placeholder" else ""
                label = _dot_quote(op_type + "\n" + name)
                lines.append(f"{pad}{what} [label={label}{shape}];")
            elif what is not None:
                cluster = _dot_quote(f"cluster_{item.prefix}_{what.path}")
                lines.append(f"{pad}subgraph {cluster} {{")
                lines.append(f'{pad}  label={_dot_quote(what.path)}; style="dashed";')
            else:
                lines.append(f"{pad}}}")

    for n, item in enumerate(_layout(graph)):
        if n == 0:
            scope_lines(item, "  ")
        else:
            lines.append(f"  subgraph {_dot_quote('cluster_' + item.prefix)} {{")
            lines.append(
                f'    label={_dot_quote(item.title)}; style="rounded,filled"; fillcolor="#eef4fb";'
            )
            lines.append(f"    {item.prefix}_fn [label={_dot_quote(item.name)}, shape=note];")
            scope_lines(item, "    ")
            lines.append("  }")
        for src, dst, label in item.data:
            lines.append(f"  {src} -> {dst} [label={_dot_quote(label)}];")
        for src, dst in item.control:
            lines.append(f"  {src} -> {dst} [style=dashed];")
        for src, target, key in item.links:
            lines.append(
                f"  {src} -> {target}_fn [style=dotted, arrowhead=empty, label={_dot_quote(key)}];"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


# Mermaid reads label text as HTML and decodes ``#code;`` entities, so these characters
# go in as entity codes: otherwise ``<unknown>`` would vanish as a tag and a ``#`` could
# start an entity.
_MERMAID_ESCAPES: Final = str.maketrans(
    {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "|": "#124;", "`": "#96;"}
)


def _mermaid_text(text: str) -> str:
    # Every line break (also \r, \u2028, ...) becomes <br/>: a raw one would end the statement.
    return '"' + "<br/>".join(text.translate(_MERMAID_ESCAPES).splitlines()) + '"'


def to_mermaid(graph: Graph) -> str:
    """Mermaid flowchart text for ``graph`` (see :meth:`Graph.to_mermaid`)."""
    lines = ["flowchart TD"]

    def scope_lines(item: _Drawn, indent: str) -> None:
        for depth, what, i in _walk(item.root):
            pad = indent + "  " * depth
            if isinstance(what, str):
                op_type, name = item.labels[what]
                text = _mermaid_text(op_type + "\n" + name)
                lines.append(f"{pad}{what}([{text}])" if op_type == "Placeholder" else
                             f"{pad}{what}[{text}]")  # fmt: skip
            elif what is not None:
                sub = f"{item.prefix}_s{len(lines)}_{i}"
                lines.append(f"{pad}subgraph {sub} [{_mermaid_text(what.path)}]")
            else:
                lines.append(f"{pad}end")

    for n, item in enumerate(_layout(graph)):
        if n == 0:
            scope_lines(item, "  ")
        else:
            lines.append(f"  subgraph {item.prefix} [{_mermaid_text(item.title)}]")
            lines.append(f"    {item.prefix}_fn>{_mermaid_text(item.name)}]")
            scope_lines(item, "    ")
            lines.append("  end")
        for src, dst, label in item.data:
            lines.append(f"  {src} -->|{_mermaid_text(label)}| {dst}")
        for src, dst in item.control:
            lines.append(f"  {src} -.-> {dst}")
        for src, target, key in item.links:
            lines.append(f"  {src} -.->|{_mermaid_text(key)}| {target}_fn")
    return "\n".join(lines) + "\n"


def render(graph: Graph, out: Path) -> str:
    """Write a picture of ``graph`` to ``out``; return a line saying what was written.

    ``.dot``/``.gv`` get DOT text and ``.mmd`` Mermaid text. Any other suffix is a
    Graphviz output format (``.svg``, ``.png``, ``.pdf``) rendered by the ``dot`` binary
    when it is on ``PATH``; without it, the DOT text goes next to ``out`` with the suffix
    ``.dot`` instead, and the returned line says so.

    Raises:
        RuntimeError: ``dot`` failed on the graph.
    """
    suffix = out.suffix.lower()
    if suffix == ".mmd":
        out.write_text(to_mermaid(graph), encoding="utf-8")
        return f"wrote Mermaid text to {out}"
    dot_text = to_dot(graph)
    if suffix in (".dot", ".gv", ""):
        out.write_text(dot_text, encoding="utf-8")
        return f"wrote DOT text to {out}"
    dot = shutil.which("dot")
    if dot is None:
        fallback = out.with_suffix(".dot")
        fallback.write_text(dot_text, encoding="utf-8")
        return (
            f"Graphviz is not installed (no `dot` on PATH), so {out} was not rendered; "
            f"wrote DOT text to {fallback} instead (render it with `dot -T{suffix[1:]}`, or "
            f"install Graphviz, e.g. `apt-get install graphviz`)"
        )
    result = subprocess.run(
        [dot, f"-T{suffix[1:]}", "-o", str(out)],
        input=dot_text,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        msg = f"Graphviz `dot -T{suffix[1:]}` failed on {graph!r}: {result.stderr.strip()}"
        raise RuntimeError(msg)
    return f"rendered {out} with Graphviz"
