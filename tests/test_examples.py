"""The examples, the README snippets and ``python -m scopeflow`` do what they say.

Scripts run in subprocesses (a fresh interpreter each, warnings as errors) on the same
``scopeflow`` this test session imports.
"""

from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import scopeflow as sf
from scopeflow import __main__ as cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
# The directory holding the imported package, put first on the subprocesses' path.
PACKAGE_PARENT = Path(sf.__file__).resolve().parent.parent

# Lines each example must print (a subset of its output, compared line by line).
EXPECTED_OUTPUT: dict[str, list[str]] = {
    "concurrent_graphs.py": [
        "parent after gather: has_default_graph() = False, name scope ''",
        "small: ops ['x', 'small/weight', 'small/bias', 'small/Mul', 'small/y']",
        "small: y([1.0, 2.0]) = [3.0, 5.0]",
        "medium: y([1.0, 2.0]) = [3.5, 6.5]",
        "large: y([1.0, 2.0]) = [3.0, 7.0]",
        "plain thread pool sees name scope ''",
        "ScopedExecutor sees name scope 'job'",
    ],
    "trio_graphs.py": [
        "parent task after the task group: has_default_graph() = False",
        "task 0: ['task0/tens', 'task0/Const', 'task0/Mul', 'task0/Const_1', 'task0/total'] -> 1.0",
        "task 4: ['task4/tens', 'task4/Const', 'task4/Mul', 'task4/Const_1', 'task4/total']"
        " -> 41.0",
        "every task built its own graph on trio",
    ],
    "init_scope_lifting.py": [
        "table 'embedding/table' landed in the outer graph: True",
        "its control inputs: []",
        "ops of the function graph: ['embedding/start', 'embedding/local']",
        "control inputs of 'local': ['embedding/start']",
        "value from a session on the outer graph: [0.5, 1.5, 2.5]",
        "inside the function graph, executing_eagerly() = False",
        "the table is an eager tensor: True",
        "its value: [0.5, 1.5, 2.5]; doubled eagerly: [1.0, 3.0, 5.0]",
        "ops of the function graph: []",
    ],
    "train_and_export.py": [
        "train step traced 1 time(s) for 60 steps",
        "checkpoint written: ckpt-1 (model and optimizer state)",
        "test accuracy above 0.5: True",
        "reloaded in a fresh process: predictions identical: True",
    ],
    "train_mlp.py": [
        "variables: ['mlp/b1:0', 'mlp/b2:0', 'mlp/w1:0', 'mlp/w2:0']",
        "optimizer steps: 300",
        "train_step traced 1 time(s) for 300 steps",
        "the loss went down on 300 of 300 steps",
        "final loss below 0.05: True",
    ],
    "serving.py": [
        "model loaded: variables ['dense/b:0', 'dense/served:0', 'dense/w:0']",
        "200 requests answered and checked: {'event loop': 67, 'explain': 66, 'worker thread': 67}",
        "calls counted by the model: 201 (the warm-up included)",
        "predict traced 1 time(s), decide traced 1 time(s)",
        "after serving, the server task has name scope ''",
    ],
}


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a fresh interpreter on this test session's scopeflow, warnings as errors."""
    env = dict(os.environ)
    path = [str(PACKAGE_PARENT), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(path)
    return subprocess.run(
        [sys.executable, "-W", "error", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )


# -- examples/ ----------------------------------------------------------------------------


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED_OUTPUT)


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_has_docstring_and_main(name: str) -> None:
    tree = ast.parse((EXAMPLES / name).read_text(encoding="utf-8"))
    assert ast.get_docstring(tree)
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "main" in functions


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_runs(name: str) -> None:
    if name == "trio_graphs.py":
        pytest.importorskip("trio")
    result = run_python(str(EXAMPLES / name))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    missing = [line for line in EXPECTED_OUTPUT[name] if line not in lines]
    assert missing == [], result.stdout


# -- README -------------------------------------------------------------------------------

_FENCE = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def _readme_snippets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return [textwrap.dedent(m.group(2)) for m in _FENCE.finditer(text)]


def test_readme_has_snippets() -> None:
    assert len(_readme_snippets()) >= 1  # the tour; the guides in docs/ hold the rest


@pytest.mark.parametrize("index", range(len(_readme_snippets())))
def test_readme_snippet_prints_what_its_comments_say(index: int, tmp_path: Path) -> None:
    """Each snippet runs; a ``print(...)  # text`` line prints a prefix of ``text``."""
    code = _readme_snippets()[index]
    script = tmp_path / f"snippet_{index}.py"
    script.write_text(code, encoding="utf-8")
    result = run_python(str(script))
    assert result.returncode == 0, f"{code}\n{result.stderr}"
    prints = [line.strip() for line in code.splitlines() if line.strip().startswith("print(")]
    printed = result.stdout.splitlines()
    assert len(printed) == len(prints), result.stdout
    for source, out in zip(prints, printed, strict=True):
        _, sep, comment = source.partition(")  # ")
        if sep:
            assert comment.startswith(out), f"{source!r} printed {out!r}"


def test_readme_quick_start_matches_ci() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None
    demo, test = block.group(1).strip().splitlines()
    assert demo == "python -m pip install -e . && python -m scopeflow demo"
    assert test == 'python -m pip install -e ".[test,serve,ray]" && python -m pytest'
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    assert f"\n{test} || status=$?\n" in ci.read_text(encoding="utf-8")


# -- python -m scopeflow ------------------------------------------------------------------


def test_demo_passes() -> None:
    result = run_python("-m", "scopeflow", "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "FAIL" not in out
    for line in [
        "  ok    200 tasks built 200 distinct graphs",
        "  ok    after every await, each task still saw only its own default graph and name scope",
        "  ok    every graph holds exactly the ops ['x', 'layer/w', 'layer/Mul', 'layer/Const', "
        "'layer/y']",
        "  ok    init_scope lifted constant 'layer/lifted' into the outer graph, keeping its "
        "name scope",
        "  ok    init_scope produced an eager tensor holding [1.0, 2.0, 3.0]",
    ]:
        assert line in out.splitlines(), out
    assert re.search(r"^all \d+ checks passed in \d+\.\d\d s$", out, re.MULTILINE), out


def test_demo_reports_a_failed_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "EXPECTED_OPS", ("x",))
    out = io.StringIO()
    assert cli.run_demo(out) == 1
    text = out.getvalue()
    assert "  FAIL  every graph holds exactly the ops ['x']: first mismatch" in text
    assert re.search(r"^1 of \d+ checks FAILED", text, re.MULTILINE), text


def test_demo_counts_an_exception_as_a_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(checks: cli.Checks) -> None:
        msg = "boom"
        raise RuntimeError(msg)

    monkeypatch.setattr(cli, "_check_init_scope_into_eager", broken)
    out = io.StringIO()
    assert cli.run_demo(out) == 1
    assert "ran to the end: RuntimeError: boom" in out.getvalue()
    assert "Traceback" in capsys.readouterr().err


def test_no_command_prints_usage_and_exits_2() -> None:
    result = run_python("-m", "scopeflow")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: python -m scopeflow <command>")
    assert result.stdout == ""


@pytest.mark.parametrize("argv", [["bogus"], ["demo", "extra"], ["--demo"]])
def test_unknown_command_prints_usage_and_returns_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"unknown command {' '.join(argv)!r}" in captured.err
    assert "usage: python -m scopeflow <command>" in captured.err


def test_help_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: python -m scopeflow <command>")
