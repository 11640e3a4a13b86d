"""Submitting, ending, cancelling and rolling back jobs: the core the CLI and API call."""

from __future__ import annotations

import re
import shlex
import shutil
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from godel import broker, canvas, git
from godel.context import Context
from godel.errors import Conflict, RuntimeNotConfigured, ValidationError
from godel.events import Event, EventType
from godel.intents.analyse import analyse
from godel.intents.schema import Intent, Role
from godel.runtimes import get_runtime
from godel.storage.models import Agent, Job, utcnow
from godel.storage.store import TERMINAL
from godel.templates import Template, agent_names, get_template
from godel.worktrees import job_branch

STOP_KEY = "godel:job:{job_id}:stop"
"""Redis key whose value tells running agents why to stop (cancelled, timed_out)."""
STOP_TTL = 24 * 3600
DESTRUCTIVE_INTENTS = frozenset({"deploy"})


class SubmitRequest(BaseModel):
    """Everything ``godel do`` and ``POST /api/v1/jobs`` accept."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=10_000)
    repo: Path = Field(default_factory=Path.cwd)
    runtime: str | None = None
    agent_cmd: str | None = None
    timeout: int | None = Field(None, gt=0, description="Seconds; the settings' default when unset.")
    workers: int | None = Field(None, ge=1, le=32)
    template: str | None = None
    require_approval: bool = False

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("intent text is empty")
        return value.strip()


@dataclass
class Prepared:
    """A job worked out but not yet stored or enqueued (what ``--dry-run`` shows)."""

    request: SubmitRequest
    intent: Intent
    template: Template
    agents: list[tuple[str, Role]]
    plan: dict[str, Any]
    runtime: str
    repo: Path
    base_ref: str
    base_branch: str | None

    @property
    def destructive(self) -> bool:
        return self.template.destructive or self.intent.intent.value in DESTRUCTIVE_INTENTS

    def needs_confirmation(self) -> bool:
        return self.destructive or self.request.require_approval


def static_plan(template: Template, agents: list[tuple[str, Role]]) -> dict[str, Any]:
    """The template's decomposition dealt round-robin to the agents that make changes."""
    makers = [name for name, role in agents if role in canvas.MAKERS]
    assignments: dict[str, list[dict[str, Any]]] = {name: [] for name in makers}
    for index, subtask in enumerate(template.subtasks):
        assignments[makers[index % len(makers)]].append(subtask.model_dump())
    for name in makers:
        if not assignments[name]:
            # More makers than subtasks: the extra ones check the whole change.
            assignments[name].append(
                {"title": "Cross-check", "description": "Review and complete the other subtasks' work.", "files": []}
            )
    return {"source": "template", "subtasks": [s.model_dump() for s in template.subtasks], "assignments": assignments}


def check_runtime(name: str | None, agent_cmd: str | None) -> str:
    get_runtime(name, {"agent_cmd": agent_cmd})
    assert name
    if name == "command" and agent_cmd:
        try:
            # Leading NAME=value words set the agent's environment, as in a shell.
            program = next(w for w in shlex.split(agent_cmd) if not re.match(r"^[A-Za-z_]\w*=", w))
        except (ValueError, StopIteration):
            raise RuntimeNotConfigured(f"cannot parse --agent-cmd {agent_cmd!r}", field="agent_cmd") from None
        if not (shutil.which(program) or Path(program).is_file()):
            raise RuntimeNotConfigured(f"--agent-cmd program {program!r} not found on PATH", field="agent_cmd")
    return name


def prepare(ctx: Context, request: SubmitRequest) -> Prepared:
    """Parse, choose template and team, validate runtime and repository; no side effects."""
    settings = ctx.settings
    runtime = check_runtime(request.runtime or settings.runtime, request.agent_cmd or settings.agent_cmd)
    repo = git.repo_root(request.repo)
    intent = analyse(request.text, workers=request.workers, template=request.template, extra_dir=settings.templates_dir)
    template = get_template(intent.template, settings.templates_dir)
    agents = list(zip(agent_names(intent.team), intent.team, strict=True))
    base_ref, base_branch = git.head(repo)
    return Prepared(
        request=request,
        intent=intent,
        template=template,
        agents=agents,
        plan=static_plan(template, agents),
        runtime=runtime,
        repo=repo,
        base_ref=base_ref,
        base_branch=base_branch,
    )


def submit(ctx: Context, prepared: Prepared) -> Job:
    """Store the job and its agents, then enqueue its canvas and its timeout watchdog."""
    request = prepared.request
    job_id = uuid.uuid4().hex[:12]
    timeout = request.timeout or ctx.settings.timeout
    app = broker.make_celery(ctx.redis_url)
    built = canvas.build(app, job_id, prepared.agents)
    job = Job(
        id=job_id,
        text=request.text,
        intent=prepared.intent.model_dump(mode="json"),
        template=prepared.template.name,
        status="queued",
        repo_path=str(prepared.repo),
        base_ref=prepared.base_ref,
        base_branch=prepared.base_branch,
        branch=job_branch(job_id),
        runtime=prepared.runtime,
        options={"agent_cmd": request.agent_cmd or ctx.settings.agent_cmd, "timeout": timeout, "tasks": built.tasks},
        plan=prepared.plan,
        deadline=utcnow() + timedelta(seconds=timeout),
    )
    agents = [
        Agent(name=name, role=role.value, state="queued", runtime=prepared.runtime) for name, role in prepared.agents
    ]
    ctx.store.add_job(job, agents)
    for task in built.tasks:
        ctx.store.upsert_task(
            task["id"], job_id, name=task["name"], queue=task["queue"], agent=task["agent"], state="PENDING"
        )
    ctx.emit(
        Event(
            job_id=job_id,
            type=EventType.job_submitted,
            state="queued",
            data={
                "text": request.text,
                "intent": job.intent,
                "team": [name for name, _ in prepared.agents],
                "branch": job.branch,
            },
        )
    )
    result = built.root.apply_async()
    app.signature(broker.EXPIRE, args=(job_id,), immutable=True).apply_async(countdown=timeout)
    ctx.store.update_job(job_id, celery_id=result.id)
    return ctx.store.job(job_id)


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
    revoke(ctx, job)
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
    ctx.redis.set(STOP_KEY.format(job_id=job.id), "timed_out", ex=STOP_TTL)
    revoke(ctx, job)
    return end_job(ctx, job.id, "timed_out", error=f"timed out after {job.options.get('timeout')}s")


def rollback(ctx: Context, job_id: str) -> list[str]:
    """Remove the job's worktrees and branches; a running job is cancelled first."""
    job = ctx.store.job(job_id)
    if job.status not in TERMINAL:
        cancel(ctx, job.id)
    deleted = ctx.worktrees(job.repo_path).rollback(job.id)
    ctx.store.update_job(job.id, summary=f"rolled back: deleted {', '.join(deleted) or 'nothing'}")
    return deleted


def validate_status(status: str | None) -> str | None:
    known = TERMINAL | {"queued", "running"}
    if status and status not in known:
        raise ValidationError(f"unknown status {status!r}; one of {', '.join(sorted(known))}", field="status")
    return status
