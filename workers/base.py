"""The one shape every agent task has: call the core step with the task's id."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from godel.broker import TASK_NAMES
from godel.context import get_context
from godel.intents.schema import Role
from godel.steps import run_agent


def agent_task(role: Role) -> Any:
    """Register the Celery task that plays ``role``."""

    @shared_task(name=TASK_NAMES[role], bind=True, acks_late=True, reject_on_worker_lost=True)
    def play(self: Task, job_id: str, agent: str, round: int = 0) -> dict[str, Any]:
        return run_agent(get_context(), job_id, agent, self.request.id, round)

    return play
