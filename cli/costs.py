"""``godel costs``: spend by provider, model, role, day or job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from godel.context import build_context
from godel.spend import GROUPS, spend

from .output import emit_rows, format_option


@click.command("costs")
@click.option(
    "--by",
    "group",
    type=click.Choice(GROUPS),
    multiple=True,
    help="Group by these (repeatable); default: provider and model.",
)
@click.option("--days", type=click.IntRange(1, 3650), help="Only the last N days.")
@click.option("--job", "job_id", help="Only this job.")
@format_option
def costs(group: tuple[str, ...], days: int | None, job_id: str | None, fmt: str) -> None:
    """Tokens and USD spent by agents."""
    ctx = build_context()
    by = list(group) or ["provider", "model"]
    since = datetime.now(UTC) - timedelta(days=days) if days else None
    job = ctx.store.job(job_id).id if job_id else None
    rows = spend(ctx.store, by, since=since, job_id=job)  # type: ignore[arg-type]
    emit_rows(rows, fmt, [*by, "steps", "input_tokens", "output_tokens", "cost_usd"])
