"""Typed events, fanned out through Redis Streams and persisted."""

from godel.events.bus import EventBus, job_stream
from godel.events.model import Event, EventType

__all__ = ["Event", "EventBus", "EventType", "job_stream"]
