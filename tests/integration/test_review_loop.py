"""Planning, revision rounds, approval gates, budgets and --merge-into on a real worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from godel import jobs, lifecycle
from godel.config import load_settings
from godel.context import Context, build_context
from godel.errors import BudgetExceeded, Conflict, ValidationError
from godel.events import EventType
from godel.git import branches, git
from godel.spend import spend
from godel.storage.models import Job
from tests.integration.test_pipeline import wait

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("celery_worker")]

FEATURE = "Add JWT authentication with rate limiting"
TYPO = "fix the typo in the README"


@pytest.fixture
def ctx(godel_env: dict[str, str]) -> Context:
    return build_context()


def submit(ctx: Context, repo: Path, text: str, cmd: str, **options: Any) -> Job:
    request = jobs.SubmitRequest(text=text, repo=repo, runtime="command", agent_cmd=cmd, **options)
    return jobs.submit(ctx, jobs.prepare(ctx, request))


def fake(fake_agent: str, mode: str, marker: Path) -> str:
    marker.mkdir(exist_ok=True)
    return f"FAKE_AGENT={mode} FAKE_AGENT_MARKER={marker} {fake_agent}"


def types(ctx: Context, job: Job) -> list[str]:
    return [e.type for e in ctx.store.events(job.id)]


def test_coordinator_plan_is_validated_stored_and_dealt(ctx: Context, git_repo: Path, fake_agent: str,
                                                        tmp_path: Path) -> None:
    job = wait(ctx, submit(ctx, git_repo, FEATURE, fake(fake_agent, "badplan_once", tmp_path / "m")).id)
    assert job.status == "succeeded", job.error
    assert job.plan and job.plan["source"] == "command"
    assert [s["title"] for s in job.plan["subtasks"]] == ["Schema", "Endpoint"]
    assert job.plan["assignments"]["worker-1"][0]["acceptance"] == ["migrates"]
    assert job.plan["assignments"]["worker-3"][0]["title"] == "Cross-check"
    assert EventType.plan_ready.value in types(ctx, job)


def test_invalid_plan_twice_fails_with_the_reason(ctx: Context, git_repo: Path, fake_agent: str,
                                                  tmp_path: Path) -> None:
    job = wait(ctx, submit(ctx, git_repo, FEATURE, fake(fake_agent, "badplan", tmp_path / "m")).id)
    assert job.status == "failed"
    assert "invalid plan" in (job.error or "") and "subtasks" in (job.error or "")


def test_rejection_gets_one_revision_round(ctx: Context, git_repo: Path, fake_agent: str, tmp_path: Path) -> None:
    job = wait(ctx, submit(ctx, git_repo, FEATURE, fake(fake_agent, "reject_once", tmp_path / "m")).id)
    assert job.status == "succeeded", job.error
    assert job.options["round"] == 1 and list(job.options["feedback"]) == ["worker-2"]
    assert "please add tests" in job.options["feedback"]["worker-2"]
    events = ctx.store.events(job.id)
    revision = next(e for e in events if e.type == EventType.revision_started.value)
    assert revision.data["data"]["agents"] == ["worker-2"]
    reviews = [e.data["state"] for e in events if e.type == EventType.review_done.value]
    assert reviews == ["rejected", "approved"]


def test_second_rejection_ends_changes_requested(ctx: Context, git_repo: Path, fake_agent: str,
                                                 tmp_path: Path) -> None:
    job = wait(ctx, submit(ctx, git_repo, FEATURE, fake(fake_agent, "reject", tmp_path / "m")).id)
    assert job.status == "changes_requested"
    assert job.options["round"] == 1
    assert job.review and job.review["verdicts"]["reviewer-1"]["notes"] == "please add tests"
    assert branches(git_repo, f"godel/{job.id}/")


def test_merge_conflict_is_revised_on_top_of_the_others(ctx: Context, git_repo: Path, fake_agent: str,
                                                        tmp_path: Path) -> None:
    job = wait(ctx, submit(ctx, git_repo, "refactor the shared module", fake(fake_agent, "conflict", tmp_path / "m"),
                           workers=2).id)
    assert job.status == "succeeded", job.error
    integrated = [e.data["data"] for e in ctx.store.events(job.id) if e.type == EventType.job_integrated.value]
    assert integrated[0]["conflicts"] == {f"godel/{job.id}/worker-2": ["shared.txt"]}
    assert integrated[1]["conflicts"] == {}
    shared = git(git_repo, "show", f"{job.branch}:shared.txt")
    assert shared == "worker-1 was here first\nworker-2"


def test_approval_before_merge(ctx: Context, git_repo: Path, fake_agent: str, tmp_path: Path) -> None:
    job = submit(ctx, git_repo, TYPO, fake(fake_agent, "", tmp_path / "m"), require_approval=True)
    paused = wait_status(ctx, job.id, lifecycle.AWAITING)
    assert paused.options["pending_approval"] == "before_merge"
    assert not git(git_repo, "branch", "--list", job.branch)
    with pytest.raises(Conflict):  # only a paused job can be approved or rejected
        lifecycle.approve(ctx, wait(ctx, submit(ctx, git_repo, TYPO, fake(fake_agent, "", tmp_path / "n")).id).id)
    lifecycle.approve(ctx, job.id)
    done = wait(ctx, job.id)
    assert done.status == "succeeded" and git(git_repo, "branch", "--list", job.branch)
    assert EventType.approval_given.value in types(ctx, done)


def test_reject_a_paused_job(ctx: Context, git_repo: Path, fake_agent: str, tmp_path: Path) -> None:
    job = submit(ctx, git_repo, TYPO, fake(fake_agent, "", tmp_path / "m"), require_approval=True)
    wait_status(ctx, job.id, lifecycle.AWAITING)
    done = lifecycle.reject(ctx, job.id, "not now")
    assert done.status == "changes_requested" and "not now" in (done.error or "")


def test_deploy_pauses_before_its_workers(ctx: Context, git_repo: Path, fake_agent: str, tmp_path: Path) -> None:
    job = submit(ctx, git_repo, "deploy the app to staging", fake(fake_agent, "", tmp_path / "m"),
                 require_approval=True)
    paused = wait_status(ctx, job.id, lifecycle.AWAITING)
    assert paused.options["pending_approval"] == "before_workers"
    assert all(a.state == "queued" for a in paused.agents if a.role == "worker")
    lifecycle.approve(ctx, job.id)
    assert wait(ctx, job.id).status == "succeeded"


def test_budget_stops_the_job_with_warnings(ctx: Context, git_repo: Path, fake_agent: str, tmp_path: Path) -> None:
    job = wait(ctx, submit(ctx, git_repo, FEATURE, fake(fake_agent, "", tmp_path / "m"), budget=0.025).id)
    assert job.status == "budget_exceeded"
    assert job.cost_usd >= 0.025
    warnings = [e.data["state"] for e in ctx.store.events(job.id) if e.type == EventType.budget_warning.value]
    assert "50%" in warnings
    assert not any(a.state == "succeeded" for a in job.agents if a.role in ("reviewer", "security_reviewer"))


def test_daily_budget_refuses_new_jobs(ctx: Context, git_repo: Path, fake_agent: str, tmp_path: Path) -> None:
    wait(ctx, submit(ctx, git_repo, TYPO, fake(fake_agent, "", tmp_path / "m")).id)
    tight = Context(settings=load_settings(daily_budget=0.001), redis_url=ctx.redis_url, store=ctx.store)
    with pytest.raises(BudgetExceeded) as info:
        jobs.prepare(tight, jobs.SubmitRequest(text=TYPO, repo=git_repo, runtime="demo"))
    assert info.value.field == "budget"


def test_merge_into_and_rollback(ctx: Context, git_repo: Path, fake_agent: str, tmp_path: Path) -> None:
    before = git(git_repo, "rev-parse", "main")
    job = wait(ctx, submit(ctx, git_repo, TYPO, fake(fake_agent, "", tmp_path / "m"), merge_into="main").id)
    assert job.status == "succeeded", job.error
    assert git(git_repo, "rev-parse", "main") != before
    assert (git_repo / "agent_output" / "worker-1.txt").exists()  # the user asked for it in their checkout
    lines = lifecycle.rollback(ctx, job.id)
    assert lines[0].startswith("reset main")
    assert git(git_repo, "rev-parse", "main") == before
    assert not (git_repo / "agent_output").exists()
    with pytest.raises(ValidationError, match="does not exist"):
        jobs.prepare(ctx, jobs.SubmitRequest(text=TYPO, repo=git_repo, runtime="demo", merge_into="nope"))


def test_costs_group_by_role_and_day(ctx: Context) -> None:
    rows = spend(ctx.store, ["role"])
    assert {r["role"] for r in rows} >= {"worker", "coordinator"}
    assert all(r["cost_usd"] > 0 for r in rows)
    days = spend(ctx.store, ["day"])
    assert len(days) == 1 and len(days[0]["day"]) == 10


def wait_status(ctx: Context, job_id: str, status: str, timeout: float = 60) -> Job:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ctx.store.job(job_id)
        if job.status == status:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} is {ctx.store.job(job_id).status}, not {status}")
