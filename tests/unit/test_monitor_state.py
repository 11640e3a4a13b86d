"""MonitorState from synthetic Celery events: state order, truncation, the cap, workers, rates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from godel.errors import NotFound, ValidationError
from godel.monitor.state import MAX_TRACEBACK_LENGTH, MonitorState

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> MonitorState:
    return MonitorState(clock=clock)


def task_event(kind: str, uuid: str, at: float, **fields: Any) -> dict[str, Any]:
    return {"type": f"task-{kind}", "uuid": uuid, "timestamp": at, "local_received": at, **fields}


def beat(hostname: str, at: float, kind: str = "heartbeat", **fields: Any) -> dict[str, Any]:
    base = {"freq": 2.0, "sw_ident": "py-celery", "sw_ver": "5.7.0", "sw_sys": "Linux", "active": 1, "processed": 7}
    return {"type": f"worker-{kind}", "hostname": hostname, "timestamp": at, "local_received": at, **base, **fields}


def run(
    state: MonitorState, uuid: str, at: float, *, name: str = "t.add", runtime: float = 0.5, ok: bool = True
) -> None:
    state.apply(task_event("sent", uuid, at, name=name, args="(1, 2)", kwargs="{}", queue="godel.control"))
    state.apply(task_event("received", uuid, at + 0.1, name=name, hostname="w@h", retries=0))
    state.apply(task_event("started", uuid, at + 0.2, hostname="w@h"))
    if ok:
        state.apply(task_event("succeeded", uuid, at + 0.2 + runtime, hostname="w@h", result="3", runtime=runtime))
    else:
        state.apply(task_event("failed", uuid, at + 0.2 + runtime, hostname="w@h", exception="ValueError('x')"))


def test_task_moves_through_states_and_keeps_what_a_dashboard_shows(state: MonitorState) -> None:
    notes = [state.apply(task_event("sent", "a", T0, name="t.add", args="(1, 2)", kwargs="{}", queue="godel.control"))]
    notes.append(state.apply(task_event("received", "a", T0 + 1, name="t.add", hostname="w@h", retries=0)))
    notes.append(state.apply(task_event("started", "a", T0 + 2, hostname="w@h")))
    notes.append(state.apply(task_event("succeeded", "a", T0 + 3, hostname="w@h", result="3", runtime=0.9)))

    assert [n["task"]["state"] for n in notes if n] == ["PENDING", "RECEIVED", "STARTED", "SUCCESS"]
    task = state.task("a")
    assert task["name"] == "t.add" and task["args"] == "(1, 2)" and task["result"] == "3"
    assert task["worker"] == "w@h" and task["queue"] == "godel.control" and task["runtime"] == 0.9
    assert (task["sent"], task["received"], task["started"], task["succeeded"]) == (T0, T0 + 1, T0 + 2, T0 + 3)
    assert task["timestamp"] == T0 + 3


def test_late_events_add_fields_without_rolling_the_state_back(state: MonitorState) -> None:
    state.apply(task_event("started", "a", T0 + 2, hostname="w@h"))
    state.apply(task_event("received", "a", T0 + 1, name="t.add", args="(1,)", hostname="w@h"))
    state.apply(task_event("sent", "a", T0, name="t.add", queue="q"))

    task = state.task("a")
    assert task["state"] == "STARTED" and task["name"] == "t.add" and task["queue"] == "q"
    assert task["sent"] == T0 and task["received"] == T0 + 1

    state.apply(task_event("succeeded", "a", T0 + 3, runtime=1.0))
    state.apply(task_event("revoked", "a", T0 + 4))  # revoking a finished task changes nothing
    assert state.task("a")["state"] == "SUCCESS"


def test_retry_restarts_the_cycle_and_counts_retries(state: MonitorState) -> None:
    state.apply(task_event("received", "a", T0, name="t.flaky", hostname="w@h", retries=0))
    state.apply(task_event("started", "a", T0 + 1, hostname="w@h"))
    state.apply(task_event("sent", "a", T0 + 2, name="t.flaky", retries=1))
    state.apply(task_event("retried", "a", T0 + 2, hostname="w@h", exception="IOError()", traceback="tb"))
    assert state.task("a")["state"] == "RETRY"
    assert state.task("a")["retries"] == 1 and state.task("a")["exception"] == "IOError()"

    state.apply(task_event("received", "a", T0 + 5, hostname="w@h", retries=1))
    state.apply(task_event("started", "a", T0 + 6, hostname="w@h"))
    state.apply(task_event("succeeded", "a", T0 + 7, hostname="w@h", runtime=0.1))
    assert state.task("a")["state"] == "SUCCESS" and state.task("a")["retries"] == 1


def test_failure_and_revocation(state: MonitorState) -> None:
    run(state, "f", T0, ok=False)
    state.apply(task_event("failed", "f", T0 + 1, traceback="x" * (MAX_TRACEBACK_LENGTH * 2)))
    state.apply(task_event("started", "r", T0, name="t.long", hostname="w@h"))
    state.apply(task_event("revoked", "r", T0 + 1, hostname="w@h", terminated=True, signum="15"))

    failed = state.task("f")
    assert failed["state"] == "FAILURE" and failed["exception"] == "ValueError('x')"
    assert len(failed["traceback"]) == MAX_TRACEBACK_LENGTH and failed["traceback"].endswith("…")
    assert failed["runtime"] == pytest.approx(0.5)  # from started/failed: failure events carry none
    revoked = state.task("r")
    assert revoked["state"] == "REVOKED" and revoked["terminated"] is True


def test_arguments_are_truncated(clock: Clock) -> None:
    state = MonitorState(max_arg_length=10, clock=clock)
    state.apply(task_event("received", "a", T0, name="t", args="(" + "x" * 100 + ",)", kwargs={"k": "v" * 50}))

    task = state.task("a")
    assert task["args"] == "(xxxxxxxx…" and len(task["kwargs"]) == 10


def test_cap_evicts_oldest_finished_first_and_calls_on_evict(clock: Clock) -> None:
    evicted: list[dict[str, Any]] = []
    state = MonitorState(max_tasks=3, on_evict=evicted.append, clock=clock)
    state.apply(task_event("started", "long", T0, name="t.long", hostname="w@h"))
    for n in range(4):
        run(state, f"t{n}", T0 + n)

    # The long-running task is older than all, but finished ones go first.
    assert [t["uuid"] for t in evicted] == ["t0", "t1"]
    assert evicted[0]["state"] == "SUCCESS" and evicted[0]["result"] == "3"
    assert [t["uuid"] for t in state.tasks()] == ["t3", "t2", "long"]
    assert state.summary()["tasks"]["evicted"] == 2

    state.apply(task_event("started", "new", T0 + 9, hostname="w@h"))
    state.apply(task_event("started", "newer", T0 + 9, hostname="w@h"))
    state.apply(task_event("started", "newest", T0 + 9, hostname="w@h"))
    # Only unfinished tasks left: the oldest of them goes.
    assert [t["uuid"] for t in evicted[2:]] == ["t2", "t3", "long"]
    with pytest.raises(NotFound) as info:
        state.task("long")
    assert info.value.field == "task"


def test_a_failing_evict_hook_does_not_stop_the_state(clock: Clock) -> None:
    def explode(task: dict[str, Any]) -> None:
        raise RuntimeError("database down")

    state = MonitorState(max_tasks=1, on_evict=explode, clock=clock)
    run(state, "a", T0)
    run(state, "b", T0 + 1)
    assert [t["uuid"] for t in state.tasks()] == ["b"]


def test_listing_filters_and_pages_newest_first(state: MonitorState) -> None:
    for n in range(6):
        run(state, f"t{n}", T0 + n, name="t.even" if n % 2 == 0 else "t.odd", ok=n != 5)

    assert [t["uuid"] for t in state.tasks(limit=2)] == ["t5", "t4"]
    assert [t["uuid"] for t in state.tasks(limit=2, offset=2)] == ["t3", "t2"]
    assert [t["uuid"] for t in state.tasks(name="t.even")] == ["t4", "t2", "t0"]
    assert [t["uuid"] for t in state.tasks(state="failure")] == ["t5"]
    assert state.tasks(worker="other@h") == []
    assert len(state.tasks(worker="w@h")) == 6


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"state": "done"}, "state"), ({"limit": 0}, "limit"), ({"limit": 5000}, "limit"), ({"offset": -1}, "offset")],
)
def test_bad_listing_arguments_name_the_field(state: MonitorState, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        state.tasks(**kwargs)
    assert info.value.field == field


def test_bad_caps_name_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        MonitorState(max_tasks=0)
    assert info.value.field == "max_tasks"


def test_worker_is_online_until_heartbeats_stop(state: MonitorState, clock: Clock) -> None:
    state.apply(beat("w@h", T0, "online", loadavg=[0.5, 0.25, 0.1], pid=42))
    worker = state.worker("w@h")
    assert worker["online"] is True and worker["sw_ver"] == "5.7.0" and worker["pid"] == 42
    assert worker["loadavg"] == [0.5, 0.25, 0.1] and worker["active"] == 1 and worker["processed"] == 7
    assert worker["pool"] is None and state.refresh_due(15.0) == ["w@h"]

    clock.now = T0 + 3.9  # within two heartbeat intervals
    assert state.expire_workers() == [] and state.worker("w@h")["online"] is True
    clock.now = T0 + 4.1
    assert state.worker("w@h")["online"] is False
    lost = state.expire_workers()
    assert [n["type"] for n in lost] == ["worker-lost"] and lost[0]["worker"]["hostname"] == "w@h"
    assert state.expire_workers() == []  # reported once

    state.apply(beat("w@h", T0 + 5))
    clock.now = T0 + 5
    assert state.worker("w@h")["online"] is True
    assert state.summary()["workers"] == {"total": 1, "online": 1, "offline": 0}


def test_worker_offline_event_and_explicit_timeout(clock: Clock) -> None:
    state = MonitorState(heartbeat_timeout=60.0, clock=clock)
    state.apply(beat("a@h", T0))
    state.apply(beat("b@h", T0))
    state.apply(beat("b@h", T0 + 1, "offline"))
    clock.now = T0 + 30

    assert {w["hostname"]: w["online"] for w in state.workers()} == {"a@h": True, "b@h": False}
    with pytest.raises(NotFound) as info:
        state.worker("c@h")
    assert info.value.field == "worker"


def test_worker_info_from_inspect(state: MonitorState, clock: Clock) -> None:
    state.apply(beat("p@h", T0))
    state.apply(beat("t@h", T0))
    prefork = {"implementation": "celery.concurrency.prefork:TaskPool", "max-concurrency": 2, "processes": [1, 2, 3]}
    threads = {"implementation": "celery.concurrency.thread:TaskPool", "max-concurrency": 8, "threads": 1}
    queues = [{"name": "godel.worker"}, {"name": "godel.control"}]
    state.update_worker_info("p@h", stats={"pool": prefork, "uptime": 5}, reserved=[{}, {}], active_queues=queues)
    state.update_worker_info("t@h", stats={"pool": threads, "prefetch_count": 8})

    prefork_worker = state.worker("p@h")
    assert prefork_worker["pool"] == {"implementation": prefork["implementation"], "max_concurrency": 2, "size": 3}
    assert prefork_worker["reserved"] == 2 and prefork_worker["queues"] == ["godel.control", "godel.worker"]
    assert state.worker("t@h")["pool"]["size"] == 8  # threads are created lazily: the limit is the size
    assert state.refresh_due(15.0) == []
    clock.now = T0 + 1
    state.apply(beat("p@h", T0 + 1, "online"))  # restarted: ask again
    assert state.refresh_due(15.0) == ["p@h"]
    assert state.update_worker_info("ghost@h", stats={"pool": prefork}) is None


def test_workers_are_capped(clock: Clock) -> None:
    state = MonitorState(max_workers=2, clock=clock)
    for n in range(3):
        state.apply(beat(f"w{n}@h", T0 + n))
    assert [w["hostname"] for w in state.workers()] == ["w1@h", "w2@h"]


def test_per_worker_outcome_counts(state: MonitorState) -> None:
    state.apply(beat("w@h", T0))
    run(state, "a", T0)
    run(state, "b", T0, ok=False)
    worker = state.worker("w@h")
    assert (worker["succeeded"], worker["failed"]) == (1, 1)


def test_rates_over_sliding_windows_and_runtime_percentiles(state: MonitorState, clock: Clock) -> None:
    clock.now = T0 + 1000
    for n in range(100):
        run(state, f"ok{n}", T0 + 1000 - 30, name="t.add", runtime=(n + 1) / 100)
    run(state, "old", T0 + 1000 - 200, name="t.add")  # inside 5m and 15m only
    run(state, "older", T0 + 1000 - 600, name="t.add")  # inside 15m only
    run(state, "ancient", T0, name="t.add")  # outside every window
    for n in range(3):
        run(state, f"bad{n}", T0 + 1000 - 10, name="t.fail", ok=False)

    rates = state.rates()
    add = rates["tasks"]["t.add"]
    assert add["succeeded"] == {"1m": 100.0, "5m": pytest.approx(101 / 5), "15m": pytest.approx(102 / 15)}
    assert add["failed"] == {"1m": 0.0, "5m": 0.0, "15m": 0.0}
    assert rates["tasks"]["t.fail"]["failed"]["1m"] == 3.0
    assert rates["all"]["failed"]["1m"] == 3.0 and rates["all"]["succeeded"]["1m"] == 100.0
    runtime = add["runtime"]
    assert runtime["samples"] == 103
    assert (runtime["p50"], runtime["p90"], runtime["p99"]) == (0.5, 0.9, 0.99)  # nearest rank
    assert rates["tasks"]["t.fail"]["runtime"] == {"samples": 0, "p50": None, "p90": None, "p99": None}
    assert rates["windows"] == {"1m": 60, "5m": 300, "15m": 900}

    clock.now = T0 + 5000  # everything slid out; runtimes stay
    assert state.rates()["all"]["succeeded"] == {"1m": 0.0, "5m": 0.0, "15m": 0.0}


def test_summary_counts_by_state_and_everything_is_json(state: MonitorState) -> None:
    state.apply(beat("w@h", T0))
    run(state, "a", T0)
    run(state, "b", T0, ok=False)
    state.apply(task_event("sent", "c", T0, name="t.add"))
    state.apply({"type": "task-custom", "uuid": "d"})  # unknown events are counted, not kept

    summary = state.summary()
    assert summary["tasks"]["total"] == 3
    assert summary["tasks"]["by_state"] == {
        "PENDING": 1,
        "RECEIVED": 0,
        "STARTED": 0,
        "SUCCESS": 1,
        "FAILURE": 1,
        "RETRY": 0,
        "REVOKED": 0,
        "REJECTED": 0,
    }
    assert summary["events"] == 11
    json.dumps([summary, state.workers(), state.tasks(), state.rates(), state.task("a")])
