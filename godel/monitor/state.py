"""Live, bounded state of Celery workers and tasks, built from Celery's events.

Celery's ``celery.events.state.State`` keeps whole event histories and evicts
silently, which is how long-running Flower instances either grow without
bound or lose tasks unnoticed. This keeps only what a dashboard shows (with
arguments and errors truncated), caps the number of tasks with a hook so the
caller can persist what falls out, and keeps success/failure rates and
runtime percentiles beside it. One lock: the consumer thread writes, any
thread reads, and every read returns fresh JSON-ready dicts.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from celery import states

from godel.errors import NotFound, ValidationError

log = logging.getLogger(__name__)

MAX_ARG_LENGTH = 256
"""Characters kept of a task's args, kwargs and result (the worker already sends them as reprs)."""
MAX_ERROR_LENGTH = 1024
"""Characters kept of a failed task's exception."""
MAX_TRACEBACK_LENGTH = 8192
"""Characters kept of a failed task's traceback: enough for the frames that matter."""
MAX_WORKERS = 1_000
"""Workers remembered; autoscaled pods come and go, so the longest-silent one is forgotten first."""
MAX_TASK_NAMES = 1_000
"""Task names with rates kept; the least recently active name is dropped first."""
MAX_PAGE = 1_000
"""Largest ``limit`` of one task listing."""
HEARTBEAT_WINDOW = 2.0
"""A worker is offline after this many heartbeat intervals of silence: Celery's own rule."""
DEFAULT_HEARTBEAT_FREQ = 2.0
"""Seconds between heartbeats when a worker does not say (Celery's default)."""
RATE_WINDOWS = {"1m": 60, "5m": 300, "15m": 900}
"""Sliding windows of the success/failure rates, in seconds."""
RUNTIME_SAMPLES = 1_000
"""Most recent runtimes kept per task name for the percentiles."""
PERCENTILES = (50, 90, 99)

PENDING: str = states.PENDING
RECEIVED: str = states.RECEIVED
STARTED: str = states.STARTED
SUCCESS: str = states.SUCCESS
FAILURE: str = states.FAILURE
RETRY: str = states.RETRY
REVOKED: str = states.REVOKED
REJECTED: str = states.REJECTED

EVENT_STATES = {
    "task-sent": PENDING,
    "task-received": RECEIVED,
    "task-started": STARTED,
    "task-succeeded": SUCCESS,
    "task-failed": FAILURE,
    "task-retried": RETRY,
    "task-revoked": REVOKED,
    "task-rejected": REJECTED,
}
"""Each task event and the Celery state it means; the states are what Flower users know."""
TASK_STATES = tuple(EVENT_STATES.values())
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})

EvictHook = Callable[[dict[str, Any]], None]


def clip(value: Any, limit: int) -> str | None:
    """``value`` as text of at most ``limit`` characters (an ellipsis marks the cut)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _supersedes(new: str, current: str | None) -> bool:
    """Whether ``new`` replaces ``current`` or only adds its fields (Celery's ordering rule).

    Events from clients and workers arrive out of order (``task-sent`` after
    ``task-started``, say), so a state that logically happens before the
    current one must not roll it back. A retry restarts the cycle either way.
    """
    if current is None or RETRY in (new, current):
        return True
    return int(states.precedence(new)) <= int(states.precedence(current))


@dataclass(slots=True)
class TaskRecord:
    """What is kept of one task; timestamps are the worker's event times (epoch seconds)."""

    uuid: str
    name: str | None = None
    state: str | None = None
    args: str | None = None
    kwargs: str | None = None
    result: str | None = None
    exception: str | None = None
    traceback: str | None = None
    worker: str | None = None
    queue: str | None = None
    retries: int = 0
    runtime: float | None = None
    eta: str | None = None
    expires: str | None = None
    parent_id: str | None = None
    root_id: str | None = None
    terminated: bool | None = None
    sent: float | None = None
    received: float | None = None
    started: float | None = None
    succeeded: float | None = None
    failed: float | None = None
    retried: float | None = None
    revoked: float | None = None
    rejected: float | None = None
    timestamp: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(slots=True)
class WorkerRecord:
    """What is kept of one worker. ``last_seen`` is this process's clock, immune to worker clock skew."""

    hostname: str
    first_seen: float
    last_seen: float
    alive: bool = True
    last_heartbeat: float | None = None
    freq: float = DEFAULT_HEARTBEAT_FREQ
    sw_ident: str | None = None
    sw_ver: str | None = None
    sw_sys: str | None = None
    pid: int | None = None
    loadavg: list[float] | None = None
    active: int | None = None
    processed: int | None = None
    reserved: int | None = None
    pool: dict[str, Any] | None = None
    queues: list[str] | None = None
    uptime: float | None = None
    prefetch_count: int | None = None
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    refreshed_at: float | None = None


class _Series:
    """Per-second success/failure counts over the longest window.

    Sparse: a second with no outcome costs nothing, so a quiet task name
    holds no buckets and a busy one at most one per second of the window.
    """

    __slots__ = ("buckets",)

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()

    def add(self, second: int, index: int) -> None:
        # Events arrive nearly in order, so the right bucket is found from the newest end.
        position = len(self.buckets)
        while position and self.buckets[position - 1][0] > second:
            position -= 1
        if position and self.buckets[position - 1][0] == second:
            self.buckets[position - 1][index] += 1
            return
        bucket = [second, 0, 0]
        bucket[index] = 1
        self.buckets.insert(position, bucket)

    def prune(self, now: float) -> None:
        horizon = now - max(RATE_WINDOWS.values())
        while self.buckets and self.buckets[0][0] <= horizon:
            self.buckets.popleft()

    def per_minute(self, now: float) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {"succeeded": {}, "failed": {}}
        for label, window in RATE_WINDOWS.items():
            inside = [b for b in self.buckets if b[0] > now - window]
            out["succeeded"][label] = round(sum(b[1] for b in inside) * 60 / window, 4)
            out["failed"][label] = round(sum(b[2] for b in inside) * 60 / window, 4)
        return out


class Rates:
    """Success/failure rates per task name and overall, and runtime percentiles per name."""

    def __init__(self) -> None:
        self._all = _Series()
        self._series: OrderedDict[str, _Series] = OrderedDict()
        self._runtimes: dict[str, deque[float]] = {}

    def record(self, name: str | None, state: str, at: float, runtime: float | None) -> None:
        index = 1 if state == SUCCESS else 2
        second = int(at)
        self._all.add(second, index)
        if name is None:
            return
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = _Series()
            if len(self._series) > MAX_TASK_NAMES:
                dropped, _ = self._series.popitem(last=False)
                self._runtimes.pop(dropped, None)
        self._series.move_to_end(name)
        series.add(second, index)
        if runtime is not None and state == SUCCESS:
            self._runtimes.setdefault(name, deque(maxlen=RUNTIME_SAMPLES)).append(runtime)

    def snapshot(self, now: float) -> dict[str, Any]:
        self._all.prune(now)
        tasks: dict[str, Any] = {}
        for name, series in self._series.items():
            series.prune(now)
            tasks[name] = {**series.per_minute(now), "runtime": _percentiles(self._runtimes.get(name, ()))}
        return {"windows": dict(RATE_WINDOWS), "all": self._all.per_minute(now), "tasks": tasks}


def _percentiles(samples: Iterable[float]) -> dict[str, float | int | None]:
    ordered = sorted(samples)
    out: dict[str, float | int | None] = {"samples": len(ordered)}
    for p in PERCENTILES:
        # Nearest rank: always a runtime that really happened.
        out[f"p{p}"] = ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)] if ordered else None
    return out


class MonitorState:
    """Workers and the most recent ``max_tasks`` tasks, updated by ``apply(event)``.

    When the cap is reached the oldest finished task goes first (then, only
    if none is finished, the oldest unfinished one), so a long agent turn
    stays visible while thousands of quick tasks pass; ``on_evict`` gets
    each evicted task's dict, outside the lock.
    """

    def __init__(
        self,
        *,
        max_tasks: int = 10_000,
        max_workers: int = MAX_WORKERS,
        max_arg_length: int = MAX_ARG_LENGTH,
        heartbeat_timeout: float | None = None,
        on_evict: EvictHook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        sizes = {"max_tasks": max_tasks, "max_workers": max_workers, "max_arg_length": max_arg_length}
        for field, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError("must be a whole number of at least 1", field=field)
        if heartbeat_timeout is not None and heartbeat_timeout <= 0:
            raise ValidationError("must be greater than zero", field="heartbeat_timeout")
        self.max_tasks = max_tasks
        self.max_workers = max_workers
        self.max_arg_length = max_arg_length
        self.heartbeat_timeout = heartbeat_timeout
        self.on_evict = on_evict
        self._clock = clock
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskRecord] = {}
        # Eviction order: finished tasks by when they finished, unfinished ones by first sight.
        self._done: OrderedDict[str, None] = OrderedDict()
        self._live: OrderedDict[str, None] = OrderedDict()
        self._workers: dict[str, WorkerRecord] = {}
        self._rates = Rates()
        self.events_seen = 0
        self.evicted = 0

    # -- writing ---------------------------------------------------------------------------

    def apply(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """Fold one Celery event in; returns ``{"type", "timestamp", "task"|"worker"}`` or None if ignored."""
        kind = str(event.get("type", ""))
        evicted: list[dict[str, Any]] = []
        with self._lock:
            self.events_seen += 1
            if kind in EVENT_STATES:
                note = self._apply_task(kind, event, evicted)
            elif kind in ("worker-online", "worker-heartbeat", "worker-offline"):
                note = self._apply_worker(kind, event)
            else:
                note = None
        for task in evicted:
            self._evicted(task)
        return note

    def _apply_task(self, kind: str, event: Mapping[str, Any], evicted: list[dict[str, Any]]) -> dict[str, Any] | None:
        uuid = event.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            return None
        record = self._tasks.get(uuid)
        if record is None:
            record = self._tasks[uuid] = TaskRecord(uuid)
        previous = record.state
        new = EVENT_STATES[kind]
        at = _number(event.get("timestamp"))
        setattr(record, kind.removeprefix("task-"), at)
        self._merge(record, kind, event)
        if _supersedes(new, previous):
            record.state = new
            record.timestamp = at
        if record.state != previous:
            self._file(record)
            self._count_outcome(record, event)
        evicted.extend(self._evict())
        return {"type": kind, "timestamp": at, "task": record.to_dict()}

    def _merge(self, record: TaskRecord, kind: str, event: Mapping[str, Any]) -> None:
        """Copy what this event knows; descriptive fields are kept whatever the state order."""
        if event.get("name"):
            record.name = str(event["name"])
        for key in ("args", "kwargs", "result"):
            if key in event:
                setattr(record, key, clip(event[key], self.max_arg_length))
        if "exception" in event:
            record.exception = clip(event["exception"], MAX_ERROR_LENGTH)
        if "traceback" in event:
            record.traceback = clip(event["traceback"], MAX_TRACEBACK_LENGTH)
        # task-sent comes from the client, whose hostname is not a worker.
        if kind != "task-sent" and event.get("hostname"):
            record.worker = str(event["hostname"])
        if kind == "task-sent" and event.get("queue"):
            record.queue = str(event["queue"])
        retries = event.get("retries")
        if isinstance(retries, int) and not isinstance(retries, bool):
            # Counted from sent/received only: a retry's task-sent precedes its task-retried.
            record.retries = max(record.retries, retries)
        for key in ("eta", "expires", "parent_id", "root_id"):
            if event.get(key) is not None:
                setattr(record, key, _text(event[key]))
        self._merge_outcome(record, kind, event)

    def _merge_outcome(self, record: TaskRecord, kind: str, event: Mapping[str, Any]) -> None:
        if kind == "task-succeeded":
            record.runtime = _number(event.get("runtime"))
        elif kind == "task-failed" and record.runtime is None and record.started and record.failed:
            record.runtime = max(record.failed - record.started, 0.0)
        elif kind == "task-revoked":
            record.terminated = bool(event.get("terminated"))

    def _file(self, record: TaskRecord) -> None:
        """Keep the eviction queues in step with the task's (new) state."""
        if record.state in READY_STATES:
            self._live.pop(record.uuid, None)
            self._done[record.uuid] = None
            self._done.move_to_end(record.uuid)
        else:
            self._done.pop(record.uuid, None)
            self._live.setdefault(record.uuid, None)

    def _count_outcome(self, record: TaskRecord, event: Mapping[str, Any]) -> None:
        if record.state not in (SUCCESS, FAILURE, RETRY):
            return
        worker = self._workers.get(record.worker or "")
        if worker is not None:
            if record.state == SUCCESS:
                worker.succeeded += 1
            elif record.state == FAILURE:
                worker.failed += 1
            else:
                worker.retried += 1
        if record.state != RETRY:
            # Rates run on this process's clock, so worker clock skew cannot shift them.
            at = _number(event.get("local_received")) or self._clock()
            self._rates.record(record.name, record.state, at, record.runtime)

    def _evict(self) -> list[dict[str, Any]]:
        out = []
        while len(self._tasks) > self.max_tasks:
            queue = self._done or self._live
            uuid, _ = queue.popitem(last=False)
            out.append(self._tasks.pop(uuid).to_dict())
            self.evicted += 1
        return out

    def _evicted(self, task: dict[str, Any]) -> None:
        if self.on_evict is None:
            return
        try:
            self.on_evict(task)
        except Exception:
            # The hook persists elsewhere; its failure must not stop the monitor.
            log.exception("on_evict failed for task %s", task.get("uuid"))

    def _apply_worker(self, kind: str, event: Mapping[str, Any]) -> dict[str, Any] | None:
        hostname = event.get("hostname")
        if not isinstance(hostname, str) or not hostname:
            return None
        seen = _number(event.get("local_received")) or self._clock()
        worker = self._workers.get(hostname)
        if worker is None:
            worker = self._workers[hostname] = WorkerRecord(hostname, first_seen=seen, last_seen=seen)
            self._forget_workers()
        elif kind == "worker-online" or not worker.alive:
            # A restarted worker may have another pool or queues: ask again.
            worker.refreshed_at = None
        worker.alive = kind != "worker-offline"
        worker.last_seen = seen
        worker.last_heartbeat = _number(event.get("timestamp"))
        worker.freq = _number(event.get("freq")) or worker.freq
        for key in ("sw_ident", "sw_ver", "sw_sys"):
            if event.get(key) is not None:
                setattr(worker, key, str(event[key]))
        for key in ("pid", "active", "processed"):
            value = event.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(worker, key, value)
        loadavg = event.get("loadavg")
        if isinstance(loadavg, (list, tuple)):
            worker.loadavg = [float(x) for x in loadavg if _number(x) is not None]
        return {"type": kind, "timestamp": worker.last_heartbeat, "worker": self._worker_dict(worker, seen)}

    def _forget_workers(self) -> None:
        while len(self._workers) > self.max_workers:
            oldest = min(self._workers.values(), key=lambda w: w.last_seen)
            del self._workers[oldest.hostname]

    def update_worker_info(
        self,
        hostname: str,
        *,
        stats: Mapping[str, Any] | None = None,
        reserved: list[Any] | None = None,
        active_queues: list[Any] | None = None,
    ) -> dict[str, Any] | None:
        """Add what ``inspect`` answered (pool, reserved, queues); marks the worker refreshed even if silent."""
        with self._lock:
            worker = self._workers.get(hostname)
            if worker is None:
                return None
            now = self._clock()
            worker.refreshed_at = now
            if stats:
                pool = stats.get("pool") or {}
                processes = pool.get("processes")
                limit = pool.get("max-concurrency")
                worker.pool = {
                    "implementation": _text(pool.get("implementation")),
                    "max_concurrency": limit,
                    # prefork lists its processes, which pool_grow/shrink change; other pools resize their limit.
                    "size": len(processes) if isinstance(processes, list) else limit,
                }
                worker.uptime = _number(stats.get("uptime"))
                prefetch = stats.get("prefetch_count")
                worker.prefetch_count = prefetch if isinstance(prefetch, int) else None
            if reserved is not None:
                worker.reserved = len(reserved)
            if active_queues is not None:
                worker.queues = sorted(str(q["name"]) for q in active_queues if isinstance(q, dict) and "name" in q)
            return self._worker_dict(worker, now)

    def expire_workers(self) -> list[dict[str, Any]]:
        """Mark workers whose heartbeats stopped; one ``worker-lost`` note per worker that just went."""
        with self._lock:
            now = self._clock()
            lost = [w for w in self._workers.values() if w.alive and not self._online(w, now)]
            for worker in lost:
                worker.alive = False
            return [{"type": "worker-lost", "timestamp": now, "worker": self._worker_dict(w, now)} for w in lost]

    def refresh_due(self, interval: float) -> list[str]:
        """Online workers whose pool details are missing or older than ``interval`` seconds."""
        with self._lock:
            now = self._clock()
            return sorted(
                w.hostname
                for w in self._workers.values()
                if self._online(w, now) and (w.refreshed_at is None or now - w.refreshed_at >= interval)
            )

    # -- reading ---------------------------------------------------------------------------

    def _online(self, worker: WorkerRecord, now: float) -> bool:
        timeout = self.heartbeat_timeout or worker.freq * HEARTBEAT_WINDOW
        return worker.alive and now - worker.last_seen <= timeout

    def _worker_dict(self, worker: WorkerRecord, now: float) -> dict[str, Any]:
        return {
            "hostname": worker.hostname,
            "online": self._online(worker, now),
            "last_heartbeat": worker.last_heartbeat,
            "last_seen": worker.last_seen,
            "first_seen": worker.first_seen,
            "heartbeat_freq": worker.freq,
            "sw_ident": worker.sw_ident,
            "sw_ver": worker.sw_ver,
            "sw_sys": worker.sw_sys,
            "pid": worker.pid,
            "loadavg": list(worker.loadavg) if worker.loadavg is not None else None,
            "active": worker.active,
            "processed": worker.processed,
            "reserved": worker.reserved,
            "pool": dict(worker.pool) if worker.pool is not None else None,
            "queues": list(worker.queues) if worker.queues is not None else None,
            "uptime": worker.uptime,
            "prefetch_count": worker.prefetch_count,
            "succeeded": worker.succeeded,
            "failed": worker.failed,
            "retried": worker.retried,
        }

    def workers(self) -> list[dict[str, Any]]:
        with self._lock:
            now = self._clock()
            return [self._worker_dict(w, now) for w in sorted(self._workers.values(), key=lambda w: w.hostname)]

    def online_workers(self) -> list[str]:
        with self._lock:
            now = self._clock()
            return sorted(w.hostname for w in self._workers.values() if self._online(w, now))

    def worker(self, hostname: str) -> dict[str, Any]:
        with self._lock:
            worker = self._workers.get(hostname)
            if worker is None:
                raise NotFound(f"no worker named {hostname!r} has been seen", field="worker")
            return self._worker_dict(worker, self._clock())

    def task(self, uuid: str) -> dict[str, Any]:
        with self._lock:
            record = self._tasks.get(uuid)
            if record is None:
                raise NotFound(f"no task {uuid!r} is kept (unknown, or evicted)", field="task")
            return record.to_dict()

    def tasks(
        self,
        state: str | None = None,
        name: str | None = None,
        worker: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Newest first (by first sight), filtered by exact state, name and worker."""
        if state is not None:
            state = state.upper()
            if state not in TASK_STATES:
                raise ValidationError(f"must be one of {', '.join(TASK_STATES)}", field="state")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"must be between 1 and {MAX_PAGE}", field="limit")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValidationError("must be zero or more", field="offset")
        out: list[dict[str, Any]] = []
        with self._lock:
            matches = (
                t
                for t in reversed(self._tasks.values())
                if (state is None or t.state == state)
                and (name is None or t.name == name)
                and (worker is None or t.worker == worker)
            )
            out = [t.to_dict() for t in itertools.islice(matches, offset, offset + limit)]
        return out

    def rates(self) -> dict[str, Any]:
        with self._lock:
            return self._rates.snapshot(self._clock())

    def summary(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            by_state = dict.fromkeys(TASK_STATES, 0)
            for record in self._tasks.values():
                if record.state is not None:
                    by_state[record.state] += 1
            online = sum(1 for w in self._workers.values() if self._online(w, now))
            return {
                "tasks": {"total": len(self._tasks), "by_state": by_state, "evicted": self.evicted},
                "workers": {"total": len(self._workers), "online": online, "offline": len(self._workers) - online},
                "events": self.events_seen,
            }
