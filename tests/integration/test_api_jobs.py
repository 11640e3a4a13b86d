"""Jobs over HTTP against a real server, Celery worker, Redis and database; and the HTTP client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from godel import stack
from godel.client import Client
from godel.context import build_context
from godel.errors import Conflict, NotFound, ServiceUnavailable, ValidationError
from tests.integration.test_api_serve import ApiServer, running_server

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("celery_worker")]

TYPO = "fix the typo in the README"


@pytest.fixture(scope="module")
def server(godel_env: dict[str, str], celery_worker: object) -> Iterator[ApiServer]:
    with running_server(godel_env) as running:
        yield running


def submit(server: ApiServer, repo: Path, text: str, agent_cmd: str, **extra: Any) -> requests.Response:
    body = {"text": text, "repo": str(repo), "runtime": "command", "agent_cmd": agent_cmd, **extra}
    return server.post("/api/v1/jobs", json=body)


def test_a_submitted_job_runs_and_every_view_of_it_agrees(server: ApiServer, git_repo: Path, fake_agent: str) -> None:
    created = submit(server, git_repo, TYPO, fake_agent, timeout="5m")
    assert created.status_code == 201, created.text
    job = created.json()
    job_id = job["job_id"]
    assert created.headers["Location"] == f"/api/v1/jobs/{job_id}"
    assert job["status"] == "queued" and job["repo"] == str(git_repo) and job["team"]

    done = server.wait_job(job_id)
    assert done["status"] == "succeeded", done["error"]
    assert done["branch"] == f"godel/{job_id}"
    assert server.get(f"/api/v1/jobs/{job_id[:6]}").json()["job_id"] == job_id

    plan = server.get(f"/api/v1/jobs/{job_id}/plan").json()
    assert plan["job_id"] == job_id and plan["plan"]["assignments"]
    agents = server.get(f"/api/v1/jobs/{job_id}/agents").json()["items"]
    assert agents and {a["state"] for a in agents} == {"succeeded"}
    tasks = server.get(f"/api/v1/jobs/{job_id}/tasks").json()["items"]
    assert {t["state"] for t in tasks} == {"SUCCESS"} and any(t["name"] == "godel.agent.worker" for t in tasks)

    events = server.get(f"/api/v1/jobs/{job_id}/events").json()
    ids = [e["id"] for e in events["items"]]
    assert events["items"][0]["type"] == "job.submitted" and events["items"][-1]["type"] == "job.finished"
    assert events["last_id"] == ids[-1]
    assert ids == [e.stream_id for e in build_context().store.events(job_id)]
    after = server.get(f"/api/v1/jobs/{job_id}/events", params={"after": ids[2]}).json()
    assert [e["id"] for e in after["items"]] == ids[3:]
    two = server.get(f"/api/v1/jobs/{job_id}/events", params={"limit": 2}).json()
    assert [e["id"] for e in two["items"]] == ids[:2] and two["last_id"] == ids[1]
    nothing = server.get(f"/api/v1/jobs/{job_id}/events", params={"after": ids[-1]}).json()
    assert nothing == {"items": [], "last_id": ids[-1]}

    costs = server.get(f"/api/v1/jobs/{job_id}/costs").json()
    assert costs["items"] and {c["provider"] for c in costs["items"]} == {"fake"}
    assert costs["total_usd"] == pytest.approx(sum(c["cost_usd"] for c in costs["items"]))
    assert costs["total_usd"] == pytest.approx(done["cost_usd"])
    assert costs["output_tokens"] == 42 * len(costs["items"])

    rolled = server.post(f"/api/v1/jobs/{job_id}/rollback")
    assert rolled.status_code == 200
    assert rolled.json()["job_id"] == job_id and f"deleted godel/{job_id}" in rolled.json()["undone"]


def test_listing_filters_by_status_and_intent_and_pages_with_a_total(
    server: ApiServer, git_repo: Path, fake_agent: str
) -> None:
    docs = submit(server, git_repo, TYPO, fake_agent).json()["job_id"]
    fix = submit(server, git_repo, "Fix the crash in the login handler", fake_agent, workers=1).json()["job_id"]
    assert server.wait_job(docs)["intent"] == "document"
    assert server.wait_job(fix)["intent"] == "fix_bug"

    fixes = server.get("/api/v1/jobs", params={"intent": "fix_bug", "limit": 500}).json()
    assert fix in [j["job_id"] for j in fixes["items"]] and docs not in [j["job_id"] for j in fixes["items"]]
    assert {j["intent"] for j in fixes["items"]} == {"fix_bug"} and fixes["total"] == len(fixes["items"])
    ok_docs = server.get("/api/v1/jobs", params={"intent": "document", "status": "succeeded"}).json()
    assert docs in [j["job_id"] for j in ok_docs["items"]]
    assert {(j["intent"], j["status"]) for j in ok_docs["items"]} == {("document", "succeeded")}

    everything = server.get("/api/v1/jobs", params={"limit": 500}).json()
    assert everything["total"] == len(everything["items"]) >= 2
    first = server.get("/api/v1/jobs", params={"limit": 1}).json()
    second = server.get("/api/v1/jobs", params={"limit": 1, "offset": 1}).json()
    assert (first["limit"], first["offset"], second["offset"]) == (1, 0, 1)
    assert first["total"] == second["total"] == everything["total"]
    assert [first["items"][0]["job_id"], second["items"][0]["job_id"]] == [j["job_id"] for j in everything["items"][:2]]


def test_cancel_stops_a_running_job_then_conflicts(server: ApiServer, git_repo: Path, fake_agent: str) -> None:
    job_id = submit(server, git_repo, TYPO, f"FAKE_AGENT=sleep FAKE_AGENT_SLEEP=60 {fake_agent}").json()["job_id"]
    deadline = time.monotonic() + 30
    while server.get(f"/api/v1/jobs/{job_id}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cancelled = server.post(f"/api/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = server.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict" and again.json()["error"]["field"] == "job"


def test_bad_input_is_an_error_naming_the_field(
    server: ApiServer, git_repo: Path, fake_agent: str, tmp_path: Path
) -> None:
    repo = str(git_repo)
    base = {"text": TYPO, "repo": repo, "runtime": "command", "agent_cmd": fake_agent}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"repo": repo}, "text"),
        ({**base, "text": "   "}, "text"),
        ({**base, "colour": "red"}, "colour"),
        ({**base, "repo": str(tmp_path / "missing")}, "repo"),
        ({**base, "workers": 0}, "workers"),
        ({**base, "timeout": "soon"}, "timeout"),
        ({**base, "agent_cmd": "/nonexistent/agent"}, "agent_cmd"),
        ({**base, "text": "Deploy the billing service to production"}, "confirm"),
        ({**base, "require_approval": True}, "confirm"),
    ]
    for body, field in cases:
        response = server.post("/api/v1/jobs", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["field"] == field, (body, response.json())

    not_json = server.post("/api/v1/jobs", data="{nope", headers={"Content-Type": "application/json"})
    assert (not_json.status_code, not_json.json()["error"]["field"]) == (422, "body")
    listing = server.post("/api/v1/jobs", json=[1, 2])
    assert (listing.status_code, listing.json()["error"]["field"]) == (422, "body")

    for params, field in (
        ({"status": "sleeping"}, "status"),
        ({"intent": "dance"}, "intent"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"bogus": 1}, "bogus"),
    ):
        response = server.get("/api/v1/jobs", params=params)
        assert (response.status_code, response.json()["error"]["field"]) == (422, field), params

    some_job = server.get("/api/v1/jobs", params={"limit": 1}).json()["items"]
    if some_job:
        bad_after = server.get(f"/api/v1/jobs/{some_job[0]['job_id']}/events", params={"after": "abc"})
        assert (bad_after.status_code, bad_after.json()["error"]["field"]) == (422, "after")

    missing = server.get("/api/v1/jobs/zzzzzzzz")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message": "no job 'zzzzzzzz'", "field": "job"}}
    for path in ("/plan", "/agents", "/tasks", "/events", "/costs"):
        assert server.get(f"/api/v1/jobs/zzzzzzzz{path}").status_code == 404
    assert server.post("/api/v1/jobs/zzzzzzzz/cancel").status_code == 404
    wrong_method = server.call("DELETE", "/api/v1/jobs")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong_method.headers["Allow"]
    unknown = server.get("/api/v1/nothing-here")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_the_http_client_does_what_the_cli_does(server: ApiServer, git_repo: Path, fake_agent: str) -> None:
    client = Client(server.url + "/api/v1")
    job = client.submit(TYPO, git_repo, runtime="command", agent_cmd=fake_agent)
    followed = list(client.follow(job["job_id"], poll=0.2))
    assert followed[0]["type"] == "job.submitted" and followed[-1]["type"] == "job.finished"
    assert [e["id"] for e in followed] == [e["id"] for e in client.events(job["job_id"])["items"]]
    assert client.get(job["job_id"])["status"] == "succeeded"
    assert job["job_id"] in [j["job_id"] for j in client.list(intent="document", limit=500)["items"]]
    assert {t["state"] for t in client.tasks(job["job_id"])} == {"SUCCESS"}
    assert client.costs(job["job_id"])["total_usd"] > 0
    with pytest.raises(ValidationError) as unknown_option:
        client.submit(TYPO, git_repo, runtime="command", agent_cmd=fake_agent, colour="red")
    assert unknown_option.value.field == "colour"

    with pytest.raises(NotFound) as missing:
        client.get("zzzzzzzz")
    assert missing.value.field == "job"
    with pytest.raises(Conflict):
        client.cancel(job["job_id"])
    with pytest.raises(ValidationError) as invalid:
        client.submit("", git_repo)
    assert invalid.value.field == "text"
    assert f"deleted godel/{job['job_id']}" in client.rollback(job["job_id"])["undone"]
    with pytest.raises(ServiceUnavailable):
        Client(f"http://127.0.0.1:{stack._free_port()}").list()
