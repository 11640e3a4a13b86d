"""The session tree: a session, its forks (children), its ancestors, and forking at a message."""

from __future__ import annotations

from flask import Blueprint

from godel.storage.models import Session
from godel.storage.store import Store

from .. import queries
from ..openapi import Reply, operation
from ..schemas import ForkRequest, MessageOut, SessionBrief, SessionList, SessionOut
from ..services import services

bp = Blueprint("sessions", __name__, url_prefix="/api/v1/sessions")


def session_out(store: Store, sessions: list[Session]) -> list[SessionOut]:
    """Sessions with their messages, token totals and the ids of their forks."""
    forks = queries.children_ids(store, [s.id for s in sessions])
    return [
        SessionOut(
            **SessionBrief.model_validate(s).model_dump(),
            messages=[MessageOut.model_validate(m) for m in s.messages],
            input_tokens=sum(m.input_tokens for m in s.messages),
            output_tokens=sum(m.output_tokens for m in s.messages),
            tool_calls=sum(len(m.tool_calls or []) for m in s.messages),
            children=forks[s.id],
        )
        for s in sessions
    ]


@operation(bp, "/<session_id>", response=SessionOut)
def get_session(session_id: str) -> SessionOut:
    """One session with its messages; `parent_id`/`parent_message_id` say where it was forked."""
    store = services().ctx.store
    return session_out(store, [queries.session(store, session_id)])[0]


@operation(bp, "/<session_id>/children", response=SessionList)
def session_children(session_id: str) -> SessionList:
    """Sessions forked from this one, oldest first."""
    store = services().ctx.store
    queries.session(store, session_id)
    return SessionList(items=[SessionBrief.model_validate(s) for s in queries.children(store, session_id)])


@operation(bp, "/<session_id>/ancestors", response=SessionList)
def session_ancestors(session_id: str) -> SessionList:
    """The chain of sessions this one was forked from, nearest first."""
    store = services().ctx.store
    return SessionList(items=[SessionBrief.model_validate(s) for s in queries.ancestors(store, session_id)])


@operation(bp, "/<session_id>/fork", "POST", body=ForkRequest, response=SessionOut, status=201)
def fork_session(session_id: str, body: ForkRequest) -> Reply:
    """A new session holding this one's messages up to `message_id`, linked to it as parent."""
    store = services().ctx.store
    forked = queries.fork(store, session_id, body.message_id)
    return Reply(session_out(store, [forked])[0], headers={"Location": f"{bp.url_prefix}/{forked.id}"})
