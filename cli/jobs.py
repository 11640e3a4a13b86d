"""``godel jobs|show|cancel|rollback``: read and act on stored jobs."""

from __future__ import annotations

from typing import Any

import click

from godel import lifecycle as core
from godel.context import build_context
from godel.storage.models import Job

from .output import emit_object, emit_rows, format_option


def job_summary(job: Job) -> dict[str, Any]:
    """The final JSON of ``godel do --json --wait`` and one row of ``godel jobs``."""
    return {
        "job_id": job.id,
        "status": job.status,
        "branch": job.branch if job.status == "succeeded" else None,
        "intent": job.intent.get("intent"),
        "template": job.template,
        "runtime": job.runtime,
        "agents": [{"name": a.name, "role": a.role, "state": a.state} for a in job.agents],
        "cost_usd": round(job.cost_usd, 6),
        "summary": job.summary,
        "error": job.error,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


@click.command("jobs")
@click.option("--status", help="Only jobs in this state.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@format_option
def jobs(status: str | None, limit: int, fmt: str) -> None:
    """List jobs, newest first."""
    ctx = build_context()
    rows = []
    for job in ctx.store.jobs(status=core.validate_status(status), limit=limit):
        row = job_summary(job)
        row["text"] = job.text[:60]
        row["team"] = len(job.agents)
        rows.append(row)
    emit_rows(rows, fmt, ["job_id", "status", "intent", "team", "runtime", "created_at", "text"])


@click.command("show")
@click.argument("job_id")
@click.option("--events", "with_events", is_flag=True, help="Include the job's events.")
@format_option
def show(job_id: str, with_events: bool, fmt: str) -> None:
    """One job: intent, plan, agents, tasks, review and (with --events) its events."""
    ctx = build_context()
    job = ctx.store.job(job_id)
    record = job_summary(job)
    record.update(text=job.text, repo=job.repo_path, base_ref=job.base_ref, plan=job.plan, review=job.review)
    record["agents"] = [
        {
            "name": a.name,
            "role": a.role,
            "state": a.state,
            "branch": a.branch,
            "summary": a.summary,
            "cost_usd": a.cost_usd,
            "started_at": a.started_at,
            "finished_at": a.finished_at,
        }
        for a in job.agents
    ]
    record["tasks"] = [
        {"id": t.id, "name": t.name, "agent": t.agent, "state": t.state} for t in ctx.store.tasks(job.id)
    ]
    if with_events:
        record["events"] = [{"type": e.type, "agent": e.agent, "ts": e.ts, **e.data} for e in ctx.store.events(job.id)]
    if fmt == "table":
        emit_object({k: v for k, v in record.items() if k not in ("agents", "tasks", "events", "plan")}, fmt)
        emit_rows(record["agents"], fmt, ["name", "role", "state", "branch", "summary"], title="agents")
        if job.plan:
            plan_rows = [
                {"agent": a, "subtasks": "; ".join(s["title"] for s in subs)}
                for a, subs in job.plan.get("assignments", {}).items()
            ]
            emit_rows(plan_rows, fmt, ["agent", "subtasks"], title="plan")
        if with_events:
            emit_rows(record["events"], fmt, ["ts", "type", "agent", "state"], title="events")
    else:
        emit_object(record, fmt)


@click.command("cancel")
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Revoke a job's tasks and stop its running agents."""
    job = core.cancel(build_context(), job_id)
    click.echo(f"job {job.id}: {job.status}")


@click.command("rollback")
@click.argument("job_id")
def rollback(job_id: str) -> None:
    """Undo what the job created: a --merge-into merge, its branches, its worktrees."""
    for line in core.rollback(build_context(), job_id) or ["nothing to undo"]:
        click.echo(line)


@click.command("approve")
@click.argument("job_id")
def approve(job_id: str) -> None:
    """Let a job paused for approval go on (run its workers, or merge)."""
    job = core.approve(build_context(), job_id)
    click.echo(f"job {job.id}: approved, {job.status}")


@click.command("reject")
@click.argument("job_id")
@click.option("--reason", help="Why; stored with the job.")
def reject(job_id: str, reason: str | None) -> None:
    """Refuse a job paused for approval; it ends changes_requested."""
    job = core.reject(build_context(), job_id, reason)
    click.echo(f"job {job.id}: {job.status}")
