"""The event vocabulary every producer emits and every view consumes."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

from godel.storage.models import utcnow


class EventType(str, Enum):
    job_submitted = "job.submitted"
    job_started = "job.started"
    job_finished = "job.finished"
    job_cancel_requested = "job.cancel_requested"
    plan_ready = "plan.ready"
    agent_queued = "agent.queued"
    agent_started = "agent.started"
    agent_progress = "agent.progress"
    agent_finished = "agent.finished"
    job_integrated = "job.integrated"
    review_done = "review.done"
    merge_done = "merge.done"
    cost_recorded = "cost.recorded"
    budget_warning = "budget.warning"
    revision_started = "revision.started"
    approval_requested = "approval.requested"
    approval_given = "approval.given"


class Event(BaseModel):
    """One state change of a job; ``id`` is its Redis Stream id once published."""

    job_id: str
    type: EventType
    ts: datetime = Field(default_factory=utcnow)
    agent: str | None = None
    role: str | None = None
    state: str | None = None
    message: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None

    def to_fields(self) -> dict[str, str]:
        """Stream entries are flat strings: the event travels as one JSON field."""
        return {"event": self.model_dump_json(exclude={"id"})}

    @classmethod
    def from_entry(cls, stream_id: str, fields: dict[str, str]) -> Event:
        event = cls.model_validate_json(fields["event"])
        event.id = stream_id
        return event
