"""The ``godel`` command group and the one place errors become exit codes."""

from __future__ import annotations

import sys
from typing import Any

import click

from godel import __version__
from godel.errors import GodelError

from .costs import costs
from .db import db
from .do import do
from .jobs import approve, cancel, jobs, reject, rollback, show
from .keys import keys
from .parse import parse
from .runtimes import runtimes
from .serve import serve
from .stack import down, status, up, worker
from .templates import templates
from .worktrees import worktrees


class GodelGroup(click.Group):
    """Turns a ``GodelError`` into ``error: ...`` on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GodelError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=GodelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="godel")
def cli() -> None:
    """Run teams of AI coding agents as a Celery task queue."""


COMMANDS = (do, parse, templates, runtimes, up, down, status, worker, jobs, show, cancel, approve, reject, rollback)
for command in (*COMMANDS, costs, worktrees, serve, keys, db):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="godel")
