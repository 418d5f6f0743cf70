"""Check a deployment's command line against the real CLI it will run, without running it."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping, Sequence

import click


def _program(name: str) -> click.Command:
    """The click command behind console script ``name``.

    Some entry points are plain functions that call a module-level click group ``cli``
    (Dagster's); take that group then.
    """
    (entry,) = [
        point
        for point in importlib.metadata.entry_points(group="console_scripts")
        if point.name == name
    ]
    target = entry.load()
    if isinstance(target, click.Command):
        return target
    return importlib.import_module(entry.module).cli


def parse_command(argv: Sequence[str], *, files: Mapping[str, str] | None = None) -> list[str]:
    """Parse ``argv`` as its program would; return the subcommand path it resolves to.

    ``files`` maps paths inside the image to the repository files copied there, so options
    that must name an existing file are checked against what the image really holds.
    Raises ``click.UsageError`` (unknown command, unknown option, bad value, missing file) as
    the program would at start-up.
    """
    name, *args = [(files or {}).get(arg, arg) for arg in argv]
    command = _program(os.path.basename(name))
    path = [name]
    ctx = command.make_context(name, list(args), resilient_parsing=False)
    while isinstance(command, click.Group):
        rest = ctx.protected_args + ctx.args
        if not rest:
            break
        sub_name, command, sub_args = command.resolve_command(ctx, rest)
        path.append(sub_name or "")
        ctx = command.make_context(sub_name, sub_args, parent=ctx)
    return path
