"""Reads and writes of jobs, agents, tasks, events and costs.

Every caller (CLI, Celery task, API view) goes through these functions, so a
state rule such as "a finished job never changes status" lives in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import selectinload

from godel.errors import NotFound
from godel.storage.db import session_scope
from godel.storage.models import Agent, Cost, Event, Job, Message, Session, Task, utcnow

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out", "budget_exceeded", "changes_requested"})
"""Job states that never change again."""


class Store:
    """The database behind one URL."""

    def __init__(self, url: str) -> None:
        self.url = url

    # jobs -----------------------------------------------------------------

    def add_job(self, job: Job, agents: Iterable[Agent]) -> None:
        with session_scope(self.url) as s:
            s.add(job)
            s.flush()
            for agent in agents:
                agent.job_id = job.id
                s.add(agent)

    def job(self, job_id: str) -> Job:
        with session_scope(self.url) as s:
            job = s.get(Job, job_id, options=[selectinload(Job.agents)])
            if job is None:
                job = self._by_prefix(s, job_id)
            return job

    def find_job(self, job_id: str) -> Job | None:
        """The job with exactly this id, or None (no prefix matching: for tasks, not people)."""
        with session_scope(self.url) as s:
            return s.get(Job, job_id, options=[selectinload(Job.agents)])

    def _by_prefix(self, s: DbSession, prefix: str) -> Job:
        # Users type the first few characters of an id, as with git.
        rows = s.scalars(select(Job).where(Job.id.startswith(prefix)).options(selectinload(Job.agents)).limit(2)).all()
        if len(rows) != 1 or len(prefix) < 4:
            raise NotFound(f"no job {prefix!r}", field="job")
        return rows[0]

    def jobs(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> list[Job]:
        with session_scope(self.url) as s:
            query = select(Job).options(selectinload(Job.agents)).order_by(Job.created_at.desc())
            if status:
                query = query.where(Job.status == status)
            return list(s.scalars(query.limit(limit).offset(offset)))

    def update_job(self, job_id: str, **values: Any) -> None:
        with session_scope(self.url) as s:
            s.execute(update(Job).where(Job.id == job_id).values(**values))

    def start_job(self, job_id: str) -> bool:
        """Mark the job running once; True for the caller that did it."""
        with session_scope(self.url) as s:
            result = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "queued")
                .values(status="running", started_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def finish_job(self, job_id: str, status: str, **values: Any) -> bool:
        """Move a job to a terminal state unless it is in one; True if this call did."""
        assert status in TERMINAL, status
        with session_scope(self.url) as s:
            result = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status.not_in(TERMINAL))
                .values(status=status, finished_at=utcnow(), **values)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # agents ---------------------------------------------------------------

    def agent(self, job_id: str, name: str) -> Agent:
        with session_scope(self.url) as s:
            agent = s.scalars(select(Agent).where(Agent.job_id == job_id, Agent.name == name)).first()
            if agent is None:
                raise NotFound(f"job {job_id} has no agent {name!r}", field="agent")
            return agent

    def update_agent(self, job_id: str, name: str, **values: Any) -> None:
        with session_scope(self.url) as s:
            s.execute(update(Agent).where(Agent.job_id == job_id, Agent.name == name).values(**values))

    # tasks ----------------------------------------------------------------

    def upsert_task(self, task_id: str, job_id: str, **values: Any) -> None:
        with session_scope(self.url) as s:
            task = s.get(Task, task_id)
            if task is None:
                values.setdefault("state", "PENDING")
                values.setdefault("name", "")
                s.add(Task(id=task_id, job_id=job_id, **values))
            else:
                for key, value in values.items():
                    setattr(task, key, value)

    def add_tasks(self, job_id: str, tasks: Sequence[dict[str, Any]], options: dict[str, Any]) -> None:
        """Record a canvas's tasks and the job's new options in one transaction."""
        with session_scope(self.url) as s:
            s.execute(update(Job).where(Job.id == job_id).values(options=options))
            s.add_all(
                Task(id=t["id"], job_id=job_id, name=t["name"], queue=t["queue"], agent=t["agent"], state="PENDING")
                for t in tasks
            )

    def revoke_pending(self, job_id: str) -> None:
        with session_scope(self.url) as s:
            s.execute(update(Task).where(Task.job_id == job_id, Task.state == "PENDING").values(state="REVOKED"))

    def tasks(self, job_id: str) -> list[Task]:
        with session_scope(self.url) as s:
            return list(s.scalars(select(Task).where(Task.job_id == job_id).order_by(Task.started_at)))

    # events ---------------------------------------------------------------

    def add_event(
        self, job_id: str, stream_id: str, type_: str, agent: str | None, ts: datetime, data: dict[str, Any]
    ) -> None:
        with session_scope(self.url) as s:
            s.add(Event(job_id=job_id, stream_id=stream_id, type=type_, agent=agent, ts=ts, data=data))

    def events(self, job_id: str, *, after_id: int = 0, limit: int = 1000) -> list[Event]:
        with session_scope(self.url) as s:
            query = select(Event).where(Event.job_id == job_id, Event.id > after_id)
            return list(s.scalars(query.order_by(Event.id).limit(limit)))

    # costs ----------------------------------------------------------------

    def add_cost(self, cost: Cost) -> float:
        """Record a step's spend and return the job's new total."""
        with session_scope(self.url) as s:
            s.add(cost)
            s.flush()
            total = s.scalar(select(func.coalesce(func.sum(Cost.cost_usd), 0.0)).where(Cost.job_id == cost.job_id))
            s.execute(update(Job).where(Job.id == cost.job_id).values(cost_usd=total))
            if cost.agent:
                s.execute(
                    update(Agent)
                    .where(Agent.job_id == cost.job_id, Agent.name == cost.agent)
                    .values(cost_usd=Agent.cost_usd + cost.cost_usd)
                )
            return float(total or 0.0)

    def costs(self, job_id: str | None = None) -> Sequence[Cost]:
        with session_scope(self.url) as s:
            query = select(Cost).order_by(Cost.created_at)
            if job_id:
                query = query.where(Cost.job_id == job_id)
            return list(s.scalars(query))

    # sessions -------------------------------------------------------------

    def add_session(self, session: Session, messages: Iterable[Message]) -> None:
        with session_scope(self.url) as s:
            s.add(session)
            s.flush()
            for message in messages:
                message.session_id = session.id
                s.add(message)

    def sessions(self, job_id: str) -> list[Session]:
        with session_scope(self.url) as s:
            query = select(Session).where(Session.job_id == job_id).options(selectinload(Session.messages))
            return list(s.scalars(query.order_by(Session.created_at)))
