"""Jobs: submit, list, read, cancel, roll back; a job's plan, agents, tasks, events, costs."""

from __future__ import annotations

from flask import Blueprint

from godel import jobs, lifecycle
from godel.errors import ValidationError

from ..openapi import Reply, operation
from ..queries import events_after, jobs_page
from ..schemas import (
    AgentList,
    AgentOut,
    CostList,
    CostOut,
    EventList,
    EventOut,
    EventQuery,
    JobDetail,
    JobQuery,
    JobSubmit,
    JobSummary,
    Page,
    PlanOut,
    RejectRequest,
    RollbackResult,
    TaskList,
    TaskOut,
)
from ..services import services

bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs")


@operation(bp, "", "POST", body=JobSubmit, response=JobDetail, status=201)
def submit_job(body: JobSubmit) -> Reply:
    """Submit an intent, as `godel do` does.

    Destructive intents (deploys) and `require_approval` need `"confirm": true`.
    The job is queued for the Celery workers; follow it through its events.
    """
    ctx = services().ctx
    request = jobs.SubmitRequest.model_validate(body.model_dump(exclude={"confirm"}))
    prepared = jobs.prepare(ctx, request)
    if prepared.needs_confirmation() and not body.confirm:
        reason = "a destructive intent" if prepared.destructive else "require_approval"
        raise ValidationError(f'{reason} needs "confirm": true', field="confirm")
    job = jobs.submit(ctx, prepared)
    return Reply(JobDetail.of(job), headers={"Location": f"{bp.url_prefix}/{job.id}"})


@operation(bp, "", query=JobQuery, response=Page[JobSummary])
def list_jobs(query: JobQuery) -> Page[JobSummary]:
    """Jobs, newest first, filtered by status and intent."""
    status = lifecycle.validate_status(query.status)
    intent = query.intent.value if query.intent else None
    rows, total = jobs_page(services().ctx.store, status=status, intent=intent, limit=query.limit, offset=query.offset)
    return Page[JobSummary](items=[JobSummary.of(j) for j in rows], total=total, limit=query.limit, offset=query.offset)


@operation(bp, "/<job_id>", response=JobDetail)
def get_job(job_id: str) -> JobDetail:
    """One job; a unique prefix of its id (4+ characters) is enough."""
    return JobDetail.of(services().ctx.store.job(job_id))


@operation(bp, "/<job_id>/cancel", "POST", response=JobDetail, errors=(409,))
def cancel_job(job_id: str) -> JobDetail:
    """Revoke the job's tasks and stop its running agents; 409 when it already ended."""
    return JobDetail.of(lifecycle.cancel(services().ctx, job_id))


@operation(bp, "/<job_id>/approve", "POST", response=JobDetail, errors=(409,))
def approve_job(job_id: str) -> JobDetail:
    """Let a job paused for approval go on (its workers, or its merge); 409 unless it is paused."""
    return JobDetail.of(lifecycle.approve(services().ctx, job_id))


@operation(bp, "/<job_id>/reject", "POST", body=RejectRequest, response=JobDetail, errors=(409,))
def reject_job(job_id: str, body: RejectRequest) -> JobDetail:
    """Refuse a paused job: it ends changes_requested and keeps its branches."""
    return JobDetail.of(lifecycle.reject(services().ctx, job_id, body.reason))


@operation(bp, "/<job_id>/rollback", "POST", response=RollbackResult)
def rollback_job(job_id: str) -> RollbackResult:
    """Undo what the job created (a merge into another branch, its branches and worktrees), cancelling it first."""
    ctx = services().ctx
    undone = lifecycle.rollback(ctx, job_id)
    job = ctx.store.job(job_id)
    return RollbackResult(job_id=job.id, status=job.status, undone=undone)


@operation(bp, "/<job_id>/plan", response=PlanOut)
def job_plan(job_id: str) -> PlanOut:
    """The job's decomposition into subtasks and their assignment to agents."""
    job = services().ctx.store.job(job_id)
    return PlanOut(job_id=job.id, plan=job.plan)


@operation(bp, "/<job_id>/agents", response=AgentList)
def job_agents(job_id: str) -> AgentList:
    """The job's team with each agent's state, branch and cost."""
    job = services().ctx.store.job(job_id)
    return AgentList(items=[AgentOut.model_validate(a) for a in job.agents])


@operation(bp, "/<job_id>/tasks", response=TaskList)
def job_tasks(job_id: str) -> TaskList:
    """The Celery tasks run for the job, with states and results."""
    store = services().ctx.store
    job = store.job(job_id)
    return TaskList(items=[TaskOut.model_validate(t) for t in store.tasks(job.id)])


@operation(bp, "/<job_id>/events", query=EventQuery, response=EventList)
def job_events(job_id: str, query: EventQuery) -> EventList:
    """The job's events after `after` (a stream id), oldest first; resume with `last_id`."""
    ctx = services().ctx
    job = ctx.store.job(job_id)
    events = events_after(ctx, job.id, query.after, query.limit)
    items = [EventOut.model_validate(e.model_dump(mode="json")) for e in events]
    return EventList(items=items, last_id=items[-1].id if items else query.after)


@operation(bp, "/<job_id>/costs", response=CostList)
def job_costs(job_id: str) -> CostList:
    """Tokens and money per agent step, and the job's totals."""
    store = services().ctx.store
    job = store.job(job_id)
    items = [CostOut.model_validate(c) for c in store.costs(job.id)]
    return CostList(
        items=items,
        total_usd=round(sum(c.cost_usd for c in items), 6),
        input_tokens=sum(c.input_tokens for c in items),
        output_tokens=sum(c.output_tokens for c in items),
    )
