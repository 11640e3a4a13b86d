"""``godel runtimes``: which agent runtimes can run on this machine, and what the others lack."""

from __future__ import annotations

import click

from godel.config import get_settings
from godel.runtimes import describe_runtimes

from .output import emit_rows, format_option

COLUMNS = ("name", "available", "reason", "description")


@click.command("runtimes")
@click.option("--agent-cmd", help="Check the command runtime with this command (default GODEL_AGENT_CMD).")
@click.option("--model", help="Check runtimes that need a model with this one (default from their settings).")
@format_option
def runtimes(agent_cmd: str | None, model: str | None, fmt: str) -> None:
    """List runtimes (command, demo, openai, cli:*) with whether each is usable here and why not."""
    options = {"agent_cmd": agent_cmd or get_settings().agent_cmd, "model": model}
    rows = describe_runtimes(options)
    if fmt == "table":
        rows = [{**row, "available": "yes" if row["available"] else "no"} for row in rows]
    emit_rows(rows, fmt, COLUMNS, title="Agent runtimes")
