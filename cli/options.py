"""The training options of the command line, made from their one declaration (``graph_eigenmap.config.TrainConfig``).

:func:`with_train_options` adds one Typer option per field (``--batch-size`` for ``batch_size``) to a command, each
with the field's help, default, allowed values (checked while parsing, before any import or work) and, for an
``inputs`` value, its parsing into a typed ``InputSpec``; the command receives them as one ``options`` dict of
keyword arguments for the library. ``graph_eigenmap.config`` and ``graph_eigenmap.registry`` import nothing
heavy, so ``--help`` still answers without torch.
"""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, Optional

import typer

from graph_eigenmap.config import Constraint, Flag, Inputs, Interval, OneOf, train_options
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.registry import parse_inputs


def _check(constraint: Constraint):
    """An option callback that accepts only what ``constraint`` does (an ``inputs`` value becomes an InputSpec)."""

    def check(value):
        if value is None and constraint.none:
            return value
        if not constraint.accepts(value, {}):
            raise typer.BadParameter(f"must be {constraint.describe({})}; got {value!r}")
        if isinstance(constraint, Inputs) and value != "auto":
            try:
                return parse_inputs(value)
            except GraphEigenmapError as err:  # accepts() said yes: never reached, kept for a clear failure
                raise typer.BadParameter(str(err)) from None
        return value

    return check


def _annotation(field) -> object:
    """``Annotated[type, typer.Option(...)]`` of one TrainConfig field."""
    constraint: Constraint = field.metadata["constraint"]
    kind = constraint.type if isinstance(constraint, (Interval, Flag)) else str
    if constraint.none:
        kind = Optional[kind]
    flags = (field.metadata["flags"],) if field.metadata["flags"] else ()
    extra = dict(metavar="|".join(constraint.names())) if isinstance(constraint, OneOf) else {}
    return Annotated[kind, typer.Option(*flags, help=field.metadata["help"], callback=_check(constraint), **extra)]


def with_train_options(*, only: tuple[str, ...] | None = None, after: str = "dataset"):
    """Decorate a command taking ``options: dict`` with one option per TrainConfig field (or the fields in ``only``),
    placed after its parameter ``after`` in ``--help``."""

    def decorate(command):
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "options"]
        fields = [f for f in train_options() if only is None or f.name in only]
        added = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=_annotation(f))
                 for f in fields]
        position = [p.name for p in own].index(after) + 1
        parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[:position]] + added + \
                     [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[position:]]
        names = {f.name for f in fields}

        @functools.wraps(command)
        def wrapper(**kwargs):
            options = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
            return command(**kwargs, options=options)

        wrapper.__signature__ = signature.replace(parameters=parameters)
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate
