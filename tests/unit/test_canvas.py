"""Canvas shape: coordinator, a chord of makers, a chord of reviewers, each on its queue."""

from __future__ import annotations

import pytest
from celery.canvas import _chain, chord

from godel.broker import make_celery
from godel.canvas import build
from godel.intents.schema import Role

pytestmark = pytest.mark.unit

APP = make_celery("redis://unused:6379/0")


def test_full_team_canvas() -> None:
    team = [
        ("coordinator", Role.coordinator),
        ("worker-1", Role.worker),
        ("worker-2", Role.worker),
        ("profiler", Role.profiler),
        ("reviewer-1", Role.reviewer),
        ("security-reviewer", Role.security_reviewer),
    ]
    built = build(APP, "job1", team)
    assert isinstance(built.root, _chain)
    coordinator, makers, reviewers = built.root.tasks
    assert coordinator.name == "godel.agent.coordinator" and coordinator.args == ("job1", "coordinator")
    assert isinstance(makers, chord) and isinstance(reviewers, chord)
    assert [t.args[1] for t in makers.tasks] == ["worker-1", "worker-2", "profiler"]
    assert makers.body.name == "godel.job.integrate"
    assert [t.name for t in reviewers.tasks] == ["godel.agent.reviewer", "godel.agent.security_reviewer"]
    assert reviewers.body.name == "godel.job.finalize"
    queues = {t["agent"]: t["queue"] for t in built.tasks}
    assert queues["profiler"] == "godel.profiler" and queues["security-reviewer"] == "godel.security"
    assert len({t["id"] for t in built.tasks}) == len(built.tasks) == 8
    assert all(sig.immutable for sig in [coordinator, *makers.tasks, *reviewers.tasks])


def test_single_worker_canvas_has_no_reviewer_chord() -> None:
    built = build(APP, "job2", [("worker-1", Role.worker)])
    assert "reviewer" not in repr(built.root)
    assert [t["name"] for t in built.tasks] == ["godel.agent.worker", "godel.job.integrate", "godel.job.finalize"]
