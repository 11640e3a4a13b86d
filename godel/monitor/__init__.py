"""Flower-style monitoring of Godel's Celery workers, tasks and queues, with bounded memory.

Nothing here serves HTTP: the API layer wraps it. The pieces::

    from godel.broker import make_celery
    from godel.monitor import Monitor, control

    app = make_celery(redis_url)
    monitor = Monitor(app, max_tasks=10_000, on_event=push, on_evict=persist).start()
    ...
    monitor.stop()

``Monitor(app, *, max_tasks=10_000, on_event=None, on_evict=None, queues=(),
heartbeat_timeout=None, refresh_interval=15.0, inspect_timeout=1.0,
max_arg_length=256, max_workers=1000)``
    One daemon thread consumes Celery events (workers must run with ``-E``;
    Godel's app turns task events on) and reconnects with backoff when Redis
    drops. ``start()`` returns the monitor, ``stop()`` joins the thread, and it
    is a context manager. ``connected``, ``wait_connected(timeout)``,
    ``reconnects`` and ``last_error`` describe the connection.

    ``on_event(note)`` runs on the consumer thread after each event is applied,
    with ``{"type": <celery event type>, "timestamp": float | None, "task": {...}}``
    for ``task-*`` events or ``{..., "worker": {...}}`` for ``worker-online``,
    ``worker-heartbeat``, ``worker-offline`` and the monitor's own
    ``worker-lost`` (heartbeats stopped). Keep it quick, e.g. hand off to a
    Socket.IO emit; its exceptions are logged and swallowed.

    ``on_evict(task)`` gets each task dict that falls out of the ``max_tasks``
    cap (oldest finished first; unfinished ones only when none is finished),
    so the caller can persist it. It runs outside the state lock.

Snapshots (thread-safe, JSON-serialisable, fresh copies):
    ``workers() -> list[dict]`` and ``worker(hostname) -> dict`` (``NotFound``,
    field ``worker``): ``hostname``, ``online`` (a heartbeat within
    ``heartbeat_timeout``, default twice the worker's heartbeat interval, and no
    ``worker-offline``), ``last_heartbeat``, ``heartbeat_freq``, ``sw_ident``,
    ``sw_ver``, ``sw_sys``, ``pid``, ``loadavg``, ``active``, ``processed``,
    ``reserved``, ``pool`` (``{"implementation", "max_concurrency", "size"}``
    or None until inspected), ``queues``, ``uptime``, ``prefetch_count`` and
    the ``succeeded``/``failed``/``retried`` counts this monitor saw.

    ``tasks(state=None, name=None, worker=None, limit=100, offset=0) -> list[dict]``,
    newest first (``limit`` 1-1000; a bad ``state``/``limit``/``offset`` is a
    ``ValidationError`` naming it), and ``task(uuid) -> dict`` (``NotFound``,
    field ``task``): ``uuid``, ``name``, ``state`` (Celery's PENDING, RECEIVED,
    STARTED, SUCCESS, FAILURE, RETRY, REVOKED, REJECTED), ``args``, ``kwargs``
    and ``result`` (reprs cut to ``max_arg_length``), ``exception``,
    ``traceback``, ``worker``, ``queue``, ``retries``, ``runtime``, ``eta``,
    ``expires``, ``parent_id``, ``root_id``, ``terminated``, the event times
    ``sent``, ``received``, ``started``, ``succeeded``, ``failed``, ``retried``,
    ``revoked``, ``rejected`` and ``timestamp`` (of the current state).

    ``queues(extra=()) -> list[dict]``: ``{"name", "messages", "priorities":
    {"0": n, "3": n, "6": n, "9": n}}`` for ``godel.broker.ALL_QUEUES``, the
    ``queues`` given to the constructor and ``extra``, read from Redis now
    (``ServiceUnavailable`` when it cannot be reached).

    ``rates() -> dict``: ``{"windows": {"1m": 60, "5m": 300, "15m": 900},
    "all": {"succeeded": {"1m": per_minute, ...}, "failed": {...}},
    "tasks": {name: {"succeeded": {...}, "failed": {...}, "runtime":
    {"samples", "p50", "p90", "p99"}}}}``; runtimes are the last 1000
    successful runs' seconds.

    ``summary() -> dict``: ``{"tasks": {"total", "by_state", "evicted"},
    "workers": {"total", "online", "offline"}, "events", "monitor":
    {"connected", "reconnects", "last_error"}}``.

    ``refresh(worker=None) -> list[dict]`` asks workers for pool size,
    reserved tasks and queues now (the thread also does it when a worker
    appears and every ``refresh_interval`` seconds); call it after a pool
    change to show the new size at once.

Control (``godel.monitor.control``), each returning a dict for the audit log
(``{"action", "worker", ..., "replies": {hostname: reply}, "ok"}``); see that
module for the errors:
    ``ping(app, worker=None, *, timeout=1.0)``,
    ``inspect(app, method, worker=None, *, timeout=1.0)`` with method one of
    ``control.INSPECT_METHODS``,
    ``revoke(app, task_id, *, terminate=False, signal="SIGTERM", worker=None, timeout=1.0)``,
    ``pool_grow(app, worker, n=1, *, timeout=1.0)``,
    ``pool_shrink(app, worker, n=1, *, timeout=1.0)``,
    ``rate_limit(app, task_name, rate_limit, *, worker=None, timeout=1.0)``,
    ``shutdown(app, worker, *, timeout=1.0)``.
"""

from godel.monitor import control
from godel.monitor.consumer import Monitor
from godel.monitor.queues import QueueDepths, queue_names
from godel.monitor.state import TASK_STATES, MonitorState

__all__ = ["TASK_STATES", "Monitor", "MonitorState", "QueueDepths", "control", "queue_names"]
