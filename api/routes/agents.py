"""Agents across jobs, and one agent's sessions (messages, tool calls, tokens)."""

from __future__ import annotations

from flask import Blueprint

from ..openapi import operation
from ..queries import agent_sessions, agents_page
from ..schemas import AgentOut, AgentQuery, AgentSessions, Page
from ..services import services
from .sessions import session_out

bp = Blueprint("agents", __name__, url_prefix="/api/v1")


@operation(bp, "/agents", query=AgentQuery, response=Page[AgentOut])
def list_agents(query: AgentQuery) -> Page[AgentOut]:
    """Agents of every job, newest first, filtered by state, role or job."""
    rows, total = agents_page(
        services().ctx.store,
        status=query.status,
        role=query.role,
        job_id=query.job_id,
        limit=query.limit,
        offset=query.offset,
    )
    return Page[AgentOut](
        items=[AgentOut.model_validate(a) for a in rows], total=total, limit=query.limit, offset=query.offset
    )


@operation(bp, "/jobs/<job_id>/agents/<name>/session", response=AgentSessions)
def agent_session(job_id: str, name: str) -> AgentSessions:
    """What one agent said and did: its sessions with messages, tool calls and tokens."""
    store = services().ctx.store
    job = store.job(job_id)
    agent = store.agent(job.id, name)
    items = session_out(store, agent_sessions(store, job.id, agent.name))
    return AgentSessions(
        job_id=job.id,
        agent=agent.name,
        items=items,
        input_tokens=sum(s.input_tokens for s in items),
        output_tokens=sum(s.output_tokens for s in items),
    )
