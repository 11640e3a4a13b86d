"""``godel jobs|show|cancel|approve|reject|rollback``: read and act on jobs, locally or through the API."""

from __future__ import annotations

import click

from .backend import backend
from .output import emit_object, emit_rows, format_option


@click.command("jobs")
@click.option("--status", help="Only jobs in this state.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@format_option
def jobs(status: str | None, limit: int, fmt: str) -> None:
    """List jobs, newest first."""
    rows = backend().jobs(status=status, limit=limit)
    for row in rows:
        row["team"] = len(row["agents"])
        row["text"] = row["text"][:60]
    emit_rows(rows, fmt, ["job_id", "status", "intent", "team", "runtime", "created_at", "text"])


@click.command("show")
@click.argument("job_id")
@click.option("--events", "with_events", is_flag=True, help="Include the job's events.")
@format_option
def show(job_id: str, with_events: bool, fmt: str) -> None:
    """One job: intent, plan, agents, tasks, review and (with --events) its events."""
    record = backend().detail(job_id, with_events=with_events)
    if fmt != "table":
        emit_object(record, fmt)
        return
    emit_object({k: v for k, v in record.items() if k not in ("agents", "tasks", "events", "plan")}, fmt)
    emit_rows(record["agents"], fmt, ["name", "role", "state", "branch", "summary"], title="agents")
    plan = record.get("plan") or {}
    if plan.get("assignments"):
        rows = [
            {"agent": a, "subtasks": "; ".join(s["title"] for s in subs)} for a, subs in plan["assignments"].items()
        ]
        emit_rows(rows, fmt, ["agent", "subtasks"], title=f"plan ({plan.get('source', 'template')})")
    if with_events:
        emit_rows(record["events"], fmt, ["ts", "type", "agent", "state", "message"], title="events")


@click.command("cancel")
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Revoke a job's tasks and stop its running agents."""
    job = backend().cancel(job_id)
    click.echo(f"job {job['job_id']}: {job['status']}")


@click.command("approve")
@click.argument("job_id")
def approve(job_id: str) -> None:
    """Let a job paused for approval go on (run its workers, or merge)."""
    job = backend().approve(job_id)
    click.echo(f"job {job['job_id']}: approved, {job['status']}")


@click.command("reject")
@click.argument("job_id")
@click.option("--reason", help="Why; stored with the job.")
def reject(job_id: str, reason: str | None) -> None:
    """Refuse a job paused for approval; it ends changes_requested."""
    job = backend().reject(job_id, reason)
    click.echo(f"job {job['job_id']}: {job['status']}")


@click.command("rollback")
@click.argument("job_id")
def rollback(job_id: str) -> None:
    """Undo what the job created: a --merge-into merge, its branches, its worktrees."""
    for line in backend().rollback(job_id) or ["nothing to undo"]:
        click.echo(line)
