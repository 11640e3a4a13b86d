"""Celery workers, tasks, queues and rates as the monitor sees them, and audited worker control.

Reads need the read scope. Every control action (revoke, pool grow/shrink,
rate limit, shutdown) needs admin and leaves an audit record, whether it
succeeded or not, in ``godel:events`` and ``godel:audit``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from flask import Blueprint

from godel import audit
from godel.errors import GodelError
from godel.monitor import control

from ..auth import actor
from ..openapi import operation
from ..schemas import (
    ControlResult,
    MonitorSummary,
    MonitorTaskQuery,
    PoolRequest,
    QueueList,
    RateLimitRequest,
    Rates,
    RevokeRequest,
    TaskInfo,
    TaskInfoList,
    WorkerInfo,
    WorkerList,
)
from ..services import services

bp = Blueprint("monitor", __name__, url_prefix="/api/v1/monitor")
CONTROL_ERRORS = (404, 409, 503)


def _control(action: str, target: str | None, call: Callable[[], dict[str, Any]]) -> ControlResult:
    """Run one control call and audit its outcome, failures included."""
    svc = services()
    try:
        result = call()
    except GodelError as exc:
        failure = {"code": exc.code, "message": exc.message, "field": exc.field}
        audit.record(
            svc.ctx, audit.AuditRecord(action=action, actor=actor(), target=target, ok=False, data=failure)
        )
        raise
    entry = audit.record(
        svc.ctx,
        audit.AuditRecord(action=action, actor=actor(), target=target, ok=bool(result.get("ok")), data=result),
    )
    return ControlResult.model_validate({**result, "audit_id": entry.id})


@operation(bp, "/workers", response=WorkerList)
def list_workers() -> WorkerList:
    """Workers seen through Celery events: online state, pool, load, queues, counts."""
    return WorkerList.model_validate({"items": services().monitor.workers()})


@operation(bp, "/workers/<name>", response=WorkerInfo)
def get_worker(name: str) -> WorkerInfo:
    """One worker by hostname, e.g. celery@host."""
    return WorkerInfo.model_validate(services().monitor.worker(name))


@operation(bp, "/tasks", query=MonitorTaskQuery, response=TaskInfoList)
def list_tasks(query: MonitorTaskQuery) -> TaskInfoList:
    """Recent Celery tasks, newest first, filtered by state, name and worker."""
    items = services().monitor.tasks(
        state=query.state, name=query.name, worker=query.worker, limit=query.limit, offset=query.offset
    )
    return TaskInfoList.model_validate({"items": items})


@operation(bp, "/tasks/<task_id>", response=TaskInfo)
def get_task(task_id: str) -> TaskInfo:
    """One task by id, while the monitor still keeps it."""
    return TaskInfo.model_validate(services().monitor.task(task_id))


@operation(bp, "/queues", response=QueueList, errors=(503,))
def list_queues() -> QueueList:
    """Messages waiting in each queue, per priority, read from the broker now."""
    return QueueList.model_validate({"items": services().monitor.queues()})


@operation(bp, "/rates", response=Rates)
def rates() -> Rates:
    """Successes and failures per minute over 1, 5 and 15 minutes; runtime percentiles per task."""
    return Rates.model_validate(services().monitor.rates())


@operation(bp, "/summary", response=MonitorSummary)
def summary() -> MonitorSummary:
    """Task counts by state, workers online/offline, and the monitor's connection."""
    return MonitorSummary.model_validate(services().monitor.summary())


@operation(bp, "/tasks/<task_id>/revoke", "POST", body=RevokeRequest, response=ControlResult, scope="admin")
def revoke_task(task_id: str, body: RevokeRequest) -> ControlResult:
    """Revoke a task; with `terminate` also kill it if it runs (audited)."""
    app = services().monitor.app
    return _control(
        "task.revoke",
        task_id,
        lambda: control.revoke(app, task_id, terminate=body.terminate, signal=body.signal, worker=body.worker),
    )


def _pool(action: str, name: str, n: int) -> ControlResult:
    monitor = services().monitor
    change = control.pool_grow if action == "grow" else control.pool_shrink
    result = _control(f"worker.pool_{action}", name, lambda: change(monitor.app, name, n))
    with contextlib.suppress(GodelError):  # the new size shows at the next refresh anyway
        monitor.refresh(name)
    return result


@operation(
    bp,
    "/workers/<name>/pool/grow",
    "POST",
    body=PoolRequest,
    response=ControlResult,
    scope="admin",
    errors=CONTROL_ERRORS,
)
def pool_grow(name: str, body: PoolRequest) -> ControlResult:
    """Add `n` processes to a worker's pool (prefork pools; a threads pool refuses with 409). Audited."""
    return _pool("grow", name, body.n)


@operation(
    bp,
    "/workers/<name>/pool/shrink",
    "POST",
    body=PoolRequest,
    response=ControlResult,
    scope="admin",
    errors=CONTROL_ERRORS,
)
def pool_shrink(name: str, body: PoolRequest) -> ControlResult:
    """Remove `n` idle processes from a worker's pool. Audited."""
    return _pool("shrink", name, body.n)


@operation(
    bp, "/rate-limit", "POST", body=RateLimitRequest, response=ControlResult, scope="admin", errors=CONTROL_ERRORS
)
def set_rate_limit(body: RateLimitRequest) -> ControlResult:
    """Set or remove a task type's rate limit on one worker or all. Audited."""
    app = services().monitor.app
    return _control(
        "task.rate_limit",
        body.task_name,
        lambda: control.rate_limit(app, body.task_name, body.rate_limit, worker=body.worker),
    )


@operation(bp, "/workers/<name>/shutdown", "POST", response=ControlResult, scope="admin", errors=CONTROL_ERRORS)
def shutdown_worker(name: str) -> ControlResult:
    """Warm shutdown: the worker stops taking tasks and exits when its running ones finish. Audited."""
    app = services().monitor.app
    return _control("worker.shutdown", name, lambda: control.shutdown(app, name))
