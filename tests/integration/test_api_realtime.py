"""Socket.IO against a real server and worker: the overview feed, job replay across reconnects, queues."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import socketio

from godel.broker import ALL_QUEUES
from godel.storage.models import utcnow
from tests.integration.test_api_serve import ApiServer, running_server

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("celery_worker")]

TYPO = "fix the typo in the README"


@pytest.fixture(scope="module")
def server(godel_env: dict[str, str], celery_worker: object) -> Iterator[ApiServer]:
    with running_server(godel_env) as running:
        yield running


class Listener:
    """A Socket.IO client on one namespace that keeps what each event brought."""

    def __init__(self, server: ApiServer, namespace: str, *events: str) -> None:
        self.namespace = namespace
        self.received: dict[str, list[Any]] = {name: [] for name in events}
        self.changed = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        for name in events:
            self.client.on(name, self._keeper(name), namespace=namespace)
        self.client.connect(server.url, namespaces=[namespace], transports=["websocket"], wait_timeout=10)

    def _keeper(self, name: str) -> Callable[[Any], None]:
        def keep(data: Any) -> None:
            with self.changed:
                self.received[name].append(data)
                self.changed.notify_all()

        return keep

    def call(self, event: str, data: Any = None) -> Any:
        return self.client.call(event, data, namespace=self.namespace, timeout=10)

    def wait_for(self, name: str, done: Callable[[list[Any]], bool], timeout: float = 60) -> list[Any]:
        with self.changed:
            if not self.changed.wait_for(lambda: done(self.received[name]), timeout):
                raise AssertionError(f"{name} on {self.namespace}: only {self.received[name]}")
            return list(self.received[name])

    def close(self) -> None:
        self.client.disconnect()


def submit(server: ApiServer, repo: Path, agent_cmd: str) -> str:
    body = {"text": TYPO, "repo": str(repo), "runtime": "command", "agent_cmd": agent_cmd}
    response = server.post("/api/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def finished(job_id: str) -> Callable[[list[Any]], bool]:
    return lambda events: any(e["job_id"] == job_id and e["type"] == "job.finished" for e in events)


def stored_ids(server: ApiServer, job_id: str) -> list[str]:
    return [e["id"] for e in server.get(f"/api/v1/jobs/{job_id}/events").json()["items"]]


def test_overview_streams_every_event_of_a_job_in_order(server: ApiServer, git_repo: Path, fake_agent: str) -> None:
    overview = Listener(server, "/overview", "event")
    try:
        job_id = submit(server, git_repo, fake_agent)
        events = overview.wait_for("event", finished(job_id))
    finally:
        overview.close()
    mine = [(e["type"], e["agent"], e["ts"]) for e in events if e["job_id"] == job_id]
    stored = server.get(f"/api/v1/jobs/{job_id}/events").json()["items"]
    assert mine == [(e["type"], e["agent"], e["ts"]) for e in stored]
    assert all(e["id"] is None and e["global_id"] for e in events)
    count = 'godel_event_fanout_lag_seconds_count{namespace="/overview"} '
    line = next(line for line in server.get("/metrics").text.splitlines() if line.startswith(count))
    assert float(line.split()[-1]) >= len(mine)


def test_reconnecting_with_the_last_id_loses_nothing(server: ApiServer, git_repo: Path, fake_agent: str) -> None:
    job_id = submit(server, git_repo, f"FAKE_AGENT=sleep FAKE_AGENT_SLEEP=2 {fake_agent}")
    first = Listener(server, "/jobs", "event")
    assert first.call("subscribe", {"job_id": job_id, "last_id": "0"}) == {"ok": True, "job_id": job_id, "last_id": "0"}
    first.wait_for("event", lambda events: len(events) >= 1)
    first.close()
    time.sleep(0.3)
    before = list(first.received["event"])  # all that arrived before the disconnect completed
    missed_from = len(before)
    deadline = time.monotonic() + 30
    while len(stored_ids(server, job_id)) <= missed_from:  # the job moves on while nobody listens
        assert time.monotonic() < deadline
        time.sleep(0.1)
    reconnected_at = utcnow()

    second = Listener(server, "/jobs", "event")
    try:
        ack = second.call("subscribe", {"job_id": job_id, "last_id": before[-1]["id"]})
        assert ack == {"ok": True, "job_id": job_id, "last_id": before[-1]["id"]}
        after = second.wait_for("event", finished(job_id))
    finally:
        second.close()

    union = [e["id"] for e in before + after]
    assert len(union) == len(set(union)), "an event arrived twice"
    assert union == stored_ids(server, job_id)
    missed = datetime.fromisoformat(after[0]["ts"])
    assert missed < reconnected_at, "the first event after reconnecting is one that happened while away"


def test_subscribe_answers_with_errors_naming_the_field(server: ApiServer) -> None:
    jobs = Listener(server, "/jobs", "event")
    try:
        unknown = jobs.call("subscribe", {"job_id": "zzzzzzzz"})
        assert unknown == {"ok": False, "error": {"code": "not_found", "message": "no job 'zzzzzzzz'", "field": "job"}}
        assert jobs.call("subscribe", {"job_id": "zzzzzzzz", "last_id": "later"})["error"]["field"] == "last_id"
        assert jobs.call("subscribe", "not an object")["error"]["field"] == "job_id"
        assert jobs.call("unsubscribe", {"job_id": "zzzzzzzz"}) == {"ok": True}
    finally:
        jobs.close()


def test_queues_namespace_reports_depths_and_workers(server: ApiServer, git_repo: Path, fake_agent: str) -> None:
    queues = Listener(server, "/queues", "queues", "celery")
    try:
        snapshot = queues.call("snapshot")
        assert set(snapshot["queues"]) == set(ALL_QUEUES)
        pushed = queues.wait_for("queues", lambda got: any(s["workers"]["online"] for s in got), timeout=30)
        assert pushed[-1]["workers"]["total"] >= 1
        submit(server, git_repo, fake_agent)
        notes = queues.wait_for("celery", lambda got: any(n["type"] == "task-succeeded" for n in got), timeout=60)
        assert any(n["task"]["name"] == "godel.agent.worker" for n in notes if "task" in n)
    finally:
        queues.close()
