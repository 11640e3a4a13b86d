"""Publish events to Redis Streams (one per job, plus a global one) and read them back.

Streams, not pub/sub: a reader that starts late, or reconnects with the last id
it saw, replays what it missed. Each event is also persisted, so history
outlives the stream's retention.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis

from godel.events.model import Event
from godel.storage.store import Store

JOB_STREAM = "godel:job:{job_id}:events"
GLOBAL_STREAM = "godel:events"
JOB_STREAM_MAXLEN = 10_000
"""Events kept per job stream; older ones remain in the database."""
GLOBAL_STREAM_MAXLEN = 100_000
STREAM_TTL = 7 * 24 * 3600
"""Seconds a finished job's stream lives in Redis."""


def job_stream(job_id: str) -> str:
    return JOB_STREAM.format(job_id=job_id)


class EventBus:
    def __init__(self, client: redis.Redis, store: Store) -> None:
        self.redis = client
        self.store = store

    def publish(self, event: Event) -> Event:
        key = job_stream(event.job_id)
        fields = event.to_fields()
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(key, fields, maxlen=JOB_STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
        pipe.xadd(GLOBAL_STREAM, fields, maxlen=GLOBAL_STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
        pipe.expire(key, STREAM_TTL)
        stream_id = pipe.execute()[0]
        event.id = str(stream_id)
        self.store.add_event(
            event.job_id, event.id, event.type.value, event.agent, event.ts, event.model_dump(mode="json")
        )
        return event

    def read(self, job_id: str, last_id: str = "0", *, block_ms: int | None = None, count: int = 500) -> list[Event]:
        """Events after ``last_id`` (``"0"`` replays all), waiting up to ``block_ms`` for new ones."""
        reply = self.redis.xread({job_stream(job_id): last_id}, count=count, block=block_ms)
        return [Event.from_entry(sid, fields) for _key, entries in reply or [] for sid, fields in entries]  # type: ignore[union-attr]

    def follow(self, job_id: str, last_id: str = "0", *, block_ms: int = 1000) -> Iterator[Event | None]:
        """Yield events forever; ``None`` when ``block_ms`` passes quietly, so callers can tick."""
        while True:
            events = self.read(job_id, last_id, block_ms=block_ms)
            if not events:
                yield None
            for event in events:
                last_id = event.id or last_id
                yield event
