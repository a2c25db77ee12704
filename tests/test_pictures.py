"""Graph pictures: ``Graph.to_dot``, ``Graph.to_mermaid`` and ``python -m scopeflow graph``."""

from __future__ import annotations

import re
import shutil
import sys
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
    assert cli.main(["graph", target.format(mod=target_module)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.match(rf"^scopeflow graph: {message}", captured.err), captured.err


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
