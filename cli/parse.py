"""``godel parse``: show the structured intent Godel reads from text."""

from __future__ import annotations

import sys

import click

from godel.config import get_settings
from godel.errors import GodelError
from godel.intents.analyse import analyse

from .output import dumps


@click.command("parse")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (always on when TEXT is -).")
def parse(text: str, as_json: bool) -> None:
    """Parse TEXT into intent, requirements, complexity and team; `-` reads one intent per line from stdin."""
    extra = get_settings().templates_dir
    if text != "-":
        intent = analyse(text, extra_dir=extra)
        if as_json:
            click.echo(dumps(intent.model_dump(mode="json")))
        else:
            for key, value in intent.model_dump(mode="json").items():
                click.echo(f"{key:>13}: {', '.join(value) if isinstance(value, list) else value}")
        return
    failed = False
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            click.echo(dumps(analyse(line, extra_dir=extra).model_dump(mode="json")))
        except GodelError as exc:
            failed = True
            click.echo(dumps({"error": {"code": exc.code, "message": exc.message, "field": exc.field, "line": number}}))
    if failed:
        sys.exit(2)
