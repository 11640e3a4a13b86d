"""The Celery monitor over HTTP and audited worker control, against real workers and Redis."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from godel import keys, stack
from godel.broker import ALL_QUEUES
from godel.context import build_context
from godel.storage.db import session_scope
from godel.storage.models import AuditEvent
from tests.integration.test_api_serve import ApiServer, running_server

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("celery_worker")]


@pytest.fixture(scope="module")
def admin(godel_env: dict[str, str]) -> str:
    return keys.create(build_context().store, scopes=["admin"], name="ops")[1]


@pytest.fixture(scope="module")
def server(godel_env: dict[str, str], celery_worker: object, admin: str) -> Iterator[ApiServer]:
    with running_server(godel_env, GODEL_AUTH="on") as running:
        running.key = admin
        yield running


def eventually(server: ApiServer, path: str, check: Callable[[Any], bool], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        body = server.get(path).json()
        if check(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def online(server: ApiServer, prefix: str = "test-") -> str:
    body = eventually(
        server,
        "/api/v1/monitor/workers",
        lambda b: any(w["online"] and w["hostname"].startswith(prefix) for w in b["items"]),
    )
    name: str = next(w["hostname"] for w in body["items"] if w["online"] and w["hostname"].startswith(prefix))
    return name


def audit_trail(server: ApiServer) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = server.get("/api/v1/audit").json()["items"]
    return items


def test_workers_tasks_queues_rates_and_summary(server: ApiServer, git_repo: Path, fake_agent: str) -> None:
    name = online(server)
    worker = server.get(f"/api/v1/monitor/workers/{name}").json()
    assert worker["hostname"] == name and worker["online"] is True and worker["sw_ident"]
    queues = server.get("/api/v1/monitor/queues").json()["items"]
    assert [q["name"] for q in queues][: len(ALL_QUEUES)] == ALL_QUEUES
    assert all(set(q["priorities"]) == {"0", "3", "6", "9"} for q in queues)

    body = {"text": "fix the typo in the README", "repo": str(git_repo), "runtime": "command", "agent_cmd": fake_agent}
    job_id = server.post("/api/v1/jobs", json=body).json()["job_id"]
    server.wait_job(job_id)
    done = eventually(
        server,
        "/api/v1/monitor/tasks?state=SUCCESS&name=godel.agent.worker",
        lambda b: any(
            json.dumps(job_id) in (t.get("args") or "") or job_id in (t.get("args") or "") for t in b["items"]
        ),
    )
    task = next(t for t in done["items"] if job_id in (t.get("args") or ""))
    assert task["worker"] == name and task["runtime"] is not None and "kwargs" in task
    assert server.get(f"/api/v1/monitor/tasks/{task['uuid']}").json()["uuid"] == task["uuid"]
    rates = server.get("/api/v1/monitor/rates").json()
    assert rates["windows"] == {"1m": 60, "5m": 300, "15m": 900}
    assert rates["tasks"]["godel.agent.worker"]["succeeded"]["1m"] > 0
    summary = server.get("/api/v1/monitor/summary").json()
    assert summary["workers"]["online"] >= 1 and summary["monitor"]["connected"] is True

    for path, status, field in (
        ("/api/v1/monitor/workers/nobody@nowhere", 404, "worker"),
        ("/api/v1/monitor/tasks/no-such-task", 404, "task"),
        ("/api/v1/monitor/tasks?state=SLEEPING", 422, "state"),
        ("/api/v1/monitor/tasks?limit=0", 422, "limit"),
    ):
        response = server.get(path)
        assert (response.status_code, response.json()["error"]["field"]) == (status, field), path


def test_control_needs_admin_and_every_action_is_audited(
    server: ApiServer, godel_env: dict[str, str], admin: str
) -> None:
    name = online(server)
    writer = keys.create(build_context().store, scopes=["write"])[1]
    forbidden = server.post("/api/v1/monitor/tasks/abc/revoke", key=writer, json={})
    assert forbidden.status_code == 403

    revoked = server.post("/api/v1/monitor/tasks/abc/revoke", json={"terminate": True, "signal": "KILL"})
    assert revoked.status_code == 200, revoked.text
    result = revoked.json()
    assert result["action"] == "revoke" and result["task_id"] == "abc" and result["signal"] == "SIGKILL"
    assert result["audit_id"]

    limited = server.post(
        "/api/v1/monitor/rate-limit", json={"task_name": "godel.agent.worker", "rate_limit": "10/m", "worker": name}
    )
    assert limited.status_code == 200 and limited.json()["ok"] is True and limited.json()["worker"] == name
    cleared = server.post("/api/v1/monitor/rate-limit", json={"task_name": "godel.agent.worker", "rate_limit": None})
    assert cleared.status_code == 200 and cleared.json()["rate_limit"] is None
    bad = server.post("/api/v1/monitor/rate-limit", json={"task_name": "godel.agent.worker", "rate_limit": "fast"})
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "rate_limit")

    grow = server.post(f"/api/v1/monitor/workers/{name}/pool/grow", json={"n": 1})
    assert grow.status_code == 409 and grow.json()["error"]["field"] == "worker"  # a threads pool cannot grow
    assert server.post(f"/api/v1/monitor/workers/{name}/pool/grow", json={"n": 0}).status_code == 422
    missing = server.post("/api/v1/monitor/workers/nobody@nowhere/shutdown")
    assert (missing.status_code, missing.json()["error"]["field"]) == (404, "worker")

    admin_id = admin[4:16]
    trail = [(r["action"], r["target"], r["ok"], r["actor"]) for r in audit_trail(server)]
    assert ("task.revoke", "abc", True, admin_id) in trail
    assert ("task.rate_limit", "godel.agent.worker", True, admin_id) in trail
    assert ("task.rate_limit", "godel.agent.worker", False, admin_id) in trail
    assert ("worker.pool_grow", name, False, admin_id) in trail
    assert ("worker.shutdown", "nobody@nowhere", False, admin_id) in trail

    stream = redis.Redis.from_url(godel_env["GODEL_REDIS_URL"], decode_responses=True)
    published = [json.loads(f["audit"]) for _id, f in stream.xrevrange("godel:events", count=200) if "audit" in f]
    assert {"task.revoke", "worker.pool_grow", "worker.shutdown"} <= {r["action"] for r in published}
    with session_scope(godel_env["GODEL_DATABASE_URL"]) as s:  # and kept in the database
        stored = {(row.action, row.target, row.ok) for row in s.scalars(select(AuditEvent))}
    assert ("task.revoke", "abc", True) in stored and ("worker.shutdown", "nobody@nowhere", False) in stored


def test_shutdown_stops_a_worker(server: ApiServer, godel_env: dict[str, str]) -> None:
    prefix = f"extra-{uuid.uuid4().hex[:6]}"
    extra = subprocess.Popen(
        stack.worker_argv(queues=["godel.test.idle"], concurrency=1, pool="threads", name=f"{prefix}@%h"),
        env={**os.environ, **godel_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        name = online(server, prefix)
        stopped = server.post(f"/api/v1/monitor/workers/{name}/shutdown")
        assert stopped.status_code == 200 and stopped.json()["action"] == "shutdown"
        assert extra.wait(timeout=30) == 0
        assert ("worker.shutdown", name, True) in [(r["action"], r["target"], r["ok"]) for r in audit_trail(server)]
    finally:
        if extra.poll() is None:
            extra.kill()
            extra.wait()
