"""The monitor: one thread folding Celery events into bounded state, and the snapshot API over it.

Celery's events travel over Redis pub/sub, so nothing is buffered while the
thread is disconnected. It therefore reconnects on its own with a capped
backoff and, on connecting, asks every worker for a heartbeat (Celery's
``wakeup``); tasks resume from the next event each one emits. Heartbeats
carry no pool size or reserved count, so the same thread asks workers for
those with ``inspect`` when one appears and every ``refresh_interval``
seconds after.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from celery import Celery

from godel.errors import ServiceUnavailable, ValidationError
from godel.monitor.queues import BROKER_ERRORS, QueueDepths
from godel.monitor.state import MAX_ARG_LENGTH, MAX_WORKERS, EvictHook, MonitorState

log = logging.getLogger(__name__)

EventHook = Callable[[dict[str, Any]], None]

RECONNECT_MIN = 0.5
"""Seconds before the first reconnection attempt; doubled per failure up to ``RECONNECT_MAX``."""
RECONNECT_MAX = 10.0
HOUSEKEEPING_EVERY = 0.5
"""Seconds between expiry and refresh checks, which run between events on the consumer thread."""
INSPECTIONS = ("stats", "reserved", "active_queues")
"""What a refresh asks each worker: pool size and concurrency, reserved tasks, consumed queues."""


class Monitor:
    """Live view of a Celery app's workers, tasks and queues (see ``godel.monitor``)."""

    def __init__(
        self,
        app: Celery,
        *,
        max_tasks: int = 10_000,
        on_event: EventHook | None = None,
        on_evict: EvictHook | None = None,
        queues: Iterable[str] = (),
        heartbeat_timeout: float | None = None,
        refresh_interval: float = 15.0,
        inspect_timeout: float = 1.0,
        max_arg_length: int = MAX_ARG_LENGTH,
        max_workers: int = MAX_WORKERS,
    ) -> None:
        for field, value in (("refresh_interval", refresh_interval), ("inspect_timeout", inspect_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValidationError("must be greater than zero", field=field)
        self.app = app
        self.state = MonitorState(
            max_tasks=max_tasks,
            max_workers=max_workers,
            max_arg_length=max_arg_length,
            heartbeat_timeout=heartbeat_timeout,
            on_evict=on_evict,
        )
        self.refresh_interval = float(refresh_interval)
        self.inspect_timeout = float(inspect_timeout)
        self._on_event = on_event
        self._depths = QueueDepths(app, queues)
        self._node_id = f"godel-monitor-{uuid.uuid4().hex[:12]}"
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._receiver: Any = None
        self._backoff = RECONNECT_MIN
        self._next_housekeeping = 0.0
        self.reconnects = 0
        self.last_error: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Monitor:
        """Start the consumer thread (once); returns self so ``Monitor(app).start()`` reads well."""
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="godel-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming and wait for the thread (at most about a second when connected)."""
        self._stopping.set()
        receiver = self._receiver
        if receiver is not None:
            receiver.should_stop = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._depths.close()

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def connected(self) -> bool:
        """True while the consumer holds a broker connection and is receiving."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # -- the consumer thread ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._consume()
            except Exception as exc:
                self._connected.clear()
                if self._stopping.is_set():
                    break
                self.reconnects += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("monitor lost the broker (%s); reconnecting in %.1fs", self.last_error, self._backoff)
                self._stopping.wait(self._backoff)
                self._backoff = min(self._backoff * 2, RECONNECT_MAX)
        self._connected.clear()

    def _consume(self) -> None:
        with self.app.connection_for_read() as connection:
            # One attempt each: retrying is _run's job, where stop() can interrupt the wait.
            connection.ensure_connection(max_retries=0)
            receiver = self.app.events.Receiver(connection, handlers={"*": self._handle}, node_id=self._node_id)
            receiver.connect_max_retries = 0
            receiver.on_iteration = self._on_iteration
            self._receiver = receiver
            if self._stopping.is_set():
                return
            receiver.capture(limit=None, timeout=None, wakeup=True)

    def _handle(self, event: dict[str, Any]) -> None:
        try:
            note = self.state.apply(event)
        except Exception:
            # One malformed event must not cost the connection.
            log.exception("monitor could not apply a %s event", event.get("type"))
            return
        if note is not None:
            self._emit(note)

    def _emit(self, note: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(note)
        except Exception:
            log.exception("monitor on_event hook failed for %s", note.get("type"))

    def _on_iteration(self) -> None:
        """Runs before each wait for events, on the consumer thread."""
        if self._stopping.is_set():
            self._receiver.should_stop = True
            return
        if not self._connected.is_set():
            self._connected.set()
            self._backoff = RECONNECT_MIN
        now = time.monotonic()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + HOUSEKEEPING_EVERY
        try:
            for note in self.state.expire_workers():
                self._emit(note)
            due = self.state.refresh_due(self.refresh_interval)
            if due:
                self._inspect(due)
        except Exception:
            log.warning("monitor could not refresh workers", exc_info=True)

    def _inspect(self, names: list[str]) -> list[dict[str, Any]]:
        inspector = self.app.control.inspect(destination=names, timeout=self.inspect_timeout, limit=len(names))
        try:
            answers = {method: getattr(inspector, method)() or {} for method in INSPECTIONS}
        except BROKER_ERRORS as exc:
            raise ServiceUnavailable(f"cannot reach the broker to inspect workers: {exc}") from exc
        updated = []
        for name in names:
            worker = self.state.update_worker_info(
                name,
                stats=answers["stats"].get(name),
                reserved=answers["reserved"].get(name),
                active_queues=answers["active_queues"].get(name),
            )
            if worker is not None:
                updated.append(worker)
        return updated

    # -- snapshots -------------------------------------------------------------------------

    def refresh(self, worker: str | None = None) -> list[dict[str, Any]]:
        """Ask one known worker (or every online one) for pool, reserved and queues now, e.g. after pool_grow."""
        if worker is not None:
            self.state.worker(worker)  # NotFound for a name never seen
        names = [worker] if worker is not None else self.state.online_workers()
        return self._inspect(names) if names else []

    def workers(self) -> list[dict[str, Any]]:
        return self.state.workers()

    def worker(self, name: str) -> dict[str, Any]:
        return self.state.worker(name)

    def tasks(
        self,
        state: str | None = None,
        name: str | None = None,
        worker: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        return self.state.tasks(state=state, name=name, worker=worker, limit=limit, offset=offset)

    def task(self, uuid: str) -> dict[str, Any]:
        return self.state.task(uuid)

    def queues(self, extra: Iterable[str] = ()) -> list[dict[str, Any]]:
        return self._depths.read(extra)

    def rates(self) -> dict[str, Any]:
        return self.state.rates()

    def summary(self) -> dict[str, Any]:
        return {
            **self.state.summary(),
            "monitor": {"connected": self.connected, "reconnects": self.reconnects, "last_error": self.last_error},
        }
