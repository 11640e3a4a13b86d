"""Queue depths read straight from the Redis broker.

Celery's Redis transport keeps each queue as a Redis list named after it,
plus one list per priority step (``name\\x06\\x163``, ``...6``, ``...9``), so
a depth is the sum of their lengths. The keys are read through the broker
channel's own client, so key prefixes, the database number and TLS options
are exactly the ones workers use. Messages a worker has taken but not yet
acknowledged are not in these lists.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from godel.broker import ALL_QUEUES
from godel.errors import ServiceUnavailable, ValidationError

BROKER_ERRORS = (OperationalError, redis.ConnectionError, redis.TimeoutError, OSError)
"""What a dropped or unreachable broker raises, through kombu or redis-py."""


def queue_names(extra: Iterable[str] = ()) -> list[str]:
    """Godel's queues, then ``extra`` names, each once, in that order."""
    names: list[str] = []
    for name in [*ALL_QUEUES, *extra]:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("queue names must be non-empty strings", field="queues")
        if name not in names:
            names.append(name)
    return names


class QueueDepths:
    """Reads depths over one lazily opened broker connection, reopened after a failure."""

    def __init__(self, app: Celery, extra: Iterable[str] = ()) -> None:
        self.app = app
        self.names = queue_names(extra)
        self._lock = threading.Lock()
        self._connection: Any = None

    def read(self, extra: Iterable[str] = ()) -> list[dict[str, Any]]:
        """``[{"name", "messages", "priorities": {"0": n, "3": n, ...}}]`` for every known queue."""
        names = queue_names([*self.names, *extra])
        with self._lock:
            try:
                return self._read(names)
            except BROKER_ERRORS as exc:
                self._close()
                raise ServiceUnavailable(f"cannot read queue depths from the broker: {exc}") from exc

    def _read(self, names: list[str]) -> list[dict[str, Any]]:
        if self._connection is None:
            connection = self.app.connection_for_read()
            # One attempt: the caller is a web request, not a retry loop.
            connection.ensure_connection(max_retries=0)
            self._connection = connection
        channel = self._connection.default_channel
        steps = [int(step) for step in channel.priority_steps]
        with channel.conn_or_acquire() as client:
            pipe = client.pipeline(transaction=False)
            for name in names:
                for step in steps:
                    pipe.llen(f"{name}{channel.sep}{step}" if step else name)
            lengths = [int(n) for n in pipe.execute()]
        out = []
        for i, name in enumerate(names):
            counts = lengths[i * len(steps) : (i + 1) * len(steps)]
            out.append(
                {
                    "name": name,
                    "messages": sum(counts),
                    "priorities": {str(step): count for step, count in zip(steps, counts, strict=True)},
                }
            )
        return out

    def _close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # already broken; dropping it is the point
                self._connection.release()
            self._connection = None

    def close(self) -> None:
        with self._lock:
            self._close()
