"""A real Celery worker runs whole jobs against the real Redis, on SQLite and Postgres."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from godel import jobs, lifecycle
from godel.context import Context, build_context
from godel.events import EventType
from godel.git import branches, git
from godel.storage.models import Job
from godel.storage.store import TERMINAL

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("celery_worker")]

FEATURE = "Add JWT authentication with rate limiting"


@pytest.fixture
def ctx(godel_env: dict[str, str]) -> Context:
    return build_context()


def run(ctx: Context, repo: Path, text: str, agent_cmd: str, **options: object) -> Job:
    request = jobs.SubmitRequest(text=text, repo=repo, runtime="command", agent_cmd=agent_cmd, **options)
    return jobs.submit(ctx, jobs.prepare(ctx, request))


def wait(ctx: Context, job_id: str, timeout: float = 90) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ctx.store.job(job_id)
        # The status is stored just before the job.finished event is emitted.
        finished = any(e.type == EventType.job_finished.value for e in ctx.store.events(job_id))
        if job.status in TERMINAL and finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {ctx.store.job(job_id).status}")


def test_feature_job_merges_every_agent_into_the_job_branch(ctx: Context, git_repo: Path, fake_agent: str) -> None:
    user_head = git(git_repo, "rev-parse", "HEAD")
    job = wait(ctx, run(ctx, git_repo, FEATURE, fake_agent).id)

    assert job.status == "succeeded", job.error
    assert [a.state for a in job.agents] == ["succeeded"] * len(job.agents)
    roles = [a.role for a in job.agents]
    assert roles.count("worker") == 3 and "coordinator" in roles and "reviewer" in roles
    assert "security_reviewer" in roles  # authentication is a security requirement
    # The user's checkout is untouched; the job's branch holds every agent's work.
    assert git(git_repo, "rev-parse", "HEAD") == user_head
    assert git(git_repo, "symbolic-ref", "--short", "HEAD") == "main"
    files = git(git_repo, "ls-tree", "-r", "--name-only", job.branch).splitlines()
    for agent in job.agents:
        assert f"agent_output/{agent.name}.txt" in files
    log = git(git_repo, "log", "--format=%s", job.branch)
    assert "Merge godel/" in log and "godel(worker-1)" in log
    assert branches(git_repo, f"godel/{job.id}/") == []  # folded into godel/<job>
    assert not (ctx.settings.worktrees_dir / job.id).exists()


def test_events_and_costs_are_stored(ctx: Context, git_repo: Path, fake_agent: str) -> None:
    job = wait(ctx, run(ctx, git_repo, "fix the typo in the README", fake_agent).id)
    assert job.status == "succeeded", job.error
    types = [e.type for e in ctx.store.events(job.id)]
    assert types[0] == EventType.job_submitted.value and types[-1] == EventType.job_finished.value, types
    assert EventType.agent_started.value in types and EventType.cost_recorded.value in types
    replay = ctx.bus.read(job.id, "0")
    assert [e.type.value for e in replay] == types
    assert job.cost_usd == pytest.approx(0.01 * len(job.agents))
    deadline = time.monotonic() + 10  # the last task's row is written after it emits job.finished
    while {t.state for t in ctx.store.tasks(job.id)} != {"SUCCESS"} and time.monotonic() < deadline:
        time.sleep(0.1)
    tasks = ctx.store.tasks(job.id)
    assert {t.state for t in tasks} == {"SUCCESS"} and all(t.started_at for t in tasks if t.agent)


def test_failing_agent_fails_the_job_and_keeps_going_nowhere(ctx: Context, git_repo: Path, fake_agent: str) -> None:
    job = wait(ctx, run(ctx, git_repo, FEATURE, f"FAKE_AGENT=fail {fake_agent}").id)
    assert job.status == "failed"
    assert "failed" in (job.error or "")
    assert "reviewer-1" not in {a.name for a in job.agents if a.state == "succeeded"}
    assert not git(git_repo, "branch", "--list", job.branch)


def test_rejecting_reviewer_ends_changes_requested(ctx: Context, git_repo: Path, fake_agent: str) -> None:
    job = wait(ctx, run(ctx, git_repo, FEATURE, f"FAKE_AGENT=reject {fake_agent}").id)
    assert job.status == "changes_requested"
    assert job.review and job.review["verdicts"]["reviewer-1"]["approved"] is False
    assert branches(git_repo, f"godel/{job.id}/")  # kept for the revision


def test_cancel_stops_a_running_agent(ctx: Context, git_repo: Path, fake_agent: str) -> None:
    job = run(ctx, git_repo, "fix the typo in the README", f"FAKE_AGENT=sleep {fake_agent}")
    deadline = time.monotonic() + 30
    while ctx.store.job(job.id).agents[0].state != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    lifecycle.cancel(ctx, job.id)
    done = wait(ctx, job.id)
    assert done.status == "cancelled"
    time.sleep(2)  # the agent process is killed within a poll interval
    out = subprocess.run(["pgrep", "-f", "fake_agent.py"], capture_output=True, text=True).stdout
    assert not out.strip()


def test_timeout_ends_timed_out(ctx: Context, git_repo: Path, fake_agent: str) -> None:
    job = run(ctx, git_repo, "fix the typo in the README", f"FAKE_AGENT=sleep {fake_agent}", timeout=3)
    done = wait(ctx, job.id, timeout=30)
    assert done.status == "timed_out"


def test_rollback_removes_branches(ctx: Context, git_repo: Path, fake_agent: str) -> None:
    job = wait(ctx, run(ctx, git_repo, "fix the typo in the README", fake_agent).id)
    assert job.status == "succeeded"
    assert lifecycle.rollback(ctx, job.id) == [f"deleted {job.branch}"]
    assert not git(git_repo, "branch", "--list", "godel/*")
