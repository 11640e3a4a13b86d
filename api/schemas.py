"""Every request and response body of the REST API, as pydantic models.

Views take and return these models only; the OpenAPI document is generated
from them, so what the spec says is what the server validates and sends.
Request models forbid unknown fields, so a misspelt option is a 422 naming it
rather than being silently ignored.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from godel.audit import AuditRecord
from godel.config import parse_duration
from godel.errors import GodelError
from godel.intents.schema import IntentKind
from godel.jobs import SubmitRequest
from godel.keys import Scope
from godel.storage import models

T = TypeVar("T")


class Schema(BaseModel):
    """Response models: read from ORM rows by attribute."""

    model_config = ConfigDict(from_attributes=True)


class Strict(BaseModel):
    """Request models (query strings and bodies): unknown fields are errors naming the field."""

    model_config = ConfigDict(extra="forbid")


class Page(Schema, Generic[T]):
    items: list[T]
    total: int = Field(description="Matching rows before limit/offset.")
    limit: int
    offset: int


class PageQuery(Strict):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)


# errors ---------------------------------------------------------------------


class ErrorDetail(Schema):
    code: str = Field(description="Stable machine-readable code, e.g. invalid, not_found, unauthorized.")
    message: str
    field: str | None = Field(None, description="The request field (or header, setting) at fault.")


class ErrorResponse(Schema):
    error: ErrorDetail


# jobs -----------------------------------------------------------------------


class JobSubmit(SubmitRequest):
    """``godel do`` over HTTP. ``repo`` is a path on the server; ``timeout`` takes seconds or 45m/2h."""

    repo: Path = Field(description="Git repository on the server's file system.")
    confirm: bool = Field(False, description="Required for destructive intents and require_approval.")

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return parse_duration(value, field="timeout")
        except GodelError as exc:  # pydantic reports ValueErrors with the field's location
            raise ValueError(exc.message) from None


class JobQuery(PageQuery):
    status: str | None = Field(None, description="queued, running, awaiting_approval or a final state.")
    intent: IntentKind | None = None


class AgentBrief(Schema):
    name: str
    role: str
    state: str


class JobSummary(Schema):
    """Same keys as a row of ``godel jobs --format json``."""

    job_id: str
    status: str
    text: str
    branch: str | None = Field(description="Set once the job succeeded.")
    intent: str | None
    template: str
    runtime: str
    agents: list[AgentBrief]
    cost_usd: float
    summary: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: models.Job) -> JobSummary:
        return cls.model_validate(_job_fields(job))


class AgentOut(Schema):
    job_id: str
    name: str
    role: str
    state: str
    runtime: str
    branch: str | None
    worktree: str | None
    summary: str | None
    error: str | None
    cost_usd: float
    started_at: datetime | None
    finished_at: datetime | None


class JobDetail(JobSummary):
    repo: str
    base_ref: str
    base_branch: str | None
    plan: dict[str, Any] | None
    review: dict[str, Any] | None
    deadline: datetime | None
    team: list[AgentOut]

    @classmethod
    def of(cls, job: models.Job) -> JobDetail:
        return cls.model_validate(
            {
                **_job_fields(job),
                "repo": job.repo_path,
                "base_ref": job.base_ref,
                "base_branch": job.base_branch,
                "plan": job.plan,
                "review": job.review,
                "deadline": job.deadline,
                "team": [AgentOut.model_validate(a) for a in job.agents],
            }
        )


def _job_fields(job: models.Job) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "status": job.status,
        "text": job.text,
        "branch": job.branch if job.status == "succeeded" else None,
        "intent": job.intent.get("intent"),
        "template": job.template,
        "runtime": job.runtime,
        "agents": [AgentBrief.model_validate(a) for a in job.agents],
        "cost_usd": round(job.cost_usd, 6),
        "summary": job.summary,
        "error": job.error,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


class RejectRequest(Schema):
    reason: str | None = Field(None, min_length=1, max_length=2000, description="Why; stored with the job.")


class RollbackResult(Schema):
    job_id: str
    status: str
    undone: list[str] = Field(description="One line per thing undone, e.g. 'deleted godel/<job>'.")


class PlanOut(Schema):
    job_id: str
    plan: dict[str, Any] | None = Field(description="Subtasks and their assignment to agents; None before planning.")


class AgentList(Schema):
    items: list[AgentOut]


class TaskOut(Schema):
    id: str
    job_id: str
    agent: str | None
    name: str
    queue: str | None
    state: str
    attempts: int
    error: str | None
    result: dict[str, Any] | None
    started_at: datetime | None
    finished_at: datetime | None


class TaskList(Schema):
    items: list[TaskOut]


def _stream_id(value: str) -> str:
    parts = value.split("-")
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise ValueError("must be a stream id such as 1717171717171-0, or 0")
    return value


StreamId = Annotated[str, AfterValidator(_stream_id)]


class EventQuery(Strict):
    after: StreamId = Field("0", description="A stream id such as 1717171717171-0; '0' replays from the start.")
    limit: int = Field(500, ge=1, le=1000)


class Subscribe(Strict):
    """What a Socket.IO client of ``/jobs`` emits as ``subscribe``."""

    job_id: str = Field(min_length=1, max_length=32)
    last_id: StreamId = Field("0", description="Last event id the client saw; replay starts after it.")


class EventOut(Schema):
    id: str = Field(description="Redis Stream id; pass it as ?after= or Socket.IO last_id to resume.")
    job_id: str
    type: str
    ts: datetime
    agent: str | None = None
    role: str | None = None
    state: str | None = None
    message: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class EventList(Schema):
    items: list[EventOut]
    last_id: str = Field(description="Id of the last event returned, or the 'after' given when none.")


class CostOut(Schema):
    agent: str | None
    role: str | None
    provider: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    created_at: datetime


class CostList(Schema):
    items: list[CostOut]
    total_usd: float
    input_tokens: int
    output_tokens: int


# agents and sessions --------------------------------------------------------


class AgentQuery(PageQuery):
    status: str | None = Field(None, description="Agent state: queued, running, succeeded, failed, ...")
    role: str | None = None
    job_id: str | None = None


class MessageOut(Schema):
    id: int
    role: str
    content: str
    tool_calls: list[Any] | None
    input_tokens: int
    output_tokens: int
    created_at: datetime


class SessionBrief(Schema):
    id: str
    job_id: str | None
    agent: str | None
    runtime: str | None
    model: str | None
    parent_id: str | None
    parent_message_id: int | None
    created_at: datetime


class SessionOut(SessionBrief):
    messages: list[MessageOut]
    input_tokens: int
    output_tokens: int
    tool_calls: int = Field(description="Tool calls across the session's messages.")
    children: list[str] = Field(description="Ids of sessions forked from this one.")


class SessionList(Schema):
    items: list[SessionBrief]


class AgentSessions(Schema):
    job_id: str
    agent: str
    items: list[SessionOut] = Field(description="Oldest first; a redelivered task starts a new session.")
    input_tokens: int
    output_tokens: int


class ForkRequest(Strict):
    message_id: int = Field(gt=0, description="Last message copied into the new session.")


# worktrees ------------------------------------------------------------------


class WorktreeOut(Schema):
    path: str
    job_id: str
    agent: str
    role: str
    branch: str | None
    job_status: str
    agent_state: str
    size_bytes: int
    cleanup: Literal["active", "pending"] = Field(
        description="active: the job runs; pending: the job ended but its worktree is still on disk."
    )


class WorktreeList(Schema):
    items: list[WorktreeOut]
    total_bytes: int


# metrics --------------------------------------------------------------------


class StateCounts(Schema):
    jobs: dict[str, int]
    agents: dict[str, int]
    tasks: dict[str, int]


class ThroughputQuery(Strict):
    minutes: int = Field(60, ge=1, le=1440)


class ThroughputPoint(Schema):
    minute: datetime
    finished: int


class Throughput(Schema):
    items: list[ThroughputPoint] = Field(description="One point per minute, oldest first.")
    total: int
    per_minute: float


class LatencyQuery(Strict):
    hours: int = Field(24, ge=1, le=24 * 90)


class Latency(Schema):
    count: int = Field(description="Jobs finished in the window.")
    p50: float | None
    p90: float | None
    p99: float | None
    mean: float | None


class CostQuery(Strict):
    days: int = Field(30, ge=1, le=366)


class CostRow(Schema):
    day: date
    provider: str | None
    model: str | None
    cost_usd: float
    input_tokens: int
    output_tokens: int


class CostBreakdown(Schema):
    items: list[CostRow]
    total_usd: float


# health ---------------------------------------------------------------------


class Check(Schema):
    name: str
    ok: bool
    detail: str


class Live(Schema):
    ok: bool


class Ready(Schema):
    ok: bool
    checks: list[Check]


class HealthDetail(Ready):
    version: str
    auth: bool
    workers: list[str]
    uptime_seconds: float


# keys -----------------------------------------------------------------------


class KeyCreate(Strict):
    scopes: list[Scope] = Field(min_length=1)
    name: str | None = Field(None, max_length=128)
    expires: str | None = Field(None, description="30d, 12h, or an ISO date; never when unset.")


class KeyOut(Schema):
    id: str
    name: str | None
    scopes: list[str]
    state: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="Shown once; only its hash is stored.")


class KeyList(Schema):
    items: list[KeyOut]


class AuditQuery(Strict):
    limit: int = Field(100, ge=1, le=1000)
    before: str | None = Field(None, description="Stream id; returns older records.")


class AuditList(Schema):
    items: list[AuditRecord]


# monitor --------------------------------------------------------------------


class Open(BaseModel):
    """Monitor snapshots: the documented keys, and any the monitor adds later."""

    model_config = ConfigDict(extra="allow")


class PoolInfo(Open):
    implementation: str | None = None
    max_concurrency: int | None = None
    size: int | None = None


class WorkerInfo(Open):
    hostname: str
    online: bool
    last_heartbeat: float | None = None
    heartbeat_freq: float | None = None
    sw_ident: str | None = None
    sw_ver: str | None = None
    sw_sys: str | None = None
    pid: int | None = None
    loadavg: list[float] | None = None
    active: int | None = None
    processed: int | None = None
    reserved: int | None = None
    pool: PoolInfo | None = None
    queues: list[str] | None = None
    uptime: float | None = None
    prefetch_count: int | None = None
    succeeded: int = 0
    failed: int = 0
    retried: int = 0


class WorkerList(Schema):
    items: list[WorkerInfo]


class TaskInfo(Open):
    """A Celery task as the monitor saw it; times are epoch seconds from worker events.

    ``kwargs`` (the repr of the keyword arguments) is passed through as an extra key:
    a field of that name would clash with the generated ``__init__(**kwargs)``.
    """

    uuid: str
    name: str | None = None
    state: str | None = None
    args: str | None = None
    result: str | None = None
    exception: str | None = None
    traceback: str | None = None
    worker: str | None = None
    queue: str | None = None
    retries: int = 0
    runtime: float | None = None
    sent: float | None = None
    received: float | None = None
    started: float | None = None
    succeeded: float | None = None
    failed: float | None = None
    revoked: float | None = None
    timestamp: float | None = None


class MonitorTaskQuery(Strict):
    state: str | None = Field(
        None, description="PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED, REJECTED"
    )
    name: str | None = None
    worker: str | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class TaskInfoList(Schema):
    items: list[TaskInfo]


class QueueInfo(Open):
    name: str
    messages: int
    priorities: dict[str, int]


class QueueList(Schema):
    items: list[QueueInfo]


class Rates(Open):
    """Successes and failures per minute over sliding windows, and runtime percentiles per task name."""

    windows: dict[str, int]
    all: dict[str, dict[str, float]]
    tasks: dict[str, dict[str, Any]]


class MonitorSummary(Open):
    tasks: dict[str, Any]
    workers: dict[str, int]
    events: int
    monitor: dict[str, Any]


class RevokeRequest(Strict):
    terminate: bool = Field(False, description="Also kill the task if it is running.")
    signal: str = "SIGTERM"
    worker: str | None = Field(None, description="Only this worker; all when unset.")


class PoolRequest(Strict):
    n: int = Field(1, ge=1, le=64, description="Processes (or threads) to add or remove.")


class RateLimitRequest(Strict):
    task_name: str = Field(min_length=1, description="e.g. godel.agent.worker")
    rate_limit: str | None = Field(description="10/s, 100/m, 5/h; null or '0' removes the limit.")
    worker: str | None = Field(None, description="Only this worker; all when unset.")


class ControlResult(Open):
    """What was asked, what each worker replied, and the audit record's id."""

    action: str
    worker: str | None = None
    ok: bool
    replies: dict[str, Any]
    audit_id: str | None = None
