"""``godel templates``: see which intent templates exist and what one tells each agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from godel.config import get_settings
from godel.templates import get_template, load_templates

from .output import dumps, emit_rows, format_option

COLUMNS = ("name", "intent", "destructive", "subtasks", "description")


class _BlockDumper(yaml.SafeDumper):
    """Dumps multi-line strings (prompts) as ``|`` blocks so they read like the source file."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def _extra_dir() -> Path | None:
    return get_settings().templates_dir


@click.group("templates")
def templates() -> None:
    """Intent templates: the plan and prompts each kind of intent runs with."""


@templates.command("list")
@format_option
def list_templates(fmt: str) -> None:
    """List templates, shipped ones and those in GODEL_TEMPLATES_DIR."""
    rows: list[dict[str, Any]] = [
        {
            "name": t.name,
            "intent": t.intent.value,
            "destructive": t.destructive,
            "subtasks": len(t.subtasks),
            "description": t.description,
        }
        for t in load_templates(_extra_dir()).values()
    ]
    emit_rows(rows, fmt, COLUMNS, title="Intent templates")


@templates.command("show")
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("yaml", "json")),
    default="yaml",
    show_default=True,
    help="Print the template as YAML or as one JSON object.",
)
def show_template(name: str, fmt: str) -> None:
    """Print template NAME with every field, defaults included."""
    data = get_template(name, _extra_dir()).model_dump(mode="json")
    if fmt == "json":
        click.echo(dumps(data))
    else:
        click.echo(
            yaml.dump(
                data,
                Dumper=_BlockDumper,
                sort_keys=False,
                allow_unicode=True,
                width=100,
            ),
            nl=False,
        )
