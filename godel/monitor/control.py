"""Remote control of Celery workers: thin, validated calls over ``app.control``.

Each function checks its input before anything is sent (``ValidationError``
naming the field), sends one broadcast to one worker or to all, waits at
most ``timeout`` seconds for replies and returns a dict saying what was
asked and what each worker answered, ready for the API to record as an
audited event. A named worker that does not answer raises ``NotFound``
(field ``worker``); a named worker that refuses raises ``Conflict`` with its
reason. Broadcasts without a worker wait the whole timeout, since nobody
knows how many workers will answer.
"""

from __future__ import annotations

import re
import signal as signals
from typing import Any

from celery import Celery

from godel.errors import Conflict, NotFound, ServiceUnavailable, ValidationError
from godel.monitor.queues import BROKER_ERRORS

DEFAULT_TIMEOUT = 1.0
"""Seconds to wait for replies; a healthy worker answers in milliseconds."""
MAX_TIMEOUT = 60.0
INSPECT_METHODS = ("active", "reserved", "scheduled", "registered", "revoked", "stats", "active_queues")
"""What ``inspect`` may ask. ``conf`` is left out on purpose: it carries the broker URL and its password."""

_RATE_LIMIT = re.compile(r"^\d+(\.\d+)?(/[smh])?$")


def _destination(worker: str | None, *, required: bool) -> str | None:
    if worker is None and not required:
        return None
    if not isinstance(worker, str) or not worker.strip():
        raise ValidationError("name a worker, such as celery@host", field="worker")
    return worker.strip()


def _timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
        raise ValidationError(f"must be between 0 and {MAX_TIMEOUT:g} seconds", field="timeout")
    return float(timeout)


def _broadcast(
    app: Celery,
    command: str,
    worker: str | None,
    timeout: float,
    arguments: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Send ``command``; replies by worker. A named worker must answer."""
    try:
        replies = app.control.broadcast(
            command,
            arguments=arguments or {},
            destination=[worker] if worker else None,
            reply=True,
            timeout=timeout,
            # One named worker: return as soon as it answers rather than after the timeout.
            limit=1 if worker else None,
        )
    except BROKER_ERRORS as exc:
        raise ServiceUnavailable(f"cannot reach the broker to send {command!r}: {exc}") from exc
    merged: dict[str, Any] = {}
    for reply in replies or []:
        merged.update(reply)
    if worker and worker not in merged:
        raise NotFound(f"worker {worker!r} did not answer within {timeout:g}s", field="worker")
    return merged


def _errors(replies: dict[str, Any]) -> dict[str, str]:
    return {host: str(r["error"]) for host, r in replies.items() if isinstance(r, dict) and "error" in r}


def _outcome(action: str, worker: str | None, replies: dict[str, Any], **details: Any) -> dict[str, Any]:
    errors = _errors(replies)
    if worker and worker in errors:
        raise Conflict(f"worker {worker!r} refused {action}: {errors[worker]}", field="worker")
    return {"action": action, "worker": worker, **details, "replies": replies, "ok": bool(replies) and not errors}


def _signal_name(value: str | int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return signals.Signals(value).name
        except ValueError:
            pass
    elif isinstance(value, str):
        name = value.strip().upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if name in signals.Signals.__members__:
            return name
    raise ValidationError(f"{value!r} is not a signal such as SIGTERM or SIGKILL", field="signal")


def _rate_limit(value: str | float | None) -> str | None:
    """Celery's rate limit (``10/s``, ``100/m``, ``5/h``, or tasks per second); None or 0 removes it."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return f"{value:g}"
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text in ("", "0"):
            return None
        if _RATE_LIMIT.match(text):
            return text
    raise ValidationError(f"{value!r} is not a rate limit such as 10/s, 100/m or 5/h", field="rate_limit")


def ping(app: Celery, worker: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Which workers answer (all, or the one named)."""
    worker = _destination(worker, required=False)
    replies = _broadcast(app, "ping", worker, _timeout(timeout))
    return _outcome("ping", worker, replies)


def inspect(app: Celery, method: str, worker: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """One of ``INSPECT_METHODS`` (active, reserved, registered, stats, active_queues, ...) per worker."""
    if method not in INSPECT_METHODS:
        raise ValidationError(f"must be one of {', '.join(INSPECT_METHODS)}", field="method")
    worker = _destination(worker, required=False)
    replies = _broadcast(app, method, worker, _timeout(timeout))
    return {"action": "inspect", "method": method, "worker": worker, "replies": replies}


def revoke(
    app: Celery,
    task_id: str,
    *,
    terminate: bool = False,
    signal: str | int = "SIGTERM",
    worker: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Revoke a task everywhere (or on one worker); ``terminate`` also kills it if running.

    Without ``terminate`` a running task finishes; queued copies are
    discarded when a worker that heard the revoke picks them up.
    """
    if not isinstance(task_id, str) or not task_id.strip():
        raise ValidationError("name the task id to revoke", field="task_id")
    name = _signal_name(signal)
    worker = _destination(worker, required=False)
    arguments = {"task_id": task_id.strip(), "terminate": bool(terminate), "signal": name}
    replies = _broadcast(app, "revoke", worker, _timeout(timeout), arguments)
    details = {"task_id": arguments["task_id"], "terminate": bool(terminate), "signal": name if terminate else None}
    return _outcome("revoke", worker, replies, **details)


def _pool(app: Celery, action: str, worker: str, n: int, timeout: float) -> dict[str, Any]:
    target = _destination(worker, required=True)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValidationError("must be a whole number of at least 1", field="n")
    replies = _broadcast(app, action, target, _timeout(timeout), {"n": n})
    return _outcome(action, target, replies, n=n)


def pool_grow(app: Celery, worker: str, n: int = 1, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Add ``n`` processes (or threads) to a worker's pool; prefork, eventlet and gevent pools support it."""
    return _pool(app, "pool_grow", worker, n, timeout)


def pool_shrink(app: Celery, worker: str, n: int = 1, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Remove ``n`` idle processes from a worker's pool (refused when they are all busy)."""
    return _pool(app, "pool_shrink", worker, n, timeout)


def rate_limit(
    app: Celery,
    task_name: str,
    rate_limit: str | float | None,
    *,
    worker: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Set (or with None, remove) the rate limit of one task type on one worker or all."""
    if not isinstance(task_name, str) or not task_name.strip():
        raise ValidationError("name the task type, such as godel.agent.worker", field="task_name")
    limit = _rate_limit(rate_limit)
    worker = _destination(worker, required=False)
    arguments = {"task_name": task_name.strip(), "rate_limit": limit}
    replies = _broadcast(app, "rate_limit", worker, _timeout(timeout), arguments)
    if worker and _errors(replies).get(worker) == "unknown task":
        raise NotFound(f"worker {worker!r} has no task type {task_name!r}", field="task_name")
    return _outcome("rate_limit", worker, replies, task_name=task_name.strip(), rate_limit=limit)


def shutdown(app: Celery, worker: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Warm-shut down one worker: it stops taking tasks and exits when the running ones finish.

    Celery's shutdown sends no reply, so the worker is pinged first to tell
    an unknown name from a worker that is going away.
    """
    target = _destination(worker, required=True)
    wait = _timeout(timeout)
    _broadcast(app, "ping", target, wait)
    try:
        app.control.broadcast("shutdown", destination=[target], reply=False)
    except BROKER_ERRORS as exc:
        raise ServiceUnavailable(f"cannot reach the broker to send 'shutdown': {exc}") from exc
    return {"action": "shutdown", "worker": target, "replies": {}, "ok": True}
