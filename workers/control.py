"""Bookkeeping tasks between the agents: integrate, finalize, gate, publish, expire."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from godel import lifecycle, review, steps
from godel.broker import EXPIRE, FINALIZE, GATE, INTEGRATE, PUBLISH
from godel.context import get_context


@shared_task(name=INTEGRATE, bind=True, acks_late=True, reject_on_worker_lost=True)
def integrate(self: Task, job_id: str, round: int = 0) -> dict[str, Any]:
    return steps.tracked(get_context(), job_id, self.request.id, review.integrate, round)


@shared_task(name=FINALIZE, bind=True, acks_late=True, reject_on_worker_lost=True)
def finalize(self: Task, job_id: str, round: int = 0) -> dict[str, Any]:
    return steps.tracked(get_context(), job_id, self.request.id, review.finalize, round)


@shared_task(name=GATE, bind=True, acks_late=True, reject_on_worker_lost=True)
def gate(self: Task, job_id: str, round: int = 0) -> dict[str, Any]:
    return steps.tracked(get_context(), job_id, self.request.id, review.gate, round)


@shared_task(name=PUBLISH, bind=True, acks_late=True, reject_on_worker_lost=True)
def publish(self: Task, job_id: str, round: int = 0) -> dict[str, Any]:
    return steps.tracked(get_context(), job_id, self.request.id, review.publish, round)


@shared_task(name=EXPIRE, acks_late=True)
def expire(job_id: str) -> bool:
    return lifecycle.expire(get_context(), job_id)
