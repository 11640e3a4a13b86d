"""What each task of a job's canvas does, independent of Celery.

Steps never raise for an agent's failure: they record it, end the job, and
return, so the rest of the canvas runs as no-ops on a finished job. A step
redelivered after a worker died starts its agent over in a fresh worktree.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from godel import checks
from godel.canvas import MAKERS, REVIEWERS
from godel.context import Context
from godel.errors import GodelError
from godel.events import Event, EventType
from godel.git import git
from godel.intents.schema import Role
from godel.jobs import end_job, stop_reason
from godel.runtimes import AgentRequest, AgentResult, get_runtime
from godel.storage.models import Agent, Cost, Job, Message, Session, utcnow
from godel.storage.store import TERMINAL
from godel.templates import get_template, render_prompt
from godel.worktrees import agent_branch


def remaining_seconds(job: Job) -> float:
    if job.deadline is None:
        return float(job.options.get("timeout", 3600))
    return (job.deadline - utcnow()).total_seconds()


def _halt(ctx: Context, job: Job) -> str | None:
    """End or skip a step whose job is finished, stopping, or out of time."""
    if job.status in TERMINAL:
        return job.status
    if reason := stop_reason(ctx, job.id):
        return reason
    if remaining_seconds(job) <= 0:
        end_job(ctx, job.id, "timed_out", error=f"timed out after {job.options.get('timeout')}s")
        return "timed_out"
    return None


def run_agent(ctx: Context, job_id: str, name: str, task_id: str) -> dict[str, Any]:
    """One agent's whole turn: worktree, prompt, runtime, commit, records, events."""
    job = ctx.store.find_job(job_id)
    if job is None:  # a message for a job this database never had (another Godel on the broker)
        return {"agent": name, "skipped": "unknown job"}
    agent = next(a for a in job.agents if a.name == name)
    if halted := _halt(ctx, job):
        return {"agent": name, "skipped": halted}
    if ctx.store.start_job(job_id):
        ctx.emit(Event(job_id=job_id, type=EventType.job_started, state="running"))
    now = utcnow()
    ctx.store.update_agent(job_id, name, state="running", started_at=now, finished_at=None, error=None)
    ctx.store.upsert_task(task_id, job_id, state="STARTED", started_at=now, agent=name)
    ctx.emit(Event(job_id=job_id, type=EventType.agent_started, agent=name, role=agent.role, state="running"))
    try:
        outcome = _agent_turn(ctx, job, agent, task_id)
    except GodelError as exc:
        outcome = {"agent": name, "ok": False, "summary": str(exc)}
    except Exception as exc:  # a bug must still end the job visibly
        outcome = {"agent": name, "ok": False, "summary": f"{type(exc).__name__}: {exc}"}
    _record_outcome(ctx, job, agent, task_id, outcome)
    return outcome


def _agent_turn(ctx: Context, job: Job, agent: Agent, task_id: str) -> dict[str, Any]:
    role = Role(agent.role)
    worktrees = ctx.worktrees(job.repo_path)
    path = worktrees.create(job.id, agent.name, _start_point(job, role))
    ctx.store.update_agent(job.id, agent.name, worktree=str(path), branch=agent_branch(job.id, agent.name))
    template = get_template(job.template, ctx.settings.templates_dir)
    subtasks = (job.plan or {}).get("assignments", {}).get(agent.name, [])
    options: dict[str, Any] = {**job.options, "intent_text": job.text, "plan": job.plan, "subtasks": subtasks}
    prompt = render_prompt(
        template,
        role,
        intent_text=job.text,
        feature=job.intent.get("feature", ""),
        requirements=", ".join(job.intent.get("requirements", [])) or "none",
        subtask_title="; ".join(s["title"] for s in subtasks),
        subtask_description="\n".join(f"- {s['title']}: {s['description']}" for s in subtasks),
        job_id=job.id,
    )
    check_results: list[checks.CheckResult] = []
    if role in REVIEWERS:
        commands = template.checks or checks.detect(path)
        ctx.emit(
            Event(
                job_id=job.id,
                type=EventType.agent_progress,
                agent=agent.name,
                role=agent.role,
                message=f"running {len(commands)} check(s)",
            )
        )
        check_results = checks.run(commands, path, timeout=max(1.0, remaining_seconds(job)))
        options["checks"] = [c.model_dump() for c in check_results]
        prompt += _review_context(check_results)

    def progress(message: str) -> None:
        ctx.emit(
            Event(job_id=job.id, type=EventType.agent_progress, agent=agent.name, role=agent.role, message=message)
        )

    request = AgentRequest(
        job_id=job.id,
        task_id=task_id,
        agent=agent.name,
        role=role.value,
        prompt=prompt,
        worktree=path,
        timeout=max(1.0, remaining_seconds(job)),
        options=options,
        should_stop=lambda: stop_reason(ctx, job.id),
        progress=progress,
    )
    result = get_runtime(job.runtime, options).run(request)
    _record_usage(ctx, job, agent, prompt, result)
    commit = worktrees.commit_all(path, f"godel({agent.name}): {(result.summary or role.value)[:72]}")
    if role is Role.coordinator and commit:
        ctx.store.update_job(job.id, plan={**(job.plan or {}), "commit": commit})
    outcome: dict[str, Any] = {
        "agent": agent.name,
        "ok": result.ok,
        "summary": result.summary,
        "commit": commit,
        "stopped": result.data.get("stopped"),
        "cost_usd": result.cost_usd,
    }
    if role in REVIEWERS:
        outcome["checks"] = [c.model_dump() for c in check_results]
        outcome["approved"] = (
            result.ok and result.data.get("approved") is not False and all(c.passed for c in check_results)
        )
        outcome["notes"] = result.data.get("notes") or result.summary
        outcome["ok"] = True  # a rejection is a verdict, not a failure
        if not result.ok and result.data.get("stopped"):
            outcome["ok"] = False
    return outcome


def _start_point(job: Job, role: Role) -> str:
    if role in REVIEWERS:
        return str((job.review or {}).get("candidate") or job.base_ref)
    if role in MAKERS:
        return str((job.plan or {}).get("commit") or job.base_ref)
    return job.base_ref


def _review_context(results: list[checks.CheckResult]) -> str:
    lines = ["", "", "Checks Godel ran on the merged result:"]
    lines += [f"- {r.command}: {'passed' if r.passed else 'FAILED'}\n{r.output[-800:]}" for r in results] or [
        "- none found"
    ]
    return "\n".join(lines)


def _record_usage(ctx: Context, job: Job, agent: Agent, prompt: str, result: AgentResult) -> None:
    session = Session(
        id=uuid.uuid4().hex[:16], job_id=job.id, agent=agent.name, runtime=job.runtime, model=result.model
    )
    ctx.store.add_session(
        session,
        [
            Message(role="user", content=prompt),
            Message(
                role="assistant",
                content=result.output or result.summary,
                input_tokens=result.usage.input_tokens,
                output_tokens=result.usage.output_tokens,
            ),
        ],
    )
    if result.cost_usd or result.usage.input_tokens or result.usage.output_tokens:
        total = ctx.store.add_cost(
            Cost(
                job_id=job.id,
                agent=agent.name,
                role=agent.role,
                provider=result.provider,
                model=result.model,
                input_tokens=result.usage.input_tokens,
                output_tokens=result.usage.output_tokens,
                cost_usd=result.cost_usd,
            )
        )
        ctx.emit(
            Event(
                job_id=job.id,
                type=EventType.cost_recorded,
                agent=agent.name,
                role=agent.role,
                data={
                    "cost_usd": result.cost_usd,
                    "job_cost_usd": total,
                    **result.usage.model_dump(),
                },
            )
        )


def _record_outcome(ctx: Context, job: Job, agent: Agent, task_id: str, outcome: dict[str, Any]) -> None:
    stopped = outcome.get("stopped")
    state = "succeeded" if outcome.get("ok") else (str(stopped) if stopped else "failed")
    finished = utcnow()
    ctx.store.update_agent(
        job.id,
        agent.name,
        state=state,
        finished_at=finished,
        summary=outcome.get("summary"),
        error=None if outcome.get("ok") else outcome.get("summary"),
    )
    ctx.store.upsert_task(
        task_id, job.id, state="SUCCESS" if outcome.get("ok") else "FAILURE", finished_at=finished, result=outcome
    )
    ctx.emit(
        Event(
            job_id=job.id,
            type=EventType.agent_finished,
            agent=agent.name,
            role=agent.role,
            state=state,
            message=outcome.get("summary"),
            data={k: v for k, v in outcome.items() if k != "checks"},
        )
    )
    if stopped:
        end_job(ctx, job.id, "timed_out" if stopped in ("timed out", "timed_out") else str(stopped))
    elif not outcome.get("ok"):
        end_job(ctx, job.id, "failed", error=f"{agent.name} failed: {outcome.get('summary')}")


def integrate(ctx: Context, job_id: str) -> dict[str, Any]:
    """Merge the makers' branches into a review candidate (detached, nothing published)."""
    job = ctx.store.job(job_id)
    if halted := _halt(ctx, job):
        return {"skipped": halted}
    makers = [a for a in job.agents if Role(a.role) is Role.coordinator or Role(a.role) in MAKERS]
    unfinished = [a.name for a in makers if a.state != "succeeded"]
    if unfinished:
        end_job(ctx, job_id, "failed", error=f"agents did not finish: {', '.join(unfinished)}")
        return {"skipped": "failed"}
    merged = ctx.worktrees(job.repo_path).merge(job_id, job.base_ref, [a.name for a in makers])
    review = {"candidate": merged.sha, "merged": merged.merged, "conflicts": merged.conflicts}
    ctx.store.update_job(job_id, review=review)
    ctx.emit(Event(job_id=job_id, type=EventType.job_integrated, data=review))
    if merged.conflicts:
        files = "; ".join(f"{b}: {', '.join(f)}" for b, f in merged.conflicts.items())
        end_job(ctx, job_id, "failed", error=f"merge conflicts: {files}")
    return review


def finalize(ctx: Context, job_id: str) -> dict[str, Any]:
    """Publish ``godel/<job>`` when every reviewer approved, else end ``changes_requested``."""
    job = ctx.store.job(job_id)
    if halted := _halt(ctx, job):
        return {"skipped": halted}
    review = dict(job.review or {})
    reviewers = {a.name for a in job.agents if Role(a.role) in REVIEWERS}
    verdicts = {t.agent: t.result or {} for t in ctx.store.tasks(job_id) if t.agent in reviewers and t.result}
    review["verdicts"] = {
        name: {"approved": v.get("approved"), "notes": v.get("notes"), "checks": v.get("checks", [])}
        for name, v in verdicts.items()
    }
    rejected = [name for name in reviewers if not verdicts.get(name, {}).get("approved")]
    ctx.emit(
        Event(
            job_id=job_id,
            type=EventType.review_done,
            state="rejected" if rejected else "approved",
            data={"rejected_by": rejected},
        )
    )
    if rejected:
        end_job(
            ctx,
            job_id,
            "changes_requested",
            review=review,
            summary=f"changes requested by {', '.join(sorted(rejected))}",
        )
        return review
    worktrees = ctx.worktrees(job.repo_path)
    candidate = str(review.get("candidate") or job.base_ref)
    final = worktrees.merge(job_id, candidate, sorted(reviewers)) if reviewers else None
    sha = final.sha if final and not final.conflicts else candidate
    changed = [f for f in git(job.repo_path, "diff", "--name-only", job.base_ref, sha).splitlines() if f]
    branch = worktrees.publish(job_id, sha)
    review["commit"] = sha
    ctx.emit(Event(job_id=job_id, type=EventType.merge_done, data={"branch": branch, "commit": sha}))
    review["changed_files"] = changed
    summary = f"{len(review.get('merged', []))} branch(es), {len(changed)} file(s) changed, merged into {branch}"
    end_job(ctx, job_id, "succeeded", review=review, summary=summary)
    return {"branch": branch, "commit": sha, "changed": changed}


def tracked(ctx: Context, job_id: str, task_id: str, step: Callable[[Context, str], dict[str, Any]]) -> dict[str, Any]:
    """Run a bookkeeping step with its task row kept current; a crash fails the job."""
    if ctx.store.find_job(job_id) is None:
        return {"skipped": "unknown job"}
    ctx.store.upsert_task(task_id, job_id, state="STARTED", started_at=utcnow())
    try:
        result = step(ctx, job_id)
    except Exception as exc:
        ctx.store.upsert_task(task_id, job_id, state="FAILURE", finished_at=utcnow(), error=str(exc))
        end_job(ctx, job_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    ctx.store.upsert_task(task_id, job_id, state="SUCCESS", finished_at=utcnow(), result=result)
    return result
