"""Command-line plumbing shared by every script: run_cli (user errors as one line and exit code 2),
argparse with one-line errors, options generated from a dataclass of hyperparameters (each field's
type, default and the docstring under it), and argument types."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import textwrap
import typing

from memeplex.errors import CheckpointError, UsageError


def run_cli(main, argv=None) -> int:
    """Run a script's main(): user errors become one line on stderr + exit 2."""
    try:
        return main(argv) or 0
    except (UsageError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse with errors as one line on stderr (and exit code 2), not the usage block."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def add_dataclass_arguments(parser, cls, skip=()) -> None:
    """One option per field of a dataclass of hyperparameters, each defined once: --field-name with
    the field's type and default, and its help from the docstring under the field (CleanRL's Args
    style). bool fields get --x/--no-x, tuple fields take several values, Literal fields their choices."""
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = hints[f.name]
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        kw = {"default": default, "help": docs.get(f.name, "").replace("%", "%%")}
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is typing.Literal:
            kw["choices"] = typing.get_args(kind)
        elif typing.get_origin(kind) is tuple:
            kw.update(nargs="+", type=typing.get_args(kind)[0], default=list(default))
        else:
            kw["type"] = kind
        parser.add_argument("--" + f.name.replace("_", "-"), **kw)


def field_docs(cls) -> dict:
    """{field: the docstring under it, on one line} of a dataclass (a subclass's own docstring of a
    field it redefines, else its base class's)."""
    bases = [c for c in cls.__mro__[1:] if dataclasses.is_dataclass(c)]
    inherited = field_docs(bases[0]) if bases else {}
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    return inherited | {
        node.target.id: " ".join(doc.value.value.split())
        for node, doc in zip(body, body[1:])
        if isinstance(node, ast.AnnAssign)
        and isinstance(doc, ast.Expr)
        and isinstance(doc.value, ast.Constant)
        and isinstance(doc.value.value, str)
    }


def dataclass_from_args(cls, args):
    """The dataclass of the parsed options; its own validation errors become one-line UsageErrors."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items() if k in names}
    try:
        return cls(**values)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def positive(kind=int):
    """argparse type: a strictly positive int or float."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise _argparse_error(f"expected a positive {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise _argparse_error(f"must be positive, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _argparse_error(msg):
    import argparse

    return argparse.ArgumentTypeError(msg)
