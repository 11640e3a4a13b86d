"""Rendering for every listing command: ``--format table|json|jsonl``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "jsonl")

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output as a table, one JSON array, or one JSON object per line.",
)


def _plain(value: Any) -> Any:
    if hasattr(value, "value") and not isinstance(value, (str, int, float, bool)):
        return value.value
    return value


def dumps(obj: Any) -> str:
    """JSON the way every command prints it: stable keys, ISO dates, enums by value."""
    return json.dumps(obj, default=lambda o: o.isoformat() if hasattr(o, "isoformat") else str(_plain(o)))


def emit_rows(rows: Iterable[Mapping[str, Any]], fmt: str, columns: Sequence[str], *, title: str | None = None) -> None:
    """Print ``rows`` in ``fmt``; ``columns`` picks and orders the table's columns."""
    rows = list(rows)
    if fmt == "json":
        click.echo(dumps(rows))
        return
    if fmt == "jsonl":
        for row in rows:
            click.echo(dumps(row))
        return
    table = Table(title=title, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(_plain(row.get(c))) for c in columns))
    Console().print(table)


def emit_object(obj: Mapping[str, Any], fmt: str) -> None:
    """Print one record: JSON for json/jsonl, a two-column table otherwise."""
    if fmt in ("json", "jsonl"):
        click.echo(dumps(obj))
        return
    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in obj.items():
        table.add_row(key, value if isinstance(value, str) else dumps(value))
    Console().print(table)
