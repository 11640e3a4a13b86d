"""Socket.IO namespaces: ``/overview``, ``/jobs`` and ``/queues``.

Why ``async_mode="threading"``: Godel's core is blocking code (SQLAlchemy on
psycopg, redis-py, Celery's control client, git subprocesses). eventlet or
gevent would have to monkey-patch all of it, which psycopg 3 and Celery's
broker connections do not tolerate well, and asyncio would need a second core.
Plain threads run the core as it is; ``simple-websocket`` gives real WebSocket
transport on the threaded Werkzeug server, so clients do not fall back to long
polling. The price is a thread per connection and per subscription, which is
fine for dashboards and CLIs counted in hundreds.

Why ``message_queue``: an emit from any API process reaches clients connected
to any other one through Redis pub/sub, so any number of processes can serve
clients (behind a load balancer with sticky sessions, as Socket.IO's polling
handshake needs).

``/overview``: one process at a time (a lease in Redis) reads ``godel:events``
with XREAD and emits each entry to the namespace (``event`` with its
``global_id``, or ``audit``); its cursor is kept in Redis,
so a process taking over continues where the last one stopped. One emitter
keeps events in order and sends each once, however many processes run.

``/jobs``: each ``subscribe`` {job_id, last_id} replays the job's stream after
``last_id`` and then follows the same stream with a blocking XREAD from the
last id it emitted, in one thread. Replay and live events are thus one ordered
sequence without gap or duplicate, and a client that reconnects with the last
id it saw loses nothing. (A per-job room fed by the global reader could deliver
a live event before the replay reached it.)

``/queues``: every few seconds the lease holder emits queue depths and the
workers the Celery monitor sees (``queues``), and each task or worker change
the monitor reports (``celery``); a client may emit ``snapshot`` and get one as
the acknowledgement.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import redis
from flask import request
from flask_socketio import ConnectionRefusedError, Namespace, SocketIO  # type: ignore[import-untyped]
from pydantic import ValidationError as PydanticValidationError

from godel import audit
from godel.errors import GodelError, ValidationError
from godel.events import Event
from godel.events.bus import GLOBAL_STREAM
from godel.storage.models import utcnow
from godel.validation import validated

from .auth import token_of
from .queries import events_after, stream_position
from .schemas import Subscribe
from .services import Services

log = logging.getLogger(__name__)

OVERVIEW, JOBS, QUEUES = "/overview", "/jobs", "/queues"
LEASE_KEY = "godel:api:fanout:lease"
CURSOR_KEY = "godel:api:fanout:cursor"
LEASE_MS = 10_000
BLOCK_MS = 1000
"""Longest blocking XREAD; also how soon a stopped subscription notices."""
MAX_BACKLOG_MS = 60_000
"""A process taking over the fan-out skips global events older than this."""
QUEUE_INTERVAL = 2.0
REPLAY_BATCH = 500
MAX_SUBSCRIPTIONS = 32
"""Jobs one connection may follow at once."""
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def _error(exc: GodelError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message, "field": exc.field}


class Realtime:
    """The namespaces, the fan-out lease and the per-client subscriptions of one process."""

    def __init__(self, socketio: SocketIO, svc: Services) -> None:
        self.socketio = socketio
        self.svc = svc
        self.identity = uuid.uuid4().hex
        self.leading = threading.Event()
        self.stopping = threading.Event()
        self._subscriptions: dict[str, dict[str, threading.Event]] = {}
        self._lock = threading.Lock()

    def register(self) -> None:
        for namespace in (OverviewNamespace(OVERVIEW, self), JobsNamespace(JOBS, self), QueuesNamespace(QUEUES, self)):
            self.socketio.on_namespace(namespace)

    def start(self) -> None:
        self.socketio.start_background_task(self._lead)
        self.socketio.start_background_task(self._queues)

    def stop(self) -> None:
        """End the loops and subscriptions, and hand the fan-out lease over at once."""
        self.stopping.set()
        with self._lock:
            for subscriptions in self._subscriptions.values():
                for stop in subscriptions.values():
                    stop.set()
        if self.leading.is_set():
            try:
                self.svc.ctx.redis.eval(_RELEASE, 1, LEASE_KEY, self.identity)
            except (redis.RedisError, OSError) as exc:
                log.warning("could not release the fan-out lease (it expires on its own): %s", exc)

    # connecting -------------------------------------------------------------

    def authorise(self, auth: Any) -> None:
        """Refuse the connection unless it carries a key with read scope (when auth is on)."""
        token = auth.get("token") if isinstance(auth, dict) else None
        token = token or request.args.get("token") or token_of(request)
        try:
            self.svc.guard.authenticate(token, "read")
        except GodelError as exc:
            raise ConnectionRefusedError(_error(exc)) from None

    # /overview: the fan-out lease -------------------------------------------

    def _lead(self) -> None:
        client = self.svc.ctx.redis
        renew = client.register_script(_RENEW)
        cursor: str | None = None
        while not self.stopping.is_set():
            try:
                held = client.set(LEASE_KEY, self.identity, nx=True, px=LEASE_MS) or renew(
                    keys=[LEASE_KEY], args=[self.identity, LEASE_MS]
                )
                if not held:
                    self.leading.clear()
                    cursor = None
                    self.stopping.wait(LEASE_MS / 3000)
                    continue
                self.leading.set()
                cursor = self._pump(client, cursor or self._resume_point(client))
            except (redis.RedisError, OSError) as exc:
                self.leading.clear()
                cursor = None
                log.warning("event fan-out paused: %s", exc)
                self.stopping.wait(2.0)
            except Exception:  # the loop must outlive any bug in one batch
                log.exception("event fan-out failed; retrying")
                self.stopping.wait(2.0)

    def _resume_point(self, client: redis.Redis) -> str:
        saved = client.get(CURSOR_KEY)
        if saved and stream_position(str(saved))[0] >= time.time() * 1000 - MAX_BACKLOG_MS:
            return str(saved)
        newest = client.xrevrange(GLOBAL_STREAM, count=1)
        return str(newest[0][0]) if newest else "0-0"  # type: ignore[index]

    def _pump(self, client: redis.Redis, cursor: str) -> str:
        """Emit one batch of global entries after ``cursor``; returns the new cursor."""
        reply = client.xread({GLOBAL_STREAM: cursor}, count=REPLAY_BATCH, block=BLOCK_MS)
        for _key, entries in reply or []:  # type: ignore[union-attr]
            for stream_id, fields in entries:
                self._emit_overview(str(stream_id), fields)
                cursor = str(stream_id)
        if reply:
            client.set(CURSOR_KEY, cursor, ex=24 * 3600)
        return cursor

    def _emit_overview(self, stream_id: str, fields: dict[str, str]) -> None:
        try:
            if "event" in fields:
                event = Event.from_entry(stream_id, fields)
                # The entry's id is its place in godel:events, not in the job's stream, so it is
                # sent as global_id; ``id`` stays what /jobs and ?after= use, which this entry lacks.
                payload = {**event.model_dump(mode="json", exclude={"id"}), "id": None, "global_id": stream_id}
                self.socketio.emit("event", payload, namespace=OVERVIEW)
                self._observe(OVERVIEW, event)
            elif record := audit.from_fields(stream_id, fields):
                self.socketio.emit("audit", record.model_dump(mode="json"), namespace=OVERVIEW)
        except (PydanticValidationError, ValueError) as exc:
            log.warning("skipping unreadable entry %s of %s: %s", stream_id, GLOBAL_STREAM, exc)

    def _observe(self, namespace: str, event: Event) -> None:
        telemetry = self.svc.telemetry
        telemetry.fanout_lag.labels(namespace).observe(max(0.0, (utcnow() - event.ts).total_seconds()))
        telemetry.fanned_out.labels(namespace).inc()

    # /jobs: subscriptions -----------------------------------------------------

    def subscribe(self, sid: str, data: Any) -> dict[str, Any]:
        """Start replay-then-follow of one job for ``sid``; the acknowledgement."""
        try:
            sub = validated(Subscribe, data if isinstance(data, dict) else {})
            job = self.svc.ctx.store.job(sub.job_id)
            stop = threading.Event()
            with self._lock:
                mine = self._subscriptions.setdefault(sid, {})
                if job.id in mine:
                    mine.pop(job.id).set()
                if len(mine) >= MAX_SUBSCRIPTIONS:
                    raise ValidationError(f"at most {MAX_SUBSCRIPTIONS} jobs per connection", field="job_id")
                mine[job.id] = stop
        except GodelError as exc:
            return {"ok": False, "error": _error(exc)}
        self.socketio.start_background_task(self._follow, sid, job.id, sub.last_id, stop)
        return {"ok": True, "job_id": job.id, "last_id": sub.last_id}

    def unsubscribe(self, sid: str, job_id: str | None = None) -> None:
        with self._lock:
            mine = self._subscriptions.get(sid, {})
            for key in [job_id] if job_id else list(mine):
                if key in mine:
                    mine.pop(key).set()
            if not mine:
                self._subscriptions.pop(sid, None)

    def _follow(self, sid: str, job_id: str, last_id: str, stop: threading.Event) -> None:
        ctx = self.svc.ctx
        try:
            while not stop.is_set():
                batch = events_after(ctx, job_id, last_id, REPLAY_BATCH)
                for event in batch:
                    last_id = self._emit_job(sid, event)
                if len(batch) < REPLAY_BATCH:
                    break
            while not stop.is_set() and not self.stopping.is_set():
                for event in ctx.bus.read(job_id, last_id, block_ms=BLOCK_MS):
                    last_id = self._emit_job(sid, event)
                    self._observe(JOBS, event)
        except Exception as exc:  # say where it stopped, so the client can subscribe again from there
            log.warning("subscription of %s to job %s ended: %s", sid, job_id, exc)
            failure = {"code": "unavailable", "message": f"event stream failed: {exc}", "field": None}
            self.socketio.emit(
                "failed", {"job_id": job_id, "last_id": last_id, "error": failure}, to=sid, namespace=JOBS
            )

    def _emit_job(self, sid: str, event: Event) -> str:
        self.socketio.emit("event", event.model_dump(mode="json"), to=sid, namespace=JOBS)
        return event.id or "0"

    # /queues ------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Messages waiting per queue, and the workers the monitor sees."""
        monitor = self.svc.monitor
        workers = monitor.workers()
        return {
            "ts": utcnow().isoformat(),
            "queues": {q["name"]: q["messages"] for q in monitor.queues()},
            "workers": {
                "total": len(workers),
                "online": sorted(w["hostname"] for w in workers if w["online"]),
                "active_tasks": sum(w["active"] or 0 for w in workers if w["online"]),
            },
        }

    def celery_event(self, note: dict[str, Any]) -> None:
        """The monitor's hook: task and worker changes go to ``/queues`` (from the lease holder only)."""
        if self.leading.is_set():
            self.socketio.emit("celery", note, namespace=QUEUES)

    def _queues(self) -> None:
        while not self.stopping.wait(QUEUE_INTERVAL):
            if not self.leading.is_set():
                continue
            try:
                self.socketio.emit("queues", self.snapshot(), namespace=QUEUES)
            except GodelError as exc:  # a dead broker must not end the loop
                log.warning("queue snapshot failed: %s", exc)


class _Namespace(Namespace):  # type: ignore[misc]
    def __init__(self, namespace: str, realtime: Realtime) -> None:
        super().__init__(namespace)
        self.realtime = realtime

    def on_connect(self, auth: Any = None) -> None:
        self.realtime.authorise(auth)


class OverviewNamespace(_Namespace):
    """Every job event and audit record, as ``event`` and ``audit`` messages."""


class JobsNamespace(_Namespace):
    """``subscribe`` {job_id, last_id} / ``unsubscribe`` {job_id}; events arrive as ``event``."""

    def on_subscribe(self, data: Any = None) -> dict[str, Any]:
        return self.realtime.subscribe(request.sid, data)  # type: ignore[attr-defined]

    def on_unsubscribe(self, data: Any = None) -> dict[str, Any]:
        job_id = data.get("job_id") if isinstance(data, dict) else None
        self.realtime.unsubscribe(request.sid, str(job_id) if job_id else None)  # type: ignore[attr-defined]
        return {"ok": True}

    def on_disconnect(self, reason: Any = None) -> None:
        self.realtime.unsubscribe(request.sid)  # type: ignore[attr-defined]


class QueuesNamespace(_Namespace):
    """``queues`` messages (depth per queue, worker summary) every few seconds; ``snapshot`` asks now."""

    def on_snapshot(self, data: Any = None) -> dict[str, Any]:
        try:
            return self.realtime.snapshot()
        except GodelError as exc:
            return {"error": _error(exc)}
