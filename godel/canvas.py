"""Turn a job's team into a Celery canvas.

Coordinator plans, then a chord of makers (Workers, Profiler, Optimizer)
whose body integrates their branches, then a chord of reviewers whose body
finalises the job. Signatures are immutable: every task reads what it needs
from the store, so a redelivered task sees the same inputs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, chain, chord, group
from celery.canvas import Signature

from godel.broker import FINALIZE, INTEGRATE, ROLE_QUEUES, TASK_NAMES
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


def build(app: Celery, job_id: str, agents: list[tuple[str, Role]]) -> Canvas:
    """``agents`` is the team as (name, role) pairs, coordinator first."""
    canvas = Canvas(root=chain())
    task_list = canvas.tasks

    def sig(name: str, queue: str, agent: str | None = None) -> Signature:
        task_id = str(uuid.uuid4())
        task_list.append({"id": task_id, "name": name, "queue": queue, "agent": agent})
        args = (job_id, agent) if agent else (job_id,)
        return app.signature(name, args=args, immutable=True, task_id=task_id, queue=queue)

    def agent_sig(name: str, role: Role) -> Signature:
        return sig(TASK_NAMES[role], ROLE_QUEUES[role], name)

    steps: list[Signature] = [agent_sig(n, r) for n, r in agents if r is Role.coordinator]
    makers = [agent_sig(n, r) for n, r in agents if r in MAKERS]
    steps.append(chord(group(makers), sig(INTEGRATE, "godel.control")))
    reviewers = [agent_sig(n, r) for n, r in agents if r in REVIEWERS]
    finalize = sig(FINALIZE, "godel.control")
    steps.append(chord(group(reviewers), finalize) if reviewers else finalize)
    canvas.root = chain(*steps)
    return canvas
