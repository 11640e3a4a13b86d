"""Two transports, one set of operations: the local store and broker, or a remote API.

``GODEL_API_URL`` picks the remote one. Either way a command gets the same
dicts (the keys of ``godel jobs --format json``) and the same typed events,
so rendering does not care where they came from.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import click
from rich.console import Console

from godel import jobs, lifecycle, stack
from godel.client import Client, remote
from godel.config import Settings, get_settings
from godel.context import Context, build_context
from godel.errors import ValidationError
from godel.events import Event
from godel.storage.models import Job
from godel.storage.store import TERMINAL

STORE_CHECK_SECONDS = 5.0
"""How often the store is asked whether a job ended, in case its last event was missed."""

Confirm = Callable[[str], bool]


def job_summary(job: Job) -> dict[str, Any]:
    """The final JSON of ``godel do --json --wait`` and one row of ``godel jobs``."""
    return {
        "job_id": job.id,
        "status": job.status,
        "branch": job.branch if job.status == "succeeded" else None,
        "text": job.text,
        "intent": job.intent.get("intent"),
        "template": job.template,
        "runtime": job.runtime,
        "agents": [{"name": a.name, "role": a.role, "state": a.state} for a in job.agents],
        "cost_usd": round(job.cost_usd, 6),
        "summary": job.summary,
        "error": job.error,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


def ask(question: str) -> bool:
    """A yes/no question at the terminal; without one, refuse rather than guess."""
    if not sys.stdin.isatty():
        raise ValidationError(f"{question} needs confirmation; pass --yes to run it without asking", field="yes")
    from prompt_toolkit.shortcuts import confirm

    return bool(confirm(f"{question}?"))


class Backend(Protocol):
    def submit(self, request: jobs.SubmitRequest, *, yes: bool, say: Callable[[str], None]) -> dict[str, Any]: ...
    def job(self, job_id: str) -> dict[str, Any]: ...
    def detail(self, job_id: str, *, with_events: bool) -> dict[str, Any]: ...
    def jobs(self, *, status: str | None, limit: int) -> list[dict[str, Any]]: ...
    def follow(self, job_id: str) -> Iterator[Event | None]: ...
    def cancel(self, job_id: str) -> dict[str, Any]: ...
    def approve(self, job_id: str) -> dict[str, Any]: ...
    def reject(self, job_id: str, reason: str | None) -> dict[str, Any]: ...
    def rollback(self, job_id: str) -> list[str]: ...


class Local:
    """Straight to the core: this machine's store, Redis and workers (started when missing)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx: Context = build_context(settings)

    def submit(self, request: jobs.SubmitRequest, *, yes: bool, say: Callable[[str], None]) -> dict[str, Any]:
        prepared = jobs.prepare(self.ctx, request)
        if prepared.needs_confirmation() and not yes:
            reason = "a destructive intent" if prepared.destructive else "--require-approval"
            if not ask(f"Run {prepared.intent.intent.value} job ({reason}) on {prepared.repo}"):
                raise click.Abort()
        url, started = stack.ensure_redis(self.settings)
        if started:
            say(f"No Redis answered: started Godel's own at {url} (stop it with `godel down`).")
        if not stack.ping_workers(url, timeout=0.5, any_one=True):
            say("No Celery worker answers: starting the local stack (`godel up`).")
            stack.start_workers(self.settings, url)
        self.ctx = build_context(self.settings)  # the Redis URL may have just changed
        return job_summary(jobs.submit(self.ctx, prepared))

    def job(self, job_id: str) -> dict[str, Any]:
        return job_summary(self.ctx.store.job(job_id))

    def detail(self, job_id: str, *, with_events: bool) -> dict[str, Any]:
        job = self.ctx.store.job(job_id)
        record = job_summary(job)
        record.update(repo=job.repo_path, base_ref=job.base_ref, plan=job.plan, review=job.review)
        record["agents"] = [
            {
                "name": a.name,
                "role": a.role,
                "state": a.state,
                "branch": a.branch,
                "summary": a.summary,
                "cost_usd": a.cost_usd,
                "started_at": a.started_at,
                "finished_at": a.finished_at,
            }
            for a in job.agents
        ]
        record["tasks"] = [
            {"id": t.id, "name": t.name, "agent": t.agent, "state": t.state} for t in self.ctx.store.tasks(job.id)
        ]
        if with_events:
            record["events"] = [
                {"type": e.type, "agent": e.agent, "ts": e.ts, **e.data} for e in self.ctx.store.events(job.id)
            ]
        return record

    def jobs(self, *, status: str | None, limit: int) -> list[dict[str, Any]]:
        return [job_summary(j) for j in self.ctx.store.jobs(status=lifecycle.validate_status(status), limit=limit)]

    def follow(self, job_id: str) -> Iterator[Event | None]:
        import time

        checked = time.monotonic()
        for event in self.ctx.bus.follow(job_id, "0", block_ms=250):
            yield event
            if time.monotonic() - checked > STORE_CHECK_SECONDS:
                checked = time.monotonic()
                if self.ctx.store.job(job_id).status in TERMINAL:
                    return

    def cancel(self, job_id: str) -> dict[str, Any]:
        return job_summary(lifecycle.cancel(self.ctx, job_id))

    def approve(self, job_id: str) -> dict[str, Any]:
        return job_summary(lifecycle.approve(self.ctx, job_id))

    def reject(self, job_id: str, reason: str | None) -> dict[str, Any]:
        return job_summary(lifecycle.reject(self.ctx, job_id, reason))

    def rollback(self, job_id: str) -> list[str]:
        return lifecycle.rollback(self.ctx, job_id)


class Remote:
    """The same operations through ``GODEL_API_URL``; the server runs the core."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def submit(self, request: jobs.SubmitRequest, *, yes: bool, say: Callable[[str], None]) -> dict[str, Any]:
        options = request.model_dump(exclude={"text", "repo"})
        try:
            return self.client.submit(request.text, request.repo, confirm=yes, **options)
        except ValidationError as exc:
            if exc.field != "confirm" or not ask(f"Run this job on {request.repo} (the server asks: {exc.message})"):
                raise
            return self.client.submit(request.text, request.repo, confirm=True, **options)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.client.get(job_id)

    def detail(self, job_id: str, *, with_events: bool) -> dict[str, Any]:
        record = self.client.get(job_id)
        record["agents"] = record.pop("team", record.get("agents", []))
        record["tasks"] = self.client.tasks(job_id)
        if with_events:
            record["events"] = [{**e.pop("data", {}), **e} for e in self.client.events(job_id)["items"]]
        return record

    def jobs(self, *, status: str | None, limit: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.client.list(status=status, limit=limit)["items"]
        return items

    def follow(self, job_id: str) -> Iterator[Event | None]:
        for item in self.client.follow(job_id):
            yield Event.model_validate(item)
        yield None

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.client.cancel(job_id)

    def approve(self, job_id: str) -> dict[str, Any]:
        return self.client.approve(job_id)

    def reject(self, job_id: str, reason: str | None) -> dict[str, Any]:
        return self.client.reject(job_id, reason)

    def rollback(self, job_id: str) -> list[str]:
        undone: list[str] = self.client.rollback(job_id)["undone"]
        return undone


def backend(settings: Settings | None = None) -> Backend:
    settings = settings or get_settings()
    client = remote(settings)
    return Remote(client) if client else Local(settings)


def stderr() -> Console:
    return Console(stderr=True)
