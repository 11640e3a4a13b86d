"""Live progress of one job from its event stream: one line per agent."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from godel.context import Context
from godel.events import Event, EventType
from godel.storage.models import Job, utcnow
from godel.storage.store import TERMINAL

STORE_CHECK_SECONDS = 5.0
"""How often the store is asked whether the job ended, in case its last event was missed."""
STATE_STYLE = {"queued": "dim", "running": "cyan", "succeeded": "green", "failed": "red"}


class Board:
    """What the progress view knows, folded from events."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.status = job.status
        self.rows: dict[str, dict[str, Any]] = {
            a.name: {"role": a.role, "state": a.state, "started": a.started_at, "finished": a.finished_at, "note": ""}
            for a in job.agents
        }

    def apply(self, event: Event) -> None:
        row = self.rows.get(event.agent or "")
        if event.type is EventType.job_finished:
            self.status = event.state or self.status
        elif event.type in (EventType.job_started, EventType.approval_given):
            self.status = "running"
        elif event.type is EventType.approval_requested:
            self.status = (
                f"awaiting approval ({event.message}): godel approve {self.job.id} | godel reject {self.job.id}"
            )
        elif event.type is EventType.revision_started:
            self.status = f"revision {event.state}: {event.message}"
        if row is None:
            return
        if event.type is EventType.agent_started:
            row.update(state="running", started=event.ts, finished=None)
        elif event.type is EventType.agent_finished:
            row.update(state=event.state, finished=event.ts)
        if event.type is EventType.agent_queued or (event.type is EventType.revision_started and event.agent is None):
            return
        if event.message:
            row["note"] = event.message[:70]

    def render(self) -> Table:
        table = Table(title=f"job {self.job.id} · {self.status}", title_justify="left", header_style="bold")
        for column in ("agent", "role", "state", "elapsed"):
            table.add_column(column, no_wrap=True)
        table.add_column("last", overflow="ellipsis", no_wrap=True)
        for name, row in self.rows.items():
            table.add_row(
                name,
                row["role"],
                f"[{STATE_STYLE.get(row['state'], 'yellow')}]{row['state']}",
                _elapsed(row["started"], row["finished"]),
                row["note"],
            )
        return table


def _elapsed(started: datetime | None, finished: datetime | None) -> str:
    if not started:
        return ""
    seconds = int(((finished or utcnow()) - started).total_seconds())
    return f"{seconds // 60}:{seconds % 60:02d}"


def watch(ctx: Context, job: Job, console: Console | None = None) -> Job:
    """Follow the job until it ends; with a console, draw the board as it goes."""
    board = Board(job)
    checked = time.monotonic()
    live = Live(board.render(), console=console, refresh_per_second=4) if console else None
    if live:
        live.start()
    try:
        for event in ctx.bus.follow(job.id, "0", block_ms=250):
            if event:
                board.apply(event)
            if live:
                live.update(board.render())
            if board.status in TERMINAL:
                break
            if time.monotonic() - checked > STORE_CHECK_SECONDS:
                checked = time.monotonic()
                if ctx.store.job(job.id).status in TERMINAL:
                    break
    finally:
        if live:
            live.stop()
            live.console.print()
    return ctx.store.job(job.id)
