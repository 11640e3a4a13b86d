"""Agents, sessions, worktrees, metrics, /metrics and the OpenAPI document, on rows in the real database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from godel.context import build_context
from godel.storage.models import Agent, Cost, Job, Message, Session, utcnow
from godel.storage.store import Store
from tests.integration.test_api_serve import ApiServer, running_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(godel_env: dict[str, str]) -> Iterator[ApiServer]:
    with running_server(godel_env) as running:
        yield running


@pytest.fixture(scope="module")
def store(godel_env: dict[str, str]) -> Store:
    return build_context().store


def seed_job(
    store: Store,
    *,
    status: str = "running",
    intent: str = "fix_bug",
    agents: list[Agent] | None = None,
    started: datetime | None = None,
    finished: datetime | None = None,
) -> Job:
    job_id = uuid.uuid4().hex[:12]
    job = Job(
        id=job_id,
        text="seeded",
        intent={"intent": intent},
        template="bug-fix",
        status=status,
        repo_path="/nonexistent",
        base_ref="0" * 40,
        base_branch="main",
        branch=f"godel/{job_id}",
        runtime="command",
        created_at=started or utcnow(),
        started_at=started,
        finished_at=finished,
    )
    store.add_job(job, agents or [Agent(name="worker-1", role="worker", state="running", runtime="command")])
    return store.job(job_id)


def seed_session(store: Store, job: Job, agent: str, contents: list[str], **links: Any) -> Session:
    session = Session(id=uuid.uuid4().hex[:16], job_id=job.id, agent=agent, runtime="command", model="m", **links)
    messages = [
        Message(
            role="user" if i % 2 == 0 else "assistant",
            content=text,
            tool_calls=[{"name": "edit"}, {"name": "run"}] if i == 1 else None,
            input_tokens=10,
            output_tokens=5,
        )
        for i, text in enumerate(contents)
    ]
    store.add_session(session, messages)
    return next(s for s in store.sessions(job.id) if s.id == session.id)


def test_agents_across_jobs_filter_and_page(server: ApiServer, store: Store) -> None:
    job = seed_job(
        store,
        agents=[
            Agent(name="coordinator", role="coordinator", state="succeeded", runtime="command"),
            Agent(name="worker-1", role="worker", state="running", runtime="command"),
            Agent(name="reviewer-1", role="reviewer", state="queued", runtime="command"),
        ],
    )
    running = server.get("/api/v1/agents", params={"status": "running", "limit": 500}).json()
    assert {a["state"] for a in running["items"]} == {"running"} and running["total"] == len(running["items"])
    assert (job.id, "worker-1") in [(a["job_id"], a["name"]) for a in running["items"]]
    mine = server.get("/api/v1/agents", params={"job_id": job.id}).json()
    assert mine["total"] == 3 and {a["name"] for a in mine["items"]} == {"coordinator", "worker-1", "reviewer-1"}
    reviewers = server.get("/api/v1/agents", params={"job_id": job.id, "role": "reviewer"}).json()["items"]
    assert [a["name"] for a in reviewers] == ["reviewer-1"]
    page = server.get("/api/v1/agents", params={"job_id": job.id, "limit": 2, "offset": 2}).json()
    assert (page["total"], len(page["items"]), page["limit"], page["offset"]) == (3, 1, 2, 2)
    for params, field in (({"limit": 501}, "limit"), ({"state": "running"}, "state")):
        response = server.get("/api/v1/agents", params=params)
        assert (response.status_code, response.json()["error"]["field"]) == (422, field)


def test_an_agents_sessions_carry_messages_tool_calls_and_tokens(server: ApiServer, store: Store) -> None:
    job = seed_job(store)
    seed_session(store, job, "worker-1", ["do it", "done"])
    seed_session(store, job, "worker-1", ["again", "done again", "thanks"])
    body = server.get(f"/api/v1/jobs/{job.id[:8]}/agents/worker-1/session").json()
    assert body["job_id"] == job.id and body["agent"] == "worker-1"
    assert [len(s["messages"]) for s in body["items"]] == [2, 3]
    assert [s["tool_calls"] for s in body["items"]] == [2, 2]
    assert (body["input_tokens"], body["output_tokens"]) == (50, 25)
    assert body["items"][0]["messages"][1]["tool_calls"] == [{"name": "edit"}, {"name": "run"}]
    missing = server.get(f"/api/v1/jobs/{job.id}/agents/nobody/session")
    assert (missing.status_code, missing.json()["error"]["field"]) == (404, "agent")


def test_forking_a_session_builds_a_tree(server: ApiServer, store: Store) -> None:
    job = seed_job(store)
    root = seed_session(store, job, "worker-1", ["one", "two", "three", "four"])
    other = seed_session(store, job, "worker-1", ["elsewhere"])
    second = root.messages[1].id

    forked = server.post(f"/api/v1/sessions/{root.id}/fork", json={"message_id": second})
    assert forked.status_code == 201, forked.text
    fork = forked.json()
    assert forked.headers["Location"] == f"/api/v1/sessions/{fork['id']}"
    assert (fork["parent_id"], fork["parent_message_id"], fork["job_id"]) == (root.id, second, job.id)
    assert [m["content"] for m in fork["messages"]] == ["one", "two"]
    assert fork["input_tokens"] == 20 and fork["children"] == []

    grandchild = server.post(f"/api/v1/sessions/{fork['id']}/fork", json={"message_id": fork["messages"][0]["id"]})
    deeper = grandchild.json()
    assert [m["content"] for m in deeper["messages"]] == ["one"]

    assert server.get(f"/api/v1/sessions/{root.id}").json()["children"] == [fork["id"]]
    children = server.get(f"/api/v1/sessions/{root.id}/children").json()["items"]
    assert [c["id"] for c in children] == [fork["id"]]
    ancestors = server.get(f"/api/v1/sessions/{deeper['id']}/ancestors").json()["items"]
    assert [a["id"] for a in ancestors] == [fork["id"], root.id]
    assert server.get(f"/api/v1/sessions/{root.id}/ancestors").json()["items"] == []

    for body, field in (
        ({"message_id": other.messages[0].id}, "message_id"),
        ({"message_id": 0}, "message_id"),
        ({}, "message_id"),
        ({"message_id": second, "extra": 1}, "extra"),
    ):
        response = server.post(f"/api/v1/sessions/{root.id}/fork", json=body)
        assert (response.status_code, response.json()["error"]["field"]) == (422, field), body
    for path in ("", "/children", "/ancestors"):
        missing = server.get(f"/api/v1/sessions/nope{path}")
        assert (missing.status_code, missing.json()["error"]["field"]) == (404, "session"), path
    assert server.post("/api/v1/sessions/nope/fork", json={"message_id": 1}).status_code == 404


def test_worktrees_on_disk_with_owner_size_and_cleanup_state(server: ApiServer, store: Store, tmp_path: Path) -> None:
    active, leftover, gone = tmp_path / "active", tmp_path / "leftover", tmp_path / "gone"
    (active / "src").mkdir(parents=True)
    (active / "src" / "a.py").write_bytes(b"x" * 1000)
    (active / "b.txt").write_bytes(b"y" * 234)
    leftover.mkdir()
    (leftover / "c").write_bytes(b"z" * 10)
    running = seed_job(
        store,
        agents=[
            Agent(
                name="worker-1", role="worker", state="running", runtime="command", worktree=str(active), branch="b1"
            ),
            Agent(name="worker-2", role="worker", state="running", runtime="command", worktree=str(gone), branch="b2"),
        ],
    )
    ended_at = utcnow() - timedelta(hours=3)
    ended = seed_job(
        store,
        status="failed",
        started=ended_at - timedelta(minutes=1),
        finished=ended_at,
        agents=[Agent(name="worker-1", role="worker", state="failed", runtime="command", worktree=str(leftover))],
    )
    listing = server.get("/api/v1/worktrees").json()
    found = {w["path"]: w for w in listing["items"]}
    assert str(gone) not in found
    assert found[str(active)] | {} == {
        "path": str(active),
        "job_id": running.id,
        "agent": "worker-1",
        "role": "worker",
        "branch": "b1",
        "job_status": "running",
        "agent_state": "running",
        "size_bytes": 1234,
        "cleanup": "active",
    }
    assert (found[str(leftover)]["job_id"], found[str(leftover)]["cleanup"]) == (ended.id, "pending")
    assert listing["total_bytes"] == sum(w["size_bytes"] for w in listing["items"])


def test_metric_aggregates(server: ApiServer, store: Store) -> None:
    now = utcnow()
    durations = [10, 20, 30, 40, 100]
    for seconds in durations:
        finished = now - timedelta(minutes=2)
        seed_job(store, status="succeeded", started=finished - timedelta(seconds=seconds), finished=finished)
    job = seed_job(store, status="succeeded", started=now - timedelta(days=3), finished=now - timedelta(days=1))
    for provider, model, usd, when in (
        ("openai", "gpt", 0.5, now),
        ("openai", "gpt", 0.25, now),
        ("anthropic", "claude", 1.0, now),
        ("openai", "gpt", 2.0, now - timedelta(days=1)),
    ):
        store.add_cost(
            Cost(
                job_id=job.id,
                agent="worker-1",
                provider=provider,
                model=model,
                cost_usd=usd,
                input_tokens=3,
                output_tokens=4,
                created_at=when,
            )
        )

    states = server.get("/api/v1/metrics/states").json()
    assert states["jobs"]["succeeded"] >= 6 and set(states) == {"jobs", "agents", "tasks"}
    assert states["agents"]["running"] >= 1 and "PENDING" in states["tasks"]

    throughput = server.get("/api/v1/metrics/throughput").json()
    assert len(throughput["items"]) == 60 and throughput["total"] == 5
    assert throughput["per_minute"] == pytest.approx(5 / 60, abs=1e-4)
    assert sum(p["finished"] for p in throughput["items"][-4:]) == 5
    assert len(server.get("/api/v1/metrics/throughput", params={"minutes": 5}).json()["items"]) == 5

    latency = server.get("/api/v1/metrics/latency", params={"hours": 1}).json()
    assert latency["count"] == 5
    assert (latency["p50"], latency["p90"], latency["p99"], latency["mean"]) == pytest.approx((30, 76, 97.6, 40))
    assert server.get("/api/v1/metrics/latency", params={"hours": 72}).json()["count"] >= 6

    costs = server.get("/api/v1/metrics/costs", params={"days": 2}).json()
    today, yesterday = now.date().isoformat(), (now - timedelta(days=1)).date().isoformat()
    rows = {(r["day"], r["provider"], r["model"]): r for r in costs["items"]}
    assert rows[(today, "openai", "gpt")]["cost_usd"] == pytest.approx(0.75)
    assert rows[(today, "openai", "gpt")]["input_tokens"] == 6
    assert rows[(today, "anthropic", "claude")]["cost_usd"] == pytest.approx(1.0)
    assert rows[(yesterday, "openai", "gpt")]["cost_usd"] == pytest.approx(2.0)
    assert costs["total_usd"] == pytest.approx(3.75)
    assert {r["day"] for r in server.get("/api/v1/metrics/costs", params={"days": 1}).json()["items"]} == {today}

    for path, params, field in (
        ("throughput", {"minutes": 0}, "minutes"),
        ("latency", {"hours": "x"}, "hours"),
        ("costs", {"days": 400}, "days"),
    ):
        response = server.get(f"/api/v1/metrics/{path}", params=params)
        assert (response.status_code, response.json()["error"]["field"]) == (422, field)


def test_prometheus_exposition(server: ApiServer, store: Store) -> None:
    job = seed_job(store, status="queued")
    started = utcnow() - timedelta(seconds=3)
    store.upsert_task(
        "t-" + job.id,
        job.id,
        name="godel.agent.worker",
        state="SUCCESS",
        started_at=started,
        finished_at=started + timedelta(seconds=2),
    )
    store.add_cost(Cost(job_id=job.id, provider="fake", model="fake-1", cost_usd=0.5, input_tokens=7))
    server.get("/api/v1/jobs")
    text = server.get("/metrics").text
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    queued = server.get("/api/v1/jobs", params={"status": "queued"}).json()["total"]
    assert float(samples['godel_jobs{state="queued"}']) == queued
    assert float(samples["godel_database_up"]) == 1.0 and float(samples["godel_redis_up"]) == 1.0
    assert float(samples['godel_queue_depth{queue="godel.worker"}']) >= 0
    assert float(samples['godel_task_runtime_seconds_bucket{le="2.5",task="godel.agent.worker"}']) >= 1
    assert float(samples['godel_task_runtime_seconds_bucket{le="1.0",task="godel.agent.worker"}']) == 0
    assert float(samples['godel_cost_usd_total{model="fake-1",provider="fake"}']) == pytest.approx(0.5)
    assert float(samples['godel_tokens_total{kind="input",model="fake-1",provider="fake"}']) == 7
    latency = 'godel_api_request_duration_seconds_count{method="GET",route="/api/v1/jobs",status="200"}'
    assert float(samples[latency]) >= 1
    assert server.get("/metrics").headers["Content-Type"].startswith("text/plain")


def test_openapi_describes_every_route_from_the_models(server: ApiServer) -> None:
    spec = server.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.1") and "security" not in spec  # auth is off here
    paths = spec["paths"]
    for path, method in (
        ("/api/v1/jobs", "post"),
        ("/api/v1/jobs", "get"),
        ("/api/v1/jobs/{job_id}/events", "get"),
        ("/api/v1/jobs/{job_id}/agents/{name}/session", "get"),
        ("/api/v1/sessions/{session_id}/fork", "post"),
        ("/api/v1/worktrees", "get"),
        ("/api/v1/metrics/latency", "get"),
        ("/api/v1/monitor/workers/{name}/shutdown", "post"),
        ("/api/v1/keys/{key_id}", "delete"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
    ):
        assert method in paths[path], (path, method)
    submit = paths["/api/v1/jobs"]["post"]
    assert submit["x-required-scope"] == "write" and {"201", "401", "403", "422", "429"} <= set(submit["responses"])
    assert paths["/api/v1/keys"]["post"]["x-required-scope"] == "admin"
    assert paths["/health/live"]["get"]["security"] == []
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert {p["name"] for p in paths["/api/v1/jobs"]["get"]["parameters"]} == {"status", "intent", "limit", "offset"}
    schemas = spec["components"]["schemas"]
    assert "confirm" in schemas["JobSubmit"]["properties"] and "repo" in schemas["JobSubmit"]["required"]
    assert schemas["ErrorDetail"]["required"] == ["code", "message"]

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in refs(spec):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
