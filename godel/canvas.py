"""Turn a job's team into Celery canvases.

The first canvas is: Coordinator plans, then a chord of makers (Workers,
Profiler, Optimizer) whose body integrates their branches, then a chord of
reviewers whose body finalises the job. A revision round re-runs some makers
and all reviewers; an approval gate cuts the canvas after planning and the rest
is enqueued on approval. Signatures are immutable: every task reads what it
needs from the store, so a redelivered task sees the same inputs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, chain, chord, group
from celery.canvas import Signature

from godel.broker import CONTROL_QUEUE, FINALIZE, GATE, INTEGRATE, PUBLISH, ROLE_QUEUES, TASK_NAMES
from godel.intents.schema import Role

MAKERS = (Role.worker, Role.profiler, Role.optimizer)
REVIEWERS = (Role.reviewer, Role.security_reviewer)


@dataclass
class Canvas:
    """The canvas plus the id of every task in it, for revoking and display."""

    root: Signature
    tasks: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> list[str]:
        return [f"{t['name']}[{t['agent'] or '-'}] -> {t['queue']}" for t in self.tasks]


class _Builder:
    def __init__(self, app: Celery, job_id: str, round_: int) -> None:
        self.app = app
        self.job_id = job_id
        self.round = round_
        self.tasks: list[dict[str, Any]] = []

    def sig(self, name: str, queue: str = CONTROL_QUEUE, agent: str | None = None) -> Signature:
        task_id = str(uuid.uuid4())
        self.tasks.append({"id": task_id, "name": name, "queue": queue, "agent": agent})
        args = (self.job_id, agent) if agent else (self.job_id,)
        # The round lets a task left over from a superseded round see that it is, and do nothing.
        kwargs = {"round": self.round}
        return self.app.signature(name, args=args, kwargs=kwargs, immutable=True, task_id=task_id, queue=queue)

    def agent(self, name: str, role: Role) -> Signature:
        return self.sig(TASK_NAMES[role], ROLE_QUEUES[role], name)


def build(
    app: Celery,
    job_id: str,
    agents: Sequence[tuple[str, Role]],
    *,
    plan: bool = True,
    gate: bool = False,
    makers: Sequence[str] | None = None,
    round_: int = 0,
) -> Canvas:
    """``agents`` is the team as (name, role) pairs, coordinator first.

    ``plan=False`` leaves the Coordinator out (after a gate, in a revision);
    ``gate=True`` stops after planning at an approval gate; ``makers`` limits
    which makers run (a revision round re-runs only the named ones).
    """
    b = _Builder(app, job_id, round_)
    steps: list[Signature] = [b.agent(n, r) for n, r in agents if r is Role.coordinator] if plan else []
    if gate:
        steps.append(b.sig(GATE))
        return Canvas(root=chain(*steps), tasks=b.tasks)
    chosen = [b.agent(n, r) for n, r in agents if r in MAKERS and (makers is None or n in makers)]
    steps.append(chord(group(chosen), b.sig(INTEGRATE)))
    reviewers = [b.agent(n, r) for n, r in agents if r in REVIEWERS]
    finalize = b.sig(FINALIZE)
    steps.append(chord(group(reviewers), finalize) if reviewers else finalize)
    return Canvas(root=chain(*steps), tasks=b.tasks)


def publish(app: Celery, job_id: str, round_: int = 0) -> Canvas:
    """The merge step alone, enqueued when a user approves a job paused before merge."""
    b = _Builder(app, job_id, round_)
    return Canvas(root=b.sig(PUBLISH), tasks=b.tasks)
