"""Graph pictures: ``Graph.to_dot``, ``Graph.to_mermaid`` and ``python -m scopeflow graph``."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import scopeflow as sf
from scopeflow import __main__ as cli

NODE = re.compile(r'^\s*(g\d+_\d+) \[label="([^"\\]*(?:\\.[^"\\]*)*)"')


def _nodes(dot: str) -> dict[str, str]:
    """Node id -> label (with DOT's ``\\n`` kept as two characters)."""
    return {m.group(1): m.group(2) for m in map(NODE.match, dot.splitlines()) if m}


def _node(dot: str, op_type: str, name: str) -> str:
    wanted = f"{op_type}\\n{name}"
    found = [node for node, label in _nodes(dot).items() if label == wanted]
    assert len(found) == 1, (wanted, dot)
    return found[0]


def _layer_graph() -> tuple[sf.Graph, sf.Tensor]:
    g = sf.Graph("model")
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(None, 2), name="x")
        with sf.name_scope("layer"):
            w = sf.constant([[1.0], [2.0]], name="w")
            with sf.name_scope("inner"):
                y = sf.matmul(x, w, name="y")
        with sf.control_dependencies([y]):
            done = sf.no_op(name="done")
    return g, done  # type: ignore[return-value]


def test_dot_labels_ops_with_type_and_name_and_edges_with_shapes() -> None:
    g, _ = _layer_graph()
    dot = g.to_dot()
    assert dot.startswith('digraph "model" {\n')
    assert dot.endswith("}\n")
    x = _node(dot, "Placeholder", "x")
    w = _node(dot, "Const", "layer/w")
    y = _node(dot, "MatMul", "layer/inner/y")
    done = _node(dot, "NoOp", "done")
    assert f'  {x} -> {y} [label="float32 (None, 2)"];' in dot.splitlines()
    assert f'  {w} -> {y} [label="float32 (2, 1)"];' in dot.splitlines()
    assert f"  {y} -> {done} [style=dashed];" in dot.splitlines()
    assert len(_nodes(dot)) == len(g.get_operations())


def test_dot_draws_name_scopes_as_nested_clusters() -> None:
    g, _ = _layer_graph()
    lines = g.to_dot().splitlines()
    outer = lines.index('  subgraph "cluster_g0_layer" {')
    inner = lines.index('    subgraph "cluster_g0_layer/inner" {')
    assert outer < inner
    assert lines[outer + 1] == '    label="layer"; style="dashed";'
    assert lines[inner + 1] == '      label="layer/inner"; style="dashed";'
    # The op of the inner scope sits inside the inner cluster, "x" in no cluster.
    assert re.match(r'^      g0_\d+ \[label="MatMul\\nlayer/inner/y"\];$', lines[inner + 2])
    assert re.search(
        r'^  g0_\d+ \[label="Placeholder\\nx", shape=ellipse\];$', "\n".join(lines), re.M
    )


def test_dot_links_call_ops_to_their_function_graphs() -> None:
    @sf.function
    def double(x):
        return x * 2.0

    concrete = double.get_concrete_function(sf.TensorSpec((3,), sf.float32))
    g = sf.Graph("caller")
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(3,), name="x")
        concrete(x)
    dot = g.to_dot()
    call = _node(dot, "PartitionedCall", "double")
    assert re.search(
        rf'^  {call} -> (g\d+)_fn \[style=dotted, arrowhead=empty, label="f"\];$', dot, re.M
    )
    assert '  subgraph "cluster_g1" {' in dot.splitlines()
    assert '    label="function graph double"; style="rounded,filled"; fillcolor="#eef4fb";' in (
        dot.splitlines()
    )
    assert '    g1_fn [label="double", shape=note];' in dot.splitlines()
    # The function graph's own ops are drawn once, inside its box.
    assert sum(1 for label in _nodes(dot).values() if label == "Mul\\nMul") == 1
    # ConcreteFunction.graph is a graph like any other.
    assert concrete.graph.to_dot().startswith('digraph "double" {')


def test_dot_links_if_and_while_to_branch_and_loop_graphs() -> None:
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.bool_, shape=(), name="p")
        sf.cond(p, lambda: sf.constant(1.0), lambda: sf.constant(2.0), name="pick")
        sf.while_loop(lambda i: i < 3, lambda i: (i + 1,), [0], name="loop")
    dot = g.to_dot()
    links = re.findall(r'-> (g\d+)_fn \[style=dotted, arrowhead=empty, label="(\w+)"\]', dot)
    assert sorted(key for _, key in links) == ["body", "cond", "else", "then"]
    assert len({target for target, _ in links}) == 4
    for target, _ in links:
        assert f'  subgraph "cluster_{target}" {{' in dot.splitlines()


def test_dot_draws_a_shared_function_graph_once() -> None:
    @sf.function
    def inc(x):
        return x + 1.0

    concrete = inc.get_concrete_function(sf.TensorSpec((), sf.float32))
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(), name="x")
        concrete(concrete(x))
    dot = g.to_dot()
    assert dot.count('subgraph "cluster_g1"') == 1
    assert "cluster_g2" not in dot
    assert len(re.findall(r"-> g1_fn ", dot)) == 2


def test_dot_quotes_names_and_handles_an_empty_graph() -> None:
    g = sf.Graph('say "hi"\\')
    assert g.to_dot().startswith('digraph "say \\"hi\\"\\\\" {')
    assert g.to_mermaid() == "flowchart TD\n"


def test_dot_of_a_deep_graph_does_not_recurse() -> None:
    g = sf.Graph()
    with g.as_default():
        t = sf.placeholder(sf.float32, shape=(), name="x")
        for _ in range(sys.getrecursionlimit() + 100):
            t = sf.negative(t)
    assert len(_nodes(g.to_dot())) == len(g.get_operations())


def test_unknown_rank_is_labelled_unknown() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, name="x")
        sf.identity(x, name="y")
    assert 'label="float32 <unknown>"' in g.to_dot()


def test_mermaid_escapes_html_and_entity_characters() -> None:
    # Mermaid reads labels as HTML: "<unknown>" would vanish as a tag, "#" start an entity.
    f = sf.function(lambda x: x * 2.0)
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, name="a>b\\c")
        f(sf.identity(x, name="y"))
    text = g.to_mermaid()
    assert '-->|"float32 #lt;unknown#gt;"|' in text
    assert re.search(r'^  g0_0\(\["Placeholder<br/>a#gt;b\\c"\]\)$', text, re.M)
    assert re.search(r'^  subgraph g1 \["function graph #lt;lambda#gt;"\]$', text, re.M)
    assert sf.Graph('a "#1" & <b>').to_mermaid() == "flowchart TD\n"

    def negate(x: sf.Tensor) -> sf.Tensor:
        return -x

    negate.__name__ = "two\r\nlines\u2028three"  # every line break stays in its label
    outer = sf.Graph()
    with outer.as_default():
        sf.function(negate)(sf.constant(1.0))
    lines = outer.to_mermaid()
    assert "function graph two<br/>lines<br/>three" in lines
    assert all(line.startswith("  ") for line in lines.splitlines()[1:])
    h = sf.Graph()
    with h.as_default(), sf.name_scope("s"):
        sf.constant(1.0, name="c")
    # Only the label text is escaped; the markup around it stays.
    assert '["Const<br/>s/c"]' in h.to_mermaid()


def test_pictures_of_deeply_nested_name_scopes_do_not_recurse() -> None:
    depth = sys.getrecursionlimit() + 50
    g = sf.Graph()
    with g.as_default(), contextlib.ExitStack() as stack:
        for _ in range(depth):
            stack.enter_context(sf.name_scope("s"))
        sf.constant(1.0, name="c")
    dot = g.to_dot()
    assert dot.count("subgraph ") == depth
    closing = [line for line in dot.splitlines() if line.strip() == "}"]
    assert len(closing) == depth + 1  # every cluster, then the digraph
    op_line = " " * (2 * depth + 2) + 'g0_0 [label="Const\\n' + "s/" * depth + 'c"];'
    assert op_line in dot.splitlines()
    assert g.to_mermaid().count("subgraph ") == depth


def test_pictures_of_a_large_graph_are_fast_and_deterministic() -> None:
    g = sf.Graph()
    with g.as_default():
        t = sf.placeholder(sf.float32, shape=(None, 3), name="x")
        for i in range(10_000):
            with sf.name_scope(f"s{i % 50}"):
                t = sf.negative(t)
    start = time.perf_counter()
    dot = g.to_dot()
    mermaid = g.to_mermaid()
    assert time.perf_counter() - start < 10.0  # about 1 s on a slow shared machine
    assert len(_nodes(dot)) == 10_001
    assert g.to_dot() == dot
    assert g.to_mermaid() == mermaid


def test_dot_of_tricky_names_is_accepted_by_graphviz(tmp_path: Path) -> None:
    g = sf.Graph('quote " back \\ é <b> ' + "x" * 500)
    with g.as_default(), sf.name_scope("sc\\ope>1"):
        x = sf.placeholder(sf.float32, name="a>b\\")
        sf.identity(x, name="z" * 300)
    dot = g.to_dot()
    assert dot.startswith('digraph "quote \\" back \\\\ é <b> x')
    assert _node(dot, "Placeholder", "sc\\\\ope>1/a>b\\\\")
    exe = shutil.which("dot")
    if exe is not None:  # Graphviz parses it and keeps every label
        out = subprocess.run(
            [exe, "-Tcanon"], input=dot, capture_output=True, text=True, check=True
        ).stdout
        assert "a>b" in out
        assert "z" * 300 in out


def test_mermaid_has_nodes_edges_scopes_and_function_boxes() -> None:
    g, _ = _layer_graph()
    text = g.to_mermaid()
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert re.search(r'^  g0_\d+\(\["Placeholder<br/>x"\]\)$', text, re.M)
    assert re.search(r'^  subgraph g0_s\d+_0 \["layer"\]$', text, re.M)
    assert re.search(r'^    subgraph g0_s\d+_0 \["layer/inner"\]$', text, re.M)
    assert re.search(r'^  g0_\d+ -->\|"float32 \(2, 1\)"\| g0_\d+$', text, re.M)
    assert re.search(r"^  g0_\d+ -.-> g0_\d+$", text, re.M)
    assert text.count("subgraph") == text.count("\n  end") + text.count("\n    end")

    h = sf.Graph()
    with h.as_default():
        sf.cond(sf.placeholder(sf.bool_, shape=()), lambda: 1.0, lambda: 2.0, name="c")
    text = h.to_mermaid()
    assert re.search(r'^  g0_\d+ -.->\|"then"\| g\d+_fn$', text, re.M)
    assert re.search(r'^  subgraph g\d+ \["function graph c_true"\]$', text, re.M)


# -- python -m scopeflow graph --------------------------------------------------------------

MODULE = """\
import scopeflow as sf

g = sf.Graph("picture")
with g.as_default():
    y = sf.add(sf.constant(1.0, name="a"), 2.0, name="y")

@sf.function(input_signature=[sf.TensorSpec((None,), sf.float32)])
def signed(x):
    return x * 2.0

@sf.function
def untraced(x):
    return x

@sf.function
def called(x):
    return -x

called(sf.constant(1.0))

def build():
    return g
"""


@pytest.fixture
def target_module(tmp_path: Path) -> Path:
    path = tmp_path / "pictured.py"
    path.write_text(MODULE, encoding="utf-8")
    return path


def test_graph_command_prints_dot(target_module: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for attr, title in [
        ("g", "picture"),
        ("signed", "signed"),
        ("called", "called"),
        ("build", "picture"),
    ]:
        assert cli.main(["graph", f"{target_module}:{attr}"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f'digraph "{title}" {{'), out


def test_graph_command_writes_mermaid(
    target_module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "g.mmd"
    assert cli.main(["graph", f"{target_module}:g", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("flowchart TD\n")
    assert capsys.readouterr().err == f"wrote Mermaid text to {out}\n"
    assert cli.main(["graph", f"{target_module}:g", "--mermaid"]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD\n")


def test_graph_command_renders_svg_or_says_it_wrote_dot(
    target_module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "g.svg"
    assert cli.main(["graph", f"{target_module}:g", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    if shutil.which("dot") is not None:
        assert err == f"rendered {out} with Graphviz\n"
        svg = out.read_text(encoding="utf-8")
        assert "<svg" in svg
        assert "Add" in svg
    else:
        assert err.startswith("Graphviz is not installed (no `dot` on PATH)")
        assert out.with_suffix(".dot").read_text(encoding="utf-8").startswith("digraph")


def test_graph_command_without_graphviz_writes_dot_and_says_so(
    target_module: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "g.svg"
    assert cli.main(["graph", f"{target_module}:g", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert re.match(
        rf"^Graphviz is not installed \(no `dot` on PATH\), so {re.escape(str(out))} was not "
        rf"rendered; wrote DOT text to {re.escape(str(out.with_suffix('.dot')))} instead",
        err,
    )
    assert not out.exists()
    assert out.with_suffix(".dot").read_text(encoding="utf-8").startswith('digraph "picture"')


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", r"expected MODULE:ATTR or a saved-model directory, got 'no_colon'"),
        ("scopeflow_no_such_module:x", r"cannot import module 'scopeflow_no_such_module'"),
        ("{mod}:missing", r"'.*pictured\.py' has no attribute 'missing'"),
        (
            "{mod}:untraced",
            r".*has no input_signature and was never called from eager code; call it once",
        ),
        ("{mod}:MODULE_CONSTANT", r".*expected an sf\.Graph, a ConcreteFunction"),
        ("missing_file.py:g", r"no such file: 'missing_file\.py'"),
        ("{mod}:g.nope", r"'.*pictured\.py:g' has no attribute 'nope'$"),
        (".relative:g", r"cannot import module '\.relative': TypeError: "),
        (
            "{mod}:needs_args",
            r".*:needs_args is <function needs_args .*>, which cannot be called without "
            r"arguments \(missing a required argument: 'x'\); name an sf\.Graph",
        ),
        ("{mod}:fails", r".*:fails was called to get a graph and raised RuntimeError: inner$"),
    ],
)
def test_graph_command_reports_bad_targets(
    target: str,
    message: str,
    target_module: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with target_module.open("a", encoding="utf-8") as f:
        f.write("MODULE_CONSTANT = 3\n")
        f.write("def needs_args(x):\n    return x\n")
        f.write("def fails():\n    raise RuntimeError('inner')\n")
    assert cli.main(["graph", target.format(mod=target_module)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.match(rf"^scopeflow graph: {message}", captured.err), captured.err


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = (\n", r"SyntaxError: '\(' was never closed \(broken\.py, line 1\)"),
        ("raise ValueError('boom at import')\n", r"ValueError: boom at import"),
        ("import scopeflow_no_such_dependency\n", r"ModuleNotFoundError: No module named "),
    ],
)
def test_graph_command_reports_a_module_that_fails_to_run(
    source: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.py"
    path.write_text(source, encoding="utf-8")
    assert cli.main(["graph", f"{path}:g"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.match(rf"^scopeflow graph: running '.*broken\.py' raised {message}", captured.err)
    assert "Traceback" not in captured.err
    assert "broken" not in sys.modules


def test_graph_command_runs_a_file_with_dataclasses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A dataclass looks its module up in sys.modules while the file runs.
    path = tmp_path / "with_dataclass.py"
    path.write_text(
        "import dataclasses\nimport scopeflow as sf\n\n"
        "@dataclasses.dataclass\nclass Config:\n    scale: float = 2.0\n\n"
        "g = sf.Graph('dc')\nwith g.as_default():\n    sf.constant(Config().scale)\n",
        encoding="utf-8",
    )
    assert cli.main(["graph", f"{path}:g"]) == 0
    assert capsys.readouterr().out.startswith('digraph "dc" {')


def test_graph_command_draws_a_module_through_its_traced_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "with_module.py"
    path.write_text(
        "import scopeflow as sf\n\n"
        "class Scale(sf.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.w = sf.Variable(2.0, name='w')\n\n"
        "    @sf.function(input_signature=[sf.TensorSpec((None,), sf.float32)])\n"
        "    def __call__(self, x):\n"
        "        return x * self.w\n\n"
        "model = Scale()\n",
        encoding="utf-8",
    )
    assert cli.main(["graph", f"{path}:model"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('digraph "__call__" {')
    assert _node(dot, "Mul", "Mul")
    assert _node(dot, "ReadVariableOp", "ReadVariableOp")


def test_graph_command_help_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["graph", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: python -m scopeflow graph")
    assert cli.main(["graph"]) == 2
    assert "the following arguments are required: TARGET" in capsys.readouterr().err


def test_demo_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: python -m scopeflow demo\n")
    assert cli.main(["--help"]) == 0
    assert "  graph   draw a graph" in capsys.readouterr().out


def test_graph_command_reports_an_unwritable_output(
    target_module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "no_such_dir" / "g.dot"
    assert cli.main(["graph", f"{target_module}:g", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert re.match(r"^scopeflow graph: \[Errno 2\] No such file or directory", err), err
    assert "Traceback" not in err
    # --mermaid with an output that is not .mmd writes Mermaid text: the same handling.
    out = tmp_path / "no_such_dir" / "g.txt"
    assert cli.main(["graph", f"{target_module}:g", "--mermaid", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert re.match(r"^scopeflow graph: \[Errno 2\] No such file or directory", err), err


def _save_scale_model(path: Path) -> None:
    class Scale(sf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = sf.Variable(2.0, name="w")

        @sf.function(input_signature=[sf.TensorSpec((None,), sf.float32, name="x")])
        def __call__(self, x: sf.Tensor) -> sf.Tensor:
            with sf.name_scope("scaled"):
                return x * self.w

    sf.saved_model.save(Scale(), str(path))


def test_graph_command_draws_a_saved_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scale"
    _save_scale_model(path)
    assert cli.main(["graph", str(path)]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph ")
    assert re.search(r'\[label="Mul\\nscaled/mul"\]|\[label="Mul\\nscaled/Mul"\]', dot), dot
    assert cli.main(["graph", str(path), "--signature", "__call__", "--mermaid"]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD\n")
    assert cli.main(["graph", str(path), "--signature", "nope"]) == 2
    err = capsys.readouterr().err
    assert re.match(
        r"^scopeflow graph: the saved model in '.*scale' has no signature 'nope'; "
        r"it has \['__call__'\]",
        err,
    ), err


def test_graph_command_reports_a_directory_that_is_no_saved_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["graph", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert re.match(
        rf"^scopeflow graph: {re.escape(repr(str(tmp_path)))} is a directory but not a loadable "
        r"saved model: Cannot read '.*saved_model\.json'",
        err,
    ), err
