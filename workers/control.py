"""Bookkeeping tasks between the agents: integrate, finalize, expire."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from godel import jobs, steps
from godel.broker import EXPIRE, FINALIZE, INTEGRATE
from godel.context import get_context


@shared_task(name=INTEGRATE, acks_late=True, reject_on_worker_lost=True)
def integrate(job_id: str) -> dict[str, Any]:
    return steps.integrate(get_context(), job_id)


@shared_task(name=FINALIZE, acks_late=True, reject_on_worker_lost=True)
def finalize(job_id: str) -> dict[str, Any]:
    return steps.finalize(get_context(), job_id)


@shared_task(name=EXPIRE, acks_late=True)
def expire(job_id: str) -> bool:
    return jobs.expire(get_context(), job_id)
