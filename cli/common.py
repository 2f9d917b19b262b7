"""Options shared by several commands, and the one error style of every command.

This module imports neither torch nor numpy (``graph_eigenmap.errors`` imports nothing): ``--help``,
``--version`` and option errors answer without them, in a fraction of a second. Each command
imports what it needs when it runs.

Every error a user can fix, whether Typer finds it while parsing the options or the library finds
it while running the command, is one line on stderr, ``error: <what is wrong and how to fix it>``,
with exit code 2; the message names the command-line option (``--k``), not the field behind it.
``GRAPH_EIGENMAP_DEBUG=1`` adds the traceback. Every warning the library gives while a command runs (input
that is legal but likely a mistake, :class:`~graph_eigenmap.errors.InputWarning`, and the others) is one line
on stderr, ``warning: ...``, said once, with the same option names.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import traceback
import warnings
from importlib import metadata
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from graph_eigenmap.config import train_options
from graph_eigenmap.errors import GraphEigenmapError

DEBUG_VARIABLE = "GRAPH_EIGENMAP_DEBUG"
USAGE_EXIT_CODE = 2
DISTRIBUTION = "graph-eigenmap"

DatasetArg = Annotated[
    str,
    typer.Argument(help="Dataset: csbm[:key=value,...], csbm-products, ogbn-NAME (with --root), an OGB-layout folder, "
                        "or a .npz file."),
]
DatasetOpt = Annotated[
    str,
    typer.Option("--dataset", "-d", help="Dataset: csbm[:key=value,...], csbm-products, ogbn-NAME (with --root), "
                                         "an OGB-layout folder, or a .npz file."),
]
RootOpt = Annotated[Optional[Path], typer.Option(
    help="Folder that holds (or will hold) OGB datasets, for ogbn-* names.")]
CacheOpt = Annotated[Optional[Path], typer.Option(
    help="Cache for graphs read from OGB layout (default $GRAPH_EIGENMAP_CACHE or ~/.cache/graph_eigenmap).")]
SplitSeedOpt = Annotated[int, typer.Option(help="Seed of the 10/10/80 split for sources without one (.npz).")]
DeviceOpt = Annotated[str, typer.Option(help="Device: auto (GPU when present), cpu, cuda, cuda:1, ...")]


def fail(message: str, code: int = USAGE_EXIT_CODE):
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    raise typer.Exit(code=code)


def _click_exception_class() -> type:
    """click's ClickException, whether Typer vendors click (>= 0.2x) or depends on it."""
    return next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException")


class OneLineErrors(TyperGroup):
    """The top-level group: option-parsing errors become one ``error:`` line with exit code 2.

    Click shows them as a usage block (or Typer as a boxed panel); here they read like every other
    error of this CLI, and name the option and where to look.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        click_exception = _click_exception_class()
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_exception as err:
            context = getattr(err, "ctx", None)
            if type(err).__name__ == "NoArgsIsHelpError" and context is not None:
                print(context.get_help())  # a bare group: its help, as --help would print it
                sys.exit(0)
            message = " ".join(err.format_message().split()).replace("Value error, ", "")
            end = "" if message.endswith((".", "?", "!")) else "."
            where = f" Run '{context.command_path} --help' for the options." if context is not None else ""
            print(f"error: {message}{end}{where}", file=sys.stderr)
            sys.exit(USAGE_EXIT_CODE)
        except typer.Abort:
            print("error: aborted.", file=sys.stderr)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def show_version(value: bool) -> None:
    """``--version``: the installed version from package metadata (imports nothing of the package)."""
    if not value:
        return
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        version = "unknown (not installed; pip install -e . in the checkout)"
    print(f"{DISTRIBUTION} {version}")
    raise typer.Exit()


def option_name(parameter: str) -> str:
    """The command-line option of a command parameter (Typer's default spelling)."""
    return "--" + parameter.replace("_", "-")


LIBRARY_NAMES = {"save_backbone": "backbone", "out_dir": "out"}
"""Library parameters whose command-line option has another name."""


def _switches(parameter: str) -> tuple[str, str]:
    """The options that turn a boolean parameter on and off (``--reorder``, ``--no-reorder``)."""
    declared = next((f.metadata["flags"] for f in train_options() if f.name == parameter and f.metadata["flags"]), None)
    if declared:
        on, off = declared.split("/")
        return on, off
    return option_name(parameter), "--no-" + parameter.replace("_", "-")


def name_options(message: str, parameters) -> str:
    """The library's references to its parameters, in backquotes, as the command's options.

    ```batch_size``` becomes ``--batch-size``; ```inputs='features'``` becomes ``--inputs features``; a boolean
    ```resume=True``` becomes ``--resume`` (False: ``--no-resume``). A reference to a parameter the command does not
    have loses its backquotes only. Values outside backquotes (what the user typed, after "got") are left alone.
    """
    parameters = set(parameters)

    def swap(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        option = LIBRARY_NAMES.get(name, name)
        if option not in parameters:
            return match.group(0)[1:-1]
        if value is None:
            return option_name(option)
        if value in ("True", "False"):
            return _switches(option)[value == "False"]
        return f"{option_name(option)} {value.strip(chr(39))}"

    return re.sub(r"`([a-z][a-z0-9_]*)(?:=([^`]*))?`", swap, message)


def friendly_errors(command):
    """Turn a GraphEigenmapError into one line on stderr and exit code 2 (traceback with GRAPH_EIGENMAP_DEBUG=1),
    and every warning into one line on stderr, said once (:func:`one_line_warnings`)."""
    parameters = list(inspect.signature(command).parameters)

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = one_line_warnings(parameters)
                return command(*args, **kwargs)
        except GraphEigenmapError as err:
            if os.environ.get(DEBUG_VARIABLE):
                traceback.print_exc()
            fail(name_options(str(err), parameters))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(code=130) from None

    return wrapper


def one_line_warnings(parameters):
    """A ``warnings.showwarning`` that prints ``warning: <message>`` as one line on stderr, each message once, with
    the library's parameter names turned into the command's options (:func:`name_options`)."""
    shown = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = "warning: " + " ".join(name_options(str(message), parameters).split())
        if text not in shown:
            shown.add(text)
            print(text, file=sys.stderr, flush=True)

    return show


def warn(message: str) -> None:
    """A one-line warning of the command itself (an option it ignores, ...), on stderr."""
    print(f"warning: {' '.join(message.split())}", file=sys.stderr, flush=True)
