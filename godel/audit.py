"""Audit records of administrative actions (worker control, key changes).

An audit record goes to the global stream ``godel:events``, so live views see
it next to job events, and to ``godel:audit``, which is trimmed far less and is
what ``GET /api/v1/audit`` reads. Audit entries carry the field ``audit``
rather than ``event``: they are not job events and have no job id.

Each record is also a row of ``audit_events``, which outlives the stream's
trimming and Redis restarts.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import redis
from pydantic import BaseModel, Field

from godel.context import Context
from godel.events.bus import GLOBAL_STREAM, GLOBAL_STREAM_MAXLEN
from godel.storage.db import session_scope
from godel.storage.models import AuditEvent, utcnow

AUDIT_STREAM = "godel:audit"
AUDIT_STREAM_MAXLEN = 1_000_000
"""Audit entries kept in Redis; trimming is approximate, as for event streams."""
FIELD = "audit"
"""Stream field holding an audit record (job events use ``event``)."""


class AuditRecord(BaseModel):
    """Who did what to which target, and the outcome."""

    action: str = Field(description="e.g. worker.shutdown, task.revoke, key.create")
    actor: str | None = Field(None, description="API key id, or None when auth is off.")
    target: str | None = None
    ok: bool = True
    data: dict[str, Any] = Field(default_factory=dict)
    ts: datetime = Field(default_factory=utcnow)
    id: str | None = Field(None, description="Stream id in godel:audit once recorded.")


def record(ctx: Context, entry: AuditRecord) -> AuditRecord:
    """Publish the record to both streams and store it; returns it with its ``godel:audit`` id."""
    fields = {FIELD: entry.model_dump_json(exclude={"id"})}
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.xadd(AUDIT_STREAM, fields, maxlen=AUDIT_STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
    pipe.xadd(GLOBAL_STREAM, fields, maxlen=GLOBAL_STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
    entry.id = str(pipe.execute()[0])
    with session_scope(ctx.store.url) as s:
        s.add(AuditEvent(stream_id=entry.id, **entry.model_dump(exclude={"id"})))
    return entry


def from_fields(stream_id: str, fields: dict[str, str]) -> AuditRecord | None:
    """The audit record in a stream entry, or None when the entry is something else."""
    raw = fields.get(FIELD)
    if raw is None:
        return None
    entry = AuditRecord.model_validate(json.loads(raw))
    entry.id = stream_id
    return entry


def history(client: redis.Redis, *, limit: int = 100, before: str = "+") -> list[AuditRecord]:
    """The newest records first, older than ``before`` (a stream id, exclusive) when given."""
    end = before if before == "+" else f"({before}"
    entries = client.xrevrange(AUDIT_STREAM, max=end, min="-", count=limit)
    return [r for sid, fields in entries if (r := from_fields(str(sid), fields)) is not None]  # type: ignore[union-attr]
