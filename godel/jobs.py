"""Submitting jobs: what ``godel do`` and ``POST /api/v1/jobs`` call."""

from __future__ import annotations

import re
import shlex
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from celery import Celery
from pydantic import BaseModel, ConfigDict, Field, field_validator

from godel import broker, canvas, git, strategy
from godel.context import Context
from godel.errors import BudgetExceeded, RuntimeNotConfigured, ValidationError
from godel.events import Event, EventType
from godel.intents.analyse import analyse
from godel.intents.schema import Intent, Role
from godel.planning import assign
from godel.runtimes import get_runtime
from godel.storage.models import Agent, Job, utcnow
from godel.templates import Template, agent_names, get_template
from godel.worktrees import job_branch

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
    model: str | None = Field(None, max_length=200)
    budget: float | None = Field(None, gt=0, description="USD the job may spend.")
    strategy: Literal["careful", "fast"] | None = None
    coverage: float | None = Field(None, ge=0, le=100, description="Minimum test coverage %, checked on review.")
    merge_into: str | None = Field(None, max_length=255, description="Also merge the approved job into this branch.")

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

    @property
    def approval(self) -> str | None:
        """Where the job pauses for ``godel approve``: before a deploy's workers, else before merge."""
        if self.request.require_approval or self.request.strategy == "careful":
            return "before_workers" if self.destructive else "before_merge"
        return None


def static_plan(template: Template, agents: list[tuple[str, Role]]) -> dict[str, Any]:
    """The template's decomposition dealt round-robin to the agents that make changes."""
    makers = [name for name, role in agents if role in canvas.MAKERS]
    subtasks = [s.model_dump() for s in template.subtasks]
    return {"source": "template", "subtasks": subtasks, "assignments": assign(subtasks, makers)}


def check_runtime(name: str | None, agent_cmd: str | None, model: str | None = None) -> str:
    get_runtime(name, {"agent_cmd": agent_cmd, "model": model})
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
    runtime = check_runtime(request.runtime or settings.runtime, request.agent_cmd or settings.agent_cmd, request.model)
    where = git.checkout(request.repo)
    repo = where.root
    intent = analyse(request.text, workers=request.workers, template=request.template, extra_dir=settings.templates_dir)
    template = get_template(intent.template, settings.templates_dir)
    team = strategy.apply(list(intent.team), request.strategy, template, workers_fixed=request.workers is not None)
    intent = intent.model_copy(update={"team": team})
    agents = list(zip(agent_names(team), team, strict=True))
    if request.merge_into and not git.branch_exists(repo, request.merge_into):
        raise ValidationError(f"branch {request.merge_into!r} does not exist in {repo}", field="merge_into")
    if reason := daily_budget_spent(ctx):
        raise BudgetExceeded(reason, field="budget")
    base_ref, base_branch = where.sha, where.branch
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
    options: dict[str, Any] = {
        "agent_cmd": request.agent_cmd or ctx.settings.agent_cmd,
        "timeout": timeout,
        "runtime_override": request.runtime is not None,
        "model": request.model,
        "budget": request.budget,
        "strategy": request.strategy,
        "coverage": request.coverage,
        "merge_into": request.merge_into,
        "approval": prepared.approval,
        "approved": [],
        "round": 0,
        "tasks": [],
    }
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
        options=options,
        plan=prepared.plan,
        deadline=utcnow() + timedelta(seconds=timeout),
    )
    agents = [
        Agent(name=name, role=role.value, state="queued", runtime=prepared.runtime) for name, role in prepared.agents
    ]
    ctx.store.add_job(job, agents)
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
    gate = prepared.approval == "before_workers"
    result = enqueue(ctx, job, lambda app: canvas.build(app, job_id, prepared.agents, gate=gate))
    broker.make_celery(ctx.redis_url).signature(broker.EXPIRE, args=(job_id,), immutable=True).apply_async(
        countdown=timeout
    )
    ctx.store.update_job(job_id, celery_id=result)
    return ctx.store.job(job_id)


def enqueue(ctx: Context, job: Job, make: Callable[[Celery], canvas.Canvas]) -> str:
    """Record a canvas's tasks on the job (for revoking and display), then send it."""
    built = make(broker.make_celery(ctx.redis_url))
    options = {**job.options, "tasks": [*job.options.get("tasks", []), *built.tasks]}
    ctx.store.add_tasks(job.id, built.tasks, options)
    job.options = options
    return str(built.root.apply_async().id)


def daily_budget_spent(ctx: Context) -> str | None:
    from godel.budget import spent_today

    daily = ctx.settings.daily_budget
    if daily is not None and (today := spent_today(ctx)) >= daily:
        return f"daily budget ${daily:.2f} spent (${today:.4f} today); no new jobs until tomorrow (UTC)"
    return None
