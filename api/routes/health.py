"""Probes: live (the process answers), ready (Redis, database, a Celery worker), and details.

``/health/live`` and ``/health/ready`` need no key, so orchestrators can probe
them; they reveal only which dependency is down. ``/health`` adds worker names
and versions and needs the read scope.
"""

from __future__ import annotations

import time

from flask import Blueprint
from sqlalchemy import text

from godel import __version__, stack
from godel.storage.db import safe_url, session_scope

from ..openapi import Reply, operation
from ..schemas import Check, HealthDetail, Live, Ready
from ..services import Services, services

bp = Blueprint("health", __name__, url_prefix="/health")
PING_TIMEOUT = 1.0
"""Seconds to wait for Celery workers to answer ping."""


def _redis(svc: Services) -> Check:
    try:
        svc.ctx.redis.ping()
    except Exception as exc:  # any failure means not ready; say what it was
        return Check(name="redis", ok=False, detail=f"{svc.ctx.redis_url}: {exc}")
    return Check(name="redis", ok=True, detail=svc.ctx.redis_url)


def _database(svc: Services) -> Check:
    url = svc.ctx.store.url
    try:
        with session_scope(url) as s:
            s.execute(text("SELECT 1"))
    except Exception as exc:
        return Check(name="database", ok=False, detail=f"{safe_url(url)}: {type(exc).__name__}: {exc}")
    return Check(name="database", ok=True, detail=safe_url(url))


def _workers(svc: Services, redis_ok: bool) -> tuple[Check, list[str]]:
    if not redis_ok:
        return Check(name="workers", ok=False, detail="not checked: Redis is down"), []
    try:
        names = stack.ping_workers(svc.ctx.redis_url, timeout=PING_TIMEOUT)
    except Exception as exc:
        return Check(name="workers", ok=False, detail=f"ping failed: {exc}"), []
    if not names:
        return Check(name="workers", ok=False, detail="no Celery worker answered ping"), []
    return Check(name="workers", ok=True, detail=f"{len(names)} answered: {', '.join(names)}"), names


def _checks(svc: Services) -> tuple[list[Check], list[str]]:
    redis_check = _redis(svc)
    worker_check, names = _workers(svc, redis_check.ok)
    return [redis_check, _database(svc), worker_check], names


@operation(bp, "/live", response=Live, scope=None)
def live() -> Live:
    """The process is up and serving requests."""
    return Live(ok=True)


@operation(bp, "/ready", response=Ready, scope=None, errors=(503,))
def ready() -> Reply:
    """Redis answers, the database answers a query, and at least one Celery worker answers ping.

    503 when any is down; `checks` says which.
    """
    checks, _names = _checks(services())
    ok = all(c.ok for c in checks)
    return Reply(Ready(ok=ok, checks=checks), status=200 if ok else 503)


@operation(bp, "", response=HealthDetail, errors=(503,))
def health() -> Reply:
    """Readiness checks with worker names, version, auth mode and uptime."""
    svc = services()
    checks, names = _checks(svc)
    ok = all(c.ok for c in checks)
    detail = HealthDetail(
        ok=ok,
        checks=checks,
        version=__version__,
        auth=svc.auth,
        workers=names,
        uptime_seconds=round(time.monotonic() - svc.started, 3),
    )
    return Reply(detail, status=200 if ok else 503)
