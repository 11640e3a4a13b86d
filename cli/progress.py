"""Live progress of one job from its events: one line per agent."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from godel.events import Event, EventType
from godel.storage.models import utcnow
from godel.storage.store import TERMINAL

STATE_STYLE = {"queued": "dim", "running": "cyan", "succeeded": "green", "failed": "red"}


class Board:
    """What the progress view knows, folded from events."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job_id = job["job_id"]
        self.status = job["status"]
        self.rows: dict[str, dict[str, Any]] = {
            a["name"]: {"role": a["role"], "state": a["state"], "started": None, "finished": None, "note": ""}
            for a in job["agents"]
        }

    def apply(self, event: Event) -> None:
        if event.type is EventType.job_finished:
            self.status = event.state or self.status
        elif event.type in (EventType.job_started, EventType.approval_given):
            self.status = "running"
        elif event.type is EventType.approval_requested:
            self.status = (
                f"awaiting approval ({event.message}): godel approve {self.job_id} | godel reject {self.job_id}"
            )
        elif event.type is EventType.revision_started:
            self.status = f"revision {event.state}: {event.message}"
        row = self.rows.get(event.agent or "")
        if row is None:
            return
        if event.type is EventType.agent_started:
            row.update(state="running", started=event.ts, finished=None)
        elif event.type is EventType.agent_finished:
            row.update(state=event.state, finished=event.ts)
        if event.message:
            row["note"] = event.message[:70]

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def render(self) -> Table:
        table = Table(title=f"job {self.job_id} · {self.status}", title_justify="left", header_style="bold")
        for column in ("agent", "role", "state", "elapsed"):
            table.add_column(column, no_wrap=True)
        table.add_column("last", overflow="ellipsis", no_wrap=True)
        for name, row in self.rows.items():
            style = STATE_STYLE.get(row["state"], "yellow")
            table.add_row(
                name, row["role"], f"[{style}]{row['state']}", _elapsed(row["started"], row["finished"]), row["note"]
            )
        return table


def _elapsed(started: datetime | None, finished: datetime | None) -> str:
    if not started:
        return ""
    seconds = int(((finished or utcnow()) - started).total_seconds())
    return f"{seconds // 60}:{seconds % 60:02d}"


def watch(job: dict[str, Any], events: Iterable[Event | None], console: Console | None = None) -> None:
    """Fold ``events`` until the job ends (or they run out); with a console, draw the board."""
    board = Board(job)
    live = Live(board.render(), console=console, refresh_per_second=4) if console else None
    if live:
        live.start()
    try:
        for event in events:
            if event:
                board.apply(event)
            if live:
                live.update(board.render())
            if board.finished:
                break
    finally:
        if live:
            live.stop()
            live.console.print()
