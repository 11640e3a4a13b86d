"""How a job moves after submission: stop, end, cancel, expire, pause, approve, roll back.

Every terminal transition goes through ``end_job``, which stores the state once
(a finished job never changes status), stops the job's running agents through
its Redis stop key, frees its worktrees and emits ``job.finished``.
"""

from __future__ import annotations

from typing import Any

from godel import broker, canvas
from godel.context import Context
from godel.errors import Conflict, ValidationError
from godel.events import Event, EventType
from godel.intents.schema import Role
from godel.storage.models import Job, utcnow
from godel.storage.store import TERMINAL

STOP_KEY = "godel:job:{job_id}:stop"
"""Redis key whose value tells running agents why to stop (cancelled, timed_out)."""
STOP_TTL = 24 * 3600
AWAITING = "awaiting_approval"
"""The one state in which a job waits for a person (``godel approve`` / ``godel reject``)."""


def stop_reason(ctx: Context, job_id: str) -> str | None:
    """Why agents of this job must stop now (``cancelled``, ``timed_out``), else None."""
    value = ctx.redis.get(STOP_KEY.format(job_id=job_id))
    return str(value) if value else None


def end_job(ctx: Context, job_id: str, status: str, **values: Any) -> bool:
    """Finish the job once: store the state, stop its agents, free its worktrees, emit."""
    if not ctx.store.finish_job(job_id, status, **values):
        return False
    if status != "succeeded":
        ctx.redis.set(STOP_KEY.format(job_id=job_id), status, ex=STOP_TTL)
    job = ctx.store.job(job_id)
    if status in ("cancelled", "timed_out", "budget_exceeded"):
        revoke(ctx, job)
    try:
        ctx.worktrees(job.repo_path).cleanup(job_id)
    except Exception as exc:  # cleanup must never hide the outcome
        values.setdefault("error", f"worktree cleanup failed: {exc}")
    ctx.emit(
        Event(
            job_id=job_id,
            type=EventType.job_finished,
            state=status,
            message=values.get("error") or values.get("summary"),
            data={
                "status": status,
                "branch": job.branch if status == "succeeded" else None,
                "cost_usd": job.cost_usd,
            },
        )
    )
    return True


def revoke(ctx: Context, job: Job) -> None:
    """Revoke the job's tasks; running agents stop on their own through the stop key."""
    ids = [t["id"] for t in job.options.get("tasks", [])]
    if ids:
        broker.make_celery(ctx.redis_url).control.revoke(ids)
    ctx.store.revoke_pending(job.id)


def cancel(ctx: Context, job_id: str) -> Job:
    job = ctx.store.job(job_id)
    if job.status in TERMINAL:
        raise Conflict(f"job {job.id} already ended: {job.status}", field="job")
    ctx.redis.set(STOP_KEY.format(job_id=job.id), "cancelled", ex=STOP_TTL)
    ctx.emit(Event(job_id=job.id, type=EventType.job_cancel_requested, state="cancelling"))
    for agent in job.agents:
        if agent.state in ("queued", "running"):
            ctx.store.update_agent(job.id, agent.name, state="cancelled", finished_at=utcnow())
    end_job(ctx, job.id, "cancelled", error="cancelled by user")
    return ctx.store.job(job.id)


def expire(ctx: Context, job_id: str) -> bool:
    """The timeout watchdog: end a job still running at its deadline."""
    job = ctx.store.find_job(job_id)
    if job is None or job.status in TERMINAL:
        return False
    return end_job(ctx, job.id, "timed_out", error=f"timed out after {job.options.get('timeout')}s")


def rollback(ctx: Context, job_id: str) -> list[str]:
    """Undo everything the job created: a ``--merge-into`` merge, its branches and worktrees.

    A running job is cancelled first. Returns a line per thing undone.
    """
    from godel.merge_into import undo

    job = ctx.store.job(job_id)
    if job.status not in TERMINAL:
        cancel(ctx, job.id)
    done = []
    merged = (job.review or {}).get("merge_into")
    if merged and not merged.get("undone"):
        done.append(undo(ctx, job, merged))
        ctx.store.update_job(job.id, review={**(job.review or {}), "merge_into": {**merged, "undone": True}})
    done += [f"deleted {branch}" for branch in ctx.worktrees(job.repo_path).rollback(job.id)]
    ctx.store.update_job(job.id, summary=f"rolled back: {'; '.join(done) or 'nothing to undo'}")
    return done


def pause(ctx: Context, job: Job, point: str) -> None:
    """Wait for a person at ``point`` (before_workers, before_merge)."""
    ctx.store.update_job(job.id, status=AWAITING, options={**job.options, "pending_approval": point})
    ctx.emit(
        Event(
            job_id=job.id,
            type=EventType.approval_requested,
            state=AWAITING,
            message=point.replace("_", " "),
            data={"point": point, "approve": f"godel approve {job.id}", "reject": f"godel reject {job.id}"},
        )
    )


def _awaiting(ctx: Context, job_id: str) -> Job:
    job = ctx.store.job(job_id)
    if job.status != AWAITING:
        raise Conflict(f"job {job.id} is {job.status}, not waiting for approval", field="job")
    return job


def approve(ctx: Context, job_id: str) -> Job:
    """Let a paused job go on: run its workers, or merge its approved work."""
    job = _awaiting(ctx, job_id)
    point = str(job.options.get("pending_approval"))
    options = {**job.options, "approved": [*job.options.get("approved", []), point], "pending_approval": None}
    ctx.store.update_job(job.id, status="running", options=options)
    job.options = options
    ctx.emit(Event(job_id=job.id, type=EventType.approval_given, state="running", data={"point": point}))
    from godel.jobs import enqueue

    team = [(a.name, Role(a.role)) for a in job.agents]
    round_ = job.options.get("round", 0)
    if point == "before_workers":
        enqueue(ctx, job, lambda app: canvas.build(app, job.id, team, plan=False, round_=round_))
    else:
        enqueue(ctx, job, lambda app: canvas.publish(app, job.id, round_))
    return ctx.store.job(job.id)


def reject(ctx: Context, job_id: str, reason: str | None = None) -> Job:
    """Refuse a paused job: it ends ``changes_requested`` and keeps its branches."""
    job = _awaiting(ctx, job_id)
    if reason is not None and not reason.strip():
        raise ValidationError("reason is empty", field="reason")
    end_job(ctx, job.id, "changes_requested", error=f"rejected by a person: {reason or 'no reason given'}")
    return ctx.store.job(job.id)


def validate_status(status: str | None) -> str | None:
    known = TERMINAL | {"queued", "running", AWAITING}
    if status and status not in known:
        raise ValidationError(f"unknown status {status!r}; one of {', '.join(sorted(known))}", field="status")
    return status
