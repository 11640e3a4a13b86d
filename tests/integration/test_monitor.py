"""The monitor against a real Redis and a real prefork Celery worker running tiny test tasks.

The worker consumes only ``godel.control``, so the other Godel queues have no
consumer and keep what is published to them. Tests share one worker and run
in file order; the last one shuts it down. The file uses ``redis_url`` rather
than ``godel_env``: nothing here touches a database, so it runs once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from celery import Celery

from godel import stack
from godel.broker import ALL_QUEUES, CONTROL_QUEUE, make_celery
from godel.errors import GodelError, NotFound, ValidationError
from godel.monitor import Monitor, control

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IDLE_QUEUE = "godel.optimizer"
EXTRA_QUEUE = "monitor.extra"
T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Poll ``check`` until it returns something truthy; NotFound counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except NotFound:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def app(redis_url: str) -> Celery:
    return make_celery(redis_url)


@pytest.fixture(scope="module")
def worker_name() -> str:
    return f"monitor-{uuid.uuid4().hex[:6]}@test"


@pytest.fixture(scope="module")
def worker(
    app: Celery, redis_url: str, worker_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """A prefork worker (pool_grow/shrink and terminate need processes) loading the test tasks."""
    log = open(tmp_path_factory.mktemp("monitor") / "worker.log", "wb")  # noqa: SIM115 - open for the worker's life
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "tests.fixtures.monitor_app", "worker"),
            *("-P", "prefork", "-c", "2", "-Q", CONTROL_QUEUE, "-n", worker_name),
            *("--without-mingle", "--without-gossip", "-E", "--loglevel", "INFO"),
        ],
        env={**os.environ, "GODEL_REDIS_URL": redis_url},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    eventually(lambda: control.ping(app, worker_name, timeout=0.5)["ok"], "the worker to answer", timeout=30)
    yield proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    log.close()


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return []


@pytest.fixture(scope="module")
def monitor(
    app: Celery, worker: subprocess.Popen[bytes], worker_name: str, events: list[dict[str, Any]]
) -> Iterator[Monitor]:
    monitor = Monitor(app, on_event=events.append, queues=[EXTRA_QUEUE], refresh_interval=1.0).start()
    # A heartbeat received proves the pub/sub subscription is live, so no task event is missed.
    eventually(lambda: monitor.worker(worker_name)["online"], "the worker's first heartbeat")
    yield monitor
    monitor.stop()
    assert not monitor.running


def task_in(monitor: Monitor, task_id: str, state: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        task = monitor.task(task_id)
        return task if task["state"] == state else None

    return check


def pool_size(monitor: Monitor, worker_name: str, size: int) -> Callable[[], bool]:
    def check() -> bool:
        monitor.refresh(worker_name)
        pool = monitor.worker(worker_name)["pool"]
        return bool(pool and pool["size"] == size)

    return check


def test_worker_is_online_with_pool_size(monitor: Monitor, worker_name: str) -> None:
    def ready() -> dict[str, object] | None:
        found = monitor.worker(worker_name)  # pool details come from inspect, loadavg from a heartbeat
        return found if found["pool"] and found.get("loadavg") else None

    worker = eventually(ready, "pool details and a heartbeat")

    assert worker["online"] is True
    assert worker["pool"] == {"implementation": "celery.concurrency.prefork:TaskPool", "max_concurrency": 2, "size": 2}
    assert worker["queues"] == [CONTROL_QUEUE]
    assert worker["sw_ident"] == "py-celery" and worker["sw_ver"]
    assert worker["last_heartbeat"] > time.time() - 10
    assert len(worker["loadavg"]) == 3 and worker["processed"] >= 0 and worker["reserved"] == 0
    summary = monitor.summary()
    assert summary["workers"]["online"] >= 1 and summary["monitor"]["connected"] is True
    json.dumps([monitor.workers(), summary])


def test_task_moves_through_states_with_runtime(
    app: Celery, monitor: Monitor, worker_name: str, events: list[dict[str, Any]]
) -> None:
    task_id = app.send_task("monitor.sleep", args=[0.2]).id
    task = eventually(task_in(monitor, task_id, "SUCCESS"), "the task to succeed")

    assert task["name"] == "monitor.sleep" and task["worker"] == worker_name and task["queue"] == CONTROL_QUEUE
    assert task["args"] == "[0.2]" and task["result"] == "0.2"
    assert task["runtime"] >= 0.2
    assert task["received"] <= task["started"] <= task["succeeded"]
    seen = [e["task"]["state"] for e in list(events) if e.get("task", {}).get("uuid") == task_id]
    # task-sent (from this process) may arrive after task-received (from the worker); it must not roll back.
    distinct = [state for i, state in enumerate(seen) if i == 0 or seen[i - 1] != state]
    assert distinct in (["PENDING", "RECEIVED", "STARTED", "SUCCESS"], ["RECEIVED", "STARTED", "SUCCESS"])
    assert task["sent"] is not None and len(seen) == 4
    assert monitor.tasks(name="monitor.sleep", state="success", worker=worker_name)[0]["uuid"] == task_id
    rates = monitor.rates()
    assert rates["tasks"]["monitor.sleep"]["succeeded"]["1m"] >= 1
    assert rates["tasks"]["monitor.sleep"]["runtime"]["p50"] >= 0.2
    assert rates["all"]["succeeded"]["1m"] >= 1


def test_failed_task_shows_exception(app: Celery, monitor: Monitor, worker_name: str) -> None:
    task_id = app.send_task("monitor.boom", args=["kaput"]).id
    task = eventually(task_in(monitor, task_id, "FAILURE"), "the task to fail")

    assert task["exception"] == "ValueError('kaput')"
    assert "raise ValueError(message)" in task["traceback"]
    assert task["worker"] == worker_name
    assert monitor.summary()["tasks"]["by_state"]["FAILURE"] >= 1
    assert monitor.rates()["tasks"]["monitor.boom"]["failed"]["1m"] >= 1
    assert monitor.worker(worker_name)["failed"] >= 1


def test_revoked_task_shows_revoked(app: Celery, monitor: Monitor, worker_name: str) -> None:
    task_id = app.send_task("monitor.sleep", args=[30]).id
    eventually(task_in(monitor, task_id, "STARTED"), "the long task to start")

    done = control.revoke(app, task_id, terminate=True, signal="TERM", worker=worker_name)
    task = eventually(task_in(monitor, task_id, "REVOKED"), "the task to be revoked")

    assert done["ok"] and done["signal"] == "SIGTERM" and "ok" in done["replies"][worker_name]
    assert task["terminated"] is True and task["revoked"] >= task["started"]


def test_queue_depths_count_messages_without_consumer(app: Celery, monitor: Monitor) -> None:
    for priority in (0, 5, 9):
        app.send_task("monitor.add", args=[1, 2], queue=IDLE_QUEUE, priority=priority)
    app.send_task("monitor.add", args=[1, 2], queue=EXTRA_QUEUE)

    depths = {q["name"]: q for q in monitor.queues()}

    assert list(depths) == [*ALL_QUEUES, EXTRA_QUEUE]
    assert depths[IDLE_QUEUE]["messages"] == 3
    # kombu files priority 5 under step 3: each priority step is its own Redis list.
    assert depths[IDLE_QUEUE]["priorities"] == {"0": 1, "3": 1, "6": 0, "9": 1}
    assert depths[EXTRA_QUEUE]["messages"] == 1
    assert {q["name"]: q["messages"] for q in monitor.queues(extra=["nobody.uses.this"])}["nobody.uses.this"] == 0


def test_rate_limit_is_acknowledged_by_the_worker(app: Celery, worker_name: str) -> None:
    done = control.rate_limit(app, "monitor.add", "10/m", worker=worker_name)
    assert done["ok"] and done["replies"][worker_name] == {"ok": "new rate limit set successfully"}
    registered = control.inspect(app, "registered", worker_name)["replies"][worker_name]
    assert "monitor.add [rate_limit=10/m]" in registered  # the worker's own view of the task

    cleared = control.rate_limit(app, "monitor.add", None, worker=worker_name)
    assert cleared["rate_limit"] is None
    assert cleared["replies"][worker_name] == {"ok": "rate limit disabled successfully"}


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        pytest.param(
            lambda app, w: control.rate_limit(app, "monitor.add", "10/d", worker=w),
            ValidationError,
            "rate_limit",
            id="bad-rate-limit",
        ),
        pytest.param(
            lambda app, w: control.rate_limit(app, "monitor.nope", "1/s", worker=w),
            NotFound,
            "task_name",
            id="unknown-task-type",
        ),
        pytest.param(
            lambda app, w: control.pool_grow(app, "nobody@nowhere", timeout=0.3),
            NotFound,
            "worker",
            id="unknown-worker",
        ),
        pytest.param(
            lambda app, w: control.shutdown(app, "nobody@nowhere", timeout=0.3),
            NotFound,
            "worker",
            id="shutdown-unknown-worker",
        ),
        pytest.param(
            lambda app, w: control.revoke(app, "some-id", terminate=True, signal="SIGNOPE"),
            ValidationError,
            "signal",
            id="bad-signal",
        ),
        pytest.param(lambda app, w: control.inspect(app, "conf", w), ValidationError, "method", id="conf-not-allowed"),
        pytest.param(lambda app, w: control.pool_shrink(app, w, n=0), ValidationError, "n", id="shrink-by-zero"),
    ],
)
def test_control_rejects_bad_input_naming_the_field(
    app: Celery, worker_name: str, call: Callable[[Celery, str], Any], error: type[GodelError], field: str
) -> None:
    with pytest.raises(error) as info:
        call(app, worker_name)
    assert info.value.field == field


def test_pool_grow_and_shrink_change_reported_pool_size(app: Celery, monitor: Monitor, worker_name: str) -> None:
    # The revoke test's terminated process is replaced first; wait for the pool to settle.
    eventually(pool_size(monitor, worker_name, 2), "the pool at its starting size")

    grown = control.pool_grow(app, worker_name)
    eventually(pool_size(monitor, worker_name, 3), "the pool to grow to 3")
    shrunk = control.pool_shrink(app, worker_name)
    eventually(pool_size(monitor, worker_name, 2), "the pool to shrink back to 2")

    assert grown["replies"][worker_name] == {"ok": "pool will grow"} and grown["n"] == 1
    assert shrunk["replies"][worker_name] == {"ok": "pool will shrink"}


def test_cap_evicts_oldest_tasks_and_calls_on_evict(app: Celery, worker_name: str) -> None:
    evicted: list[dict[str, Any]] = []
    with Monitor(app, max_tasks=3, on_evict=evicted.append) as small:
        eventually(lambda: small.worker(worker_name)["online"], "the small monitor to hear the worker")
        ids = []
        for n in range(5):
            ids.append(app.send_task("monitor.add", args=[n, n]).id)
            eventually(task_in(small, ids[-1], "SUCCESS"), f"task {n} to succeed")

        assert [t["uuid"] for t in evicted if t["uuid"] in ids] == ids[:2]
        assert evicted[0]["state"] == "SUCCESS" and evicted[0]["result"] == "0"
        assert [t["uuid"] for t in small.tasks()] == ids[:1:-1]
        assert small.summary()["tasks"]["evicted"] >= 2
        with pytest.raises(NotFound):
            small.task(ids[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=0.5) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def _redis_server(port: int, data: Path) -> subprocess.Popen[bytes]:
    argv = [stack.redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(data)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    eventually(lambda: _answers(f"redis://127.0.0.1:{port}/0"), "redis-server to answer")
    return proc


def _heard(app: Celery, monitor: Monitor, hostname: str) -> Callable[[], bool]:
    """Publish a heartbeat as ``hostname``; true once the monitor has it (pub/sub drops what nobody hears)."""

    def check() -> bool:
        try:  # the first publish after a restart may meet a stale pooled connection
            with app.events.default_dispatcher(hostname=hostname) as dispatcher:
                dispatcher.send("worker-heartbeat", freq=2.0, active=0, processed=0, loadavg=[0.0, 0.0, 0.0])
        except Exception:
            return False
        return bool(monitor.worker(hostname)["online"])

    return check


def test_consumer_reconnects_when_redis_restarts(tmp_path: Path) -> None:
    port = _free_port()
    server = _redis_server(port, tmp_path)
    app = make_celery(f"redis://127.0.0.1:{port}/0")
    watcher = Monitor(app).start()
    try:
        assert watcher.wait_connected(10)
        eventually(_heard(app, watcher, "before@test"), "an event before the restart")
        server.kill()
        server.wait()
        eventually(lambda: not watcher.connected, "the monitor to notice Redis went away")
        server = _redis_server(port, tmp_path)
        eventually(_heard(app, watcher, "after@test"), "an event after the restart", timeout=30)
        assert watcher.summary()["monitor"]["reconnects"] >= 1
    finally:
        watcher.stop()
        server.kill()
        server.wait()
    assert not watcher.running


def test_shutdown_takes_the_worker_offline(
    app: Celery, monitor: Monitor, worker: subprocess.Popen[bytes], worker_name: str
) -> None:
    done = control.shutdown(app, worker_name)

    eventually(lambda: monitor.worker(worker_name)["online"] is False, "the worker to go offline")
    assert done == {"action": "shutdown", "worker": worker_name, "replies": {}, "ok": True}
    assert worker.wait(timeout=20) == 0
    assert monitor.summary()["workers"]["online"] == 0
