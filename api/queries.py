"""Database reads the API needs beyond ``godel.storage.Store``, and the session fork.

These are filtered and counted listings (for pagination with a total), the
session tree, and time-window reads for the metrics views. They use the same
``session_scope`` as ``Store`` and work on SQLite and Postgres alike; they are
candidates to move into ``Store`` once another caller needs them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from godel.context import Context
from godel.errors import NotFound, ValidationError
from godel.events import Event, EventType, job_stream
from godel.storage.db import session_scope
from godel.storage.models import Agent, Cost, Job, Message, Session
from godel.storage.store import TERMINAL, Store

MAX_ANCESTORS = 1000
"""A parent chain longer than this is treated as a cycle."""


def _page(store: Store, query: Select[Any], limit: int, offset: int) -> tuple[list[Any], int]:
    with session_scope(store.url) as s:
        total = s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        rows = list(s.scalars(query.limit(limit).offset(offset)))
    return rows, int(total)


def jobs_page(
    store: Store, *, status: str | None, intent: str | None, limit: int, offset: int
) -> tuple[list[Job], int]:
    query = select(Job).options(selectinload(Job.agents)).order_by(Job.created_at.desc(), Job.id)
    if status:
        query = query.where(Job.status == status)
    if intent:
        query = query.where(Job.intent["intent"].as_string() == intent)
    return _page(store, query, limit, offset)


def agents_page(
    store: Store, *, status: str | None, role: str | None, job_id: str | None, limit: int, offset: int
) -> tuple[list[Agent], int]:
    query = select(Agent).order_by(Agent.id.desc())
    if status:
        query = query.where(Agent.state == status)
    if role:
        query = query.where(Agent.role == role)
    if job_id:
        query = query.where(Agent.job_id == job_id)
    return _page(store, query, limit, offset)


# events ---------------------------------------------------------------------


def stream_position(stream_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair: ``1717-3`` -> (1717, 3); ``0`` -> (0, 0)."""
    millis, _, seq = stream_id.partition("-")
    return int(millis), int(seq or 0)


def events_after(ctx: Context, job_id: str, after: str = "0", limit: int = 500) -> list[Event]:
    """The job's events after stream id ``after``, oldest first.

    The Redis Stream is read when it still holds the job's whole history (its
    first entry is ``job.submitted``); once the stream has expired or been
    trimmed, the persisted copies, which keep their stream ids, are used.
    """
    first = ctx.redis.xrange(job_stream(job_id), count=1)
    if first and Event.from_entry(*first[0]).type is EventType.job_submitted:  # type: ignore[index]
        return ctx.bus.read(job_id, after, count=limit)
    floor = stream_position(after)
    stored = [e for e in ctx.store.events(job_id, limit=1_000_000) if stream_position(e.stream_id) > floor]
    stored.sort(key=lambda e: stream_position(e.stream_id))
    return [Event.model_validate({**e.data, "id": e.stream_id}) for e in stored[:limit]]


# sessions -------------------------------------------------------------------


def session(store: Store, session_id: str) -> Session:
    with session_scope(store.url) as s:
        row = s.get(Session, session_id, options=[selectinload(Session.messages)])
        if row is None:
            raise NotFound(f"no session {session_id!r}", field="session")
        return row


def children(store: Store, session_id: str) -> list[Session]:
    with session_scope(store.url) as s:
        query = select(Session).where(Session.parent_id == session_id).order_by(Session.created_at, Session.id)
        return list(s.scalars(query))


def children_ids(store: Store, session_ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {sid: [] for sid in session_ids}
    if not session_ids:
        return found
    with session_scope(store.url) as s:
        query = select(Session.parent_id, Session.id).where(Session.parent_id.in_(session_ids))
        for parent, child in s.execute(query.order_by(Session.created_at, Session.id)):
            found[str(parent)].append(child)
    return found


def ancestors(store: Store, session_id: str) -> list[Session]:
    """Parent, grandparent, ... up to the root; nearest first."""
    chain: list[Session] = []
    current = session(store, session_id)
    with session_scope(store.url) as s:
        while current.parent_id and len(chain) < MAX_ANCESTORS:
            parent = s.get(Session, current.parent_id)
            if parent is None or any(p.id == parent.id for p in chain):
                break
            chain.append(parent)
            current = parent
    return chain


def agent_sessions(store: Store, job_id: str, agent: str) -> list[Session]:
    with session_scope(store.url) as s:
        query = (
            select(Session)
            .where(Session.job_id == job_id, Session.agent == agent)
            .options(selectinload(Session.messages))
            .order_by(Session.created_at, Session.id)
        )
        return list(s.scalars(query))


def fork(store: Store, session_id: str, message_id: int) -> Session:
    """A new session holding copies of ``session_id``'s messages up to ``message_id``."""
    with session_scope(store.url) as s:
        source = s.get(Session, session_id, options=[selectinload(Session.messages)])
        if source is None:
            raise NotFound(f"no session {session_id!r}", field="session")
        if not any(m.id == message_id for m in source.messages):
            raise ValidationError(f"session {session_id} has no message {message_id}", field="message_id")
        forked = Session(
            id=uuid.uuid4().hex[:16],
            job_id=source.job_id,
            agent=source.agent,
            runtime=source.runtime,
            model=source.model,
            parent_id=source.id,
            parent_message_id=message_id,
        )
        s.add(forked)
        s.flush()
        for message in source.messages:
            if message.id > message_id:
                break
            s.add(
                Message(
                    session_id=forked.id,
                    role=message.role,
                    content=message.content,
                    tool_calls=message.tool_calls,
                    input_tokens=message.input_tokens,
                    output_tokens=message.output_tokens,
                    created_at=message.created_at,
                )
            )
        new_id = forked.id
    return session(store, new_id)


# worktrees and metrics ------------------------------------------------------


def agents_with_worktrees(store: Store) -> list[tuple[Agent, str]]:
    """Agents whose row names a worktree, with their job's status."""
    with session_scope(store.url) as s:
        query = select(Agent, Job.status).join(Job, Job.id == Agent.job_id).where(Agent.worktree.is_not(None))
        return [(agent, str(status)) for agent, status in s.execute(query.order_by(Agent.id))]


def finished_jobs(store: Store, since: datetime) -> list[tuple[datetime, datetime]]:
    """(start, finish) of jobs that ended after ``since``; start is created_at when never started."""
    with session_scope(store.url) as s:
        query = select(Job.created_at, Job.started_at, Job.finished_at).where(
            Job.finished_at.is_not(None), Job.finished_at >= since, Job.status.in_(TERMINAL)
        )
        return [(started or created, finished) for created, started, finished in s.execute(query)]


def costs_since(store: Store, since: datetime) -> list[Cost]:
    with session_scope(store.url) as s:
        return list(s.scalars(select(Cost).where(Cost.created_at >= since).order_by(Cost.created_at)))
