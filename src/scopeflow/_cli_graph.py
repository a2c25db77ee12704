"""``python -m scopeflow graph``: draw a graph, a traced function or a saved model.

The target is ``MODULE:ATTR`` (``MODULE`` a module name or a ``.py`` file, ``ATTR`` a
dotted attribute path) naming an :class:`~scopeflow.Graph`, a
:class:`~scopeflow.ConcreteFunction`, an ``sf.function`` (with an ``input_signature``, or
called at least once) or a zero-argument callable returning one of those; or the
directory of a saved model. The picture goes to ``-o OUT`` (see ``_pictures.render``), or
to stdout as DOT text.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Final

import scopeflow as sf

from ._pictures import render, to_dot, to_mermaid

__all__ = ["graph_command"]

DESCRIPTION: Final = """\
Draw a graph as Graphviz DOT or Mermaid text, or render it with Graphviz.

TARGET is MODULE:ATTR (MODULE a module name or a .py file, ATTR a dotted attribute)
naming an sf.Graph, a ConcreteFunction, an sf.function (with an input_signature, or
called once already), a module whose __call__ is one, or a zero-argument function
returning one of these; or the directory of a
saved model (its signature --signature, by default serving_default or the first one).
With -o OUT.svg (or .png, .pdf) the picture is rendered by Graphviz's `dot` when it is
installed; otherwise the DOT text is written to OUT.dot and a note says so. With -o
OUT.dot or OUT.mmd the text is written; without -o the DOT text goes to stdout.
"""


class TargetError(Exception):
    """The command line names nothing that can be drawn."""


def _load_module(spec: str) -> Any:
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = Path(spec)
        if not path.is_file():
            msg = f"no such file: {spec!r}"
            raise TargetError(msg)
        # Registered in sys.modules while it runs, as `import` would (dataclasses and
        # pickling look the module up there), under a name that shadows no loaded module.
        name = path.stem if path.stem not in sys.modules else f"_scopeflow_graph_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            msg = f"cannot import {spec!r} as a Python module"
            raise TargetError(msg)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:  # the user's module failed: say how, without a traceback
            del sys.modules[name]
            msg = f"running {spec!r} raised {_brief(err)}"
            raise TargetError(msg) from None
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as err:
        msg = f"cannot import module {spec!r}: {err}"
        raise TargetError(msg) from None
    except Exception as err:  # a relative name, or the module itself failed
        msg = f"cannot import module {spec!r}: {_brief(err)}"
        raise TargetError(msg) from None


def _brief(err: BaseException) -> str:
    """``Type: message`` of an exception raised by the user's code."""
    return f"{type(err).__name__}: {err}"


def _saved_model(path: Path, signature: str | None) -> Any:
    try:
        loaded = sf.saved_model.load(path)
    except (OSError, ValueError) as err:  # not a saved model, or a damaged one
        msg = f"{str(path)!r} is a directory but not a loadable saved model: {err}"
        raise TargetError(msg) from None
    names = sorted(loaded.signatures)
    if signature is None:
        if not names:
            msg = f"the saved model in {str(path)!r} has no signatures to draw"
            raise TargetError(msg)
        signature = "serving_default" if "serving_default" in names else names[0]
    if signature not in loaded.signatures:
        msg = f"the saved model in {str(path)!r} has no signature {signature!r}; it has {names}"
        raise TargetError(msg)
    return loaded.signatures[signature]


def graph_of(obj: Any, what: str) -> sf.Graph:
    """The graph to draw for ``obj`` (see the module docstring)."""
    for _ in range(3):  # a callable may return a function, which has a graph
        if isinstance(obj, sf.Graph):
            return obj
        if isinstance(obj, sf.ConcreteFunction):
            return obj.graph
        concrete = getattr(obj, "concrete", None)  # a saved model's loaded function
        if isinstance(concrete, sf.ConcreteFunction):
            return concrete.graph
        bound_call = getattr(obj, "__call__", None)  # noqa: B004 (the bound method itself)
        if not isinstance(obj, sf.Function) and isinstance(bound_call, sf.Function):
            obj = bound_call  # a module whose __call__ is an sf.function: draw that
            continue
        if isinstance(obj, sf.Function):
            if obj.input_signature is not None:
                try:
                    return obj.get_concrete_function().graph
                except Exception as err:
                    msg = f"tracing {what} ({obj!r}) raised {_brief(err)}"
                    raise TargetError(msg) from None
            traces = list(obj._eager_cache.traces.values())
            if not traces:
                msg = (
                    f"{what} is {obj!r}, which has no input_signature and was never called "
                    f"from eager code; call it once in the module, or give it an "
                    f"input_signature"
                )
                raise TargetError(msg)
            return traces[-1].graph
        if callable(obj):
            try:
                inspect.signature(obj).bind()
            except TypeError as err:  # it needs arguments: it is not a graph builder
                msg = (
                    f"{what} is {obj!r}, which cannot be called without arguments ({err}); "
                    f"name an sf.Graph, a ConcreteFunction, an sf.function or a "
                    f"zero-argument function returning one"
                )
                raise TargetError(msg) from None
            except ValueError:  # no signature to check (some builtins): just call it
                pass
            try:
                obj = obj()
            except Exception as err:
                msg = f"{what} was called to get a graph and raised {_brief(err)}"
                raise TargetError(msg) from None
            continue
        break
    msg = (
        f"{what} is {obj!r}; expected an sf.Graph, a ConcreteFunction, an sf.function or "
        f"a zero-argument function returning one"
    )
    raise TargetError(msg)


def resolve(target: str, signature: str | None = None) -> sf.Graph:
    """The graph named by ``target`` (``MODULE:ATTR`` or a saved-model directory)."""
    path = Path(target)
    if path.is_dir():
        return graph_of(_saved_model(path, signature), f"signature of {target!r}")
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        msg = f"expected MODULE:ATTR or a saved-model directory, got {target!r}"
        raise TargetError(msg)
    obj = _load_module(module_name)
    owner, done = module_name, []
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            msg = f"{owner!r} has no attribute {part!r}"
            raise TargetError(msg) from None
        done.append(part)
        owner = f"{module_name}:{'.'.join(done)}"
    return graph_of(obj, target)


def graph_command(argv: list[str]) -> int:
    """Run ``python -m scopeflow graph ARGV``; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m scopeflow graph",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", metavar="TARGET", help="MODULE:ATTR or a saved-model directory")
    parser.add_argument("-o", "--output", type=Path, help="write here (.svg .png .pdf .dot .mmd)")
    parser.add_argument("--mermaid", action="store_true", help="print Mermaid text, not DOT")
    parser.add_argument("--signature", help="the signature of a saved model to draw")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        graph = resolve(args.target, args.signature)
    except TargetError as err:
        print(f"scopeflow graph: {err}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(to_mermaid(graph) if args.mermaid else to_dot(graph))
        return 0
    out: Path = args.output
    try:
        if args.mermaid and out.suffix.lower() != ".mmd":
            out.write_text(to_mermaid(graph), encoding="utf-8")
            note = f"wrote Mermaid text to {out}"
        else:
            note = render(graph, out)
    except (OSError, RuntimeError) as err:
        print(f"scopeflow graph: {err}", file=sys.stderr)
        return 1
    print(note, file=sys.stderr)
    return 0
