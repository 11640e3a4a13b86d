"""The Celery app: queues per role, late acks, routing by task name.

Core code builds canvases against this app without importing the task
modules; the worker process (``godel.workers.app``) imports them.
"""

from __future__ import annotations

import functools

from celery import Celery
from kombu.entity import Queue

from godel.intents.schema import Role

ROLE_QUEUES = {
    Role.coordinator: "godel.coordinator",
    Role.worker: "godel.worker",
    Role.reviewer: "godel.reviewer",
    Role.security_reviewer: "godel.security",
    Role.profiler: "godel.profiler",
    Role.optimizer: "godel.optimizer",
}
"""Each role's queue, so workers can be scaled (or placed) per role."""
CONTROL_QUEUE = "godel.control"
"""Bookkeeping tasks: integrate, finalize, expire."""
ALL_QUEUES = [*ROLE_QUEUES.values(), CONTROL_QUEUE]

TASK_NAMES = {role: f"godel.agent.{role.value}" for role in Role}
INTEGRATE = "godel.job.integrate"
FINALIZE = "godel.job.finalize"
GATE = "godel.job.gate"
PUBLISH = "godel.job.publish"
EXPIRE = "godel.job.expire"

VISIBILITY_TIMEOUT = 6 * 3600
"""Seconds before Redis redelivers an unacknowledged task; longer than any job."""


def routes() -> dict[str, dict[str, str]]:
    table = {TASK_NAMES[role]: {"queue": queue} for role, queue in ROLE_QUEUES.items()}
    table.update({name: {"queue": CONTROL_QUEUE} for name in (INTEGRATE, FINALIZE, GATE, PUBLISH, EXPIRE)})
    return table


def kombu_url(redis_url: str) -> str:
    """Kombu spells redis-py's ``unix://`` socket URLs ``redis+socket://``."""
    return "redis+socket://" + redis_url[len("unix://") :] if redis_url.startswith("unix://") else redis_url


@functools.lru_cache(maxsize=8)
def make_celery(redis_url: str) -> Celery:
    url = kombu_url(redis_url)
    app = Celery("godel", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_queues=[Queue(name) for name in ALL_QUEUES],  # type: ignore[no-untyped-call]
        task_default_queue=CONTROL_QUEUE,
        task_routes=routes(),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_track_started=True,
        task_send_sent_event=True,
        worker_send_task_events=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        result_expires=7 * 24 * 3600,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone="UTC",
    )
    return app
