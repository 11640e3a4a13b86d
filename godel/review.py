"""Between and after the agents: integrate, review verdicts, revision, approval, merge.

A rejection or a merge conflict gets one bounded revision round for the named
agents; a second rejection ends the job ``changes_requested`` with the review
stored. Approved work is merged into ``godel/<job>``, and into the user's
branch only when they asked for it (``--merge-into``).
"""

from __future__ import annotations

from typing import Any

from godel import canvas, jobs, lifecycle
from godel.canvas import MAKERS, REVIEWERS
from godel.context import Context
from godel.events import Event, EventType
from godel.intents.schema import Role
from godel.merge_into import merge_into
from godel.steps import changed_files, halt
from godel.storage.models import Job
from godel.storage.store import TERMINAL

MAX_REVISIONS = 1
"""Revision rounds a job gets before a rejection ends it ``changes_requested``."""


def _load(ctx: Context, job_id: str) -> tuple[Job | None, dict[str, Any] | None]:
    job = ctx.store.find_job(job_id)
    if job is None:
        return None, {"skipped": "unknown job"}
    if halted := halt(ctx, job):
        return None, {"skipped": halted}
    return job, None


def integrate(ctx: Context, job_id: str) -> dict[str, Any]:
    """Merge the makers' branches into a review candidate (detached, nothing published)."""
    job, skipped = _load(ctx, job_id)
    if job is None:
        return skipped or {}
    makers = [a for a in job.agents if Role(a.role) is Role.coordinator or Role(a.role) in MAKERS]
    unfinished = [a.name for a in makers if a.state != "succeeded"]
    if unfinished:
        lifecycle.end_job(ctx, job_id, "failed", error=f"agents did not finish: {', '.join(unfinished)}")
        return {"skipped": "failed"}
    merged = ctx.worktrees(job.repo_path).merge(job_id, job.base_ref, [a.name for a in makers])
    review = {**(job.review or {}), "candidate": merged.sha, "merged": merged.merged, "conflicts": merged.conflicts}
    ctx.store.update_job(job_id, review=review)
    ctx.emit(Event(job_id=job_id, type=EventType.job_integrated, data=review))
    if merged.conflicts:
        files = "; ".join(f"{b}: {', '.join(f)}" for b, f in merged.conflicts.items())
        names = [b.rsplit("/", 1)[-1] for b in merged.conflicts]
        if job.options.get("round", 0) < MAX_REVISIONS:
            feedback = {
                n: f"Your change conflicted with the other agents' work in: {', '.join(merged.conflicts[b])}. "
                "Redo it on top of their merged work."
                for n, b in zip(names, merged.conflicts, strict=True)
            }
            revise(ctx, job, names, feedback, revise_from=dict.fromkeys(names, merged.sha))
            return review
        lifecycle.end_job(ctx, job_id, "failed", review=review, error=f"merge conflicts: {files}")
    return review


def _verdicts(ctx: Context, job: Job) -> dict[str, dict[str, Any]]:
    """Each reviewer's verdict in the current round."""
    reviewers = {a.name for a in job.agents if Role(a.role) in REVIEWERS}
    round_ = job.options.get("round", 0)
    found: dict[str, dict[str, Any]] = {}
    for task in ctx.store.tasks(job.id):
        result = task.result or {}
        if task.agent in reviewers and result.get("round", 0) == round_:
            found[task.agent] = result
    return found


def finalize(ctx: Context, job_id: str) -> dict[str, Any]:
    """Act on the reviewers' verdicts: revise, pause for approval, or publish."""
    job, skipped = _load(ctx, job_id)
    if job is None:
        return skipped or {}
    verdicts = _verdicts(ctx, job)
    reviewers = sorted(a.name for a in job.agents if Role(a.role) in REVIEWERS)
    review = dict(job.review or {})
    review["verdicts"] = {
        n: {"approved": v.get("approved"), "notes": v.get("notes"), "checks": v.get("checks", [])}
        for n, v in verdicts.items()
    }
    rejected = [n for n in reviewers if not verdicts.get(n, {}).get("approved")]
    ctx.store.update_job(job_id, review=review)
    ctx.emit(
        Event(
            job_id=job_id,
            type=EventType.review_done,
            state="rejected" if rejected else "approved",
            data={"rejected_by": rejected, "round": job.options.get("round", 0)},
        )
    )
    if rejected:
        if job.options.get("round", 0) < MAX_REVISIONS:
            makers = [a.name for a in job.agents if Role(a.role) in MAKERS]
            named = {w for n in rejected for w in (verdicts.get(n, {}).get("workers") or []) if w in makers}
            notes = "\n".join(f"{n}: {verdicts.get(n, {}).get('notes') or 'rejected'}" for n in rejected)
            targets = sorted(named) or makers
            revise(ctx, job, targets, dict.fromkeys(targets, notes))
            return review
        lifecycle.end_job(
            ctx, job_id, "changes_requested", review=review, summary=f"changes requested by {', '.join(rejected)}"
        )
        return review
    if job.options.get("approval") == "before_merge" and "before_merge" not in job.options.get("approved", []):
        lifecycle.pause(ctx, job, "before_merge")
        return review
    return publish(ctx, job_id)


def revise(
    ctx: Context, job: Job, names: list[str], feedback: dict[str, str], revise_from: dict[str, str] | None = None
) -> None:
    """Start the revision round: re-run ``names`` with the feedback, then review again."""
    round_ = job.options.get("round", 0) + 1
    options = {**job.options, "round": round_, "feedback": feedback, "revise_from": revise_from or {}}
    ctx.store.update_job(job.id, options=options)
    job.options = options
    for name in names:
        ctx.store.update_agent(job.id, name, state="queued")
    ctx.emit(
        Event(
            job_id=job.id,
            type=EventType.revision_started,
            state=f"round {round_}",
            message=f"revising {', '.join(names)}",
            data={"agents": names, "round": round_},
        )
    )
    team = [(a.name, Role(a.role)) for a in job.agents]
    jobs.enqueue(ctx, job, lambda app: canvas.build(app, job.id, team, plan=False, makers=names, round_=round_))


def publish(ctx: Context, job_id: str) -> dict[str, Any]:
    """Merge approved work into ``godel/<job>`` (and ``--merge-into`` a branch), ending the job."""
    job = ctx.store.find_job(job_id)
    if job is None or job.status in TERMINAL:
        return {"skipped": job.status if job else "unknown job"}
    review = dict(job.review or {})
    worktrees = ctx.worktrees(job.repo_path)
    candidate = str(review.get("candidate") or job.base_ref)
    reviewers = sorted(a.name for a in job.agents if Role(a.role) in REVIEWERS)
    final = worktrees.merge(job_id, candidate, reviewers) if reviewers else None
    sha = final.sha if final and not final.conflicts else candidate
    review["changed_files"] = changed_files(job, sha)
    branch = worktrees.publish(job_id, sha)
    review["commit"] = sha
    ctx.emit(Event(job_id=job_id, type=EventType.merge_done, data={"branch": branch, "commit": sha}))
    target = job.options.get("merge_into")
    if target:
        try:
            review["merge_into"] = merge_into(ctx, job, target)
        except Exception as exc:  # the job's branch exists; say why the extra merge did not happen
            lifecycle.end_job(ctx, job_id, "failed", review=review, error=f"merge into {target} failed: {exc}")
            return review
        ctx.emit(Event(job_id=job_id, type=EventType.merge_done, data={"branch": target, **review["merge_into"]}))
    summary = (
        f"{len(review.get('merged', []))} branch(es), {len(review['changed_files'])} file(s) changed, "
        f"merged into {branch}" + (f" and {target}" if target else "")
    )
    lifecycle.end_job(ctx, job_id, "succeeded", review=review, summary=summary)
    return {"branch": branch, "commit": sha}


def gate(ctx: Context, job_id: str) -> dict[str, Any]:
    """The approval gate after planning: pause until ``godel approve``."""
    job, skipped = _load(ctx, job_id)
    if job is None:
        return skipped or {}
    lifecycle.pause(ctx, job, "before_workers")
    return {"paused": "before_workers"}
