"""Keys, scopes, rate limits, CORS, headers and body limits on a real server with auth on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import click
import pytest
import socketio
from click.testing import CliRunner

from godel import keys
from godel.cli.keys import keys as keys_group
from godel.cli.main import GodelGroup
from godel.context import build_context
from godel.storage.models import utcnow
from tests.integration.test_api_serve import ApiServer, running_server

pytestmark = pytest.mark.integration

DASHBOARD = "https://dash.example"


@pytest.fixture(scope="module")
def server(godel_env: dict[str, str]) -> Iterator[ApiServer]:
    with running_server(godel_env, GODEL_AUTH="on") as running:
        yield running


@pytest.fixture(scope="module")
def limited(godel_env: dict[str, str]) -> Iterator[ApiServer]:
    """Auth on, 5 requests a minute per key, 2 KiB bodies, one CORS origin."""
    extra = {
        "GODEL_AUTH": "on",
        "GODEL_RATE_LIMIT": "5",
        "GODEL_MAX_REQUEST_BYTES": "2048",
        "GODEL_CORS_ORIGINS": DASHBOARD,
    }
    with running_server(godel_env, **extra) as running:
        yield running


def new_key(*scopes: str, **options: object) -> str:
    return keys.create(build_context().store, scopes=scopes, **options)[1]  # type: ignore[arg-type]


def error(response: object) -> tuple[int, str, str | None]:
    body = response.json()["error"]  # type: ignore[attr-defined]
    return response.status_code, body["code"], body["field"]  # type: ignore[attr-defined]


def test_each_route_needs_a_key_with_its_scope(server: ApiServer) -> None:
    read, write, admin = new_key("read"), new_key("write"), new_key("admin")

    anonymous = server.get("/api/v1/jobs")
    assert error(anonymous) == (401, "unauthorized", "authorization")
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert error(server.get("/api/v1/jobs", key="not-a-key")) == (401, "unauthorized", "authorization")
    assert error(server.get("/api/v1/jobs", key="gdl_0123456789ab_forged")) == (401, "unauthorized", "authorization")

    assert server.get("/api/v1/jobs", key=read).status_code == 200
    assert server.get("/api/v1/jobs", key=None, headers={"X-API-Key": read}).status_code == 200
    assert error(server.post("/api/v1/jobs", key=read, json={})) == (403, "forbidden", "scope")
    assert error(server.get("/api/v1/keys", key=read)) == (403, "forbidden", "scope")

    assert error(server.post("/api/v1/jobs", key=write, json={})) == (422, "invalid", "text")
    assert error(server.post("/api/v1/sessions/nope/fork", key=write, json={"message_id": 1}))[0] == 404
    assert server.get("/api/v1/agents", key=write).status_code == 200
    assert error(server.get("/api/v1/keys", key=write)) == (403, "forbidden", "scope")
    assert error(server.get("/api/v1/audit", key=write)) == (403, "forbidden", "scope")
    assert error(server.post("/api/v1/monitor/workers/w@h/shutdown", key=write)) == (403, "forbidden", "scope")

    assert server.get("/api/v1/keys", key=admin).status_code == 200
    assert server.get("/api/v1/jobs", key=admin).status_code == 200

    assert error(server.get("/metrics")) == (401, "unauthorized", "authorization")
    metrics = server.get("/metrics", key=read)
    assert metrics.status_code == 200 and "godel_jobs" in metrics.text
    assert error(server.get("/health"))[0] == 401
    assert server.get("/health/live").status_code == 200
    assert server.get("/health/ready").status_code in (200, 503)
    assert server.get("/api/v1/openapi.json").json()["security"] == [{"bearer": []}, {"apiKey": []}]

    used = {k["id"]: k for k in server.get("/api/v1/keys", key=admin).json()["items"]}
    assert used[read[4:16]]["last_used_at"] is not None and used[read[4:16]]["scopes"] == ["read"]


def test_revoked_and_expired_keys_are_refused(server: ApiServer) -> None:
    store = build_context().store
    row, revoked = keys.create(store, scopes=["admin"])
    assert server.get("/api/v1/jobs", key=revoked).status_code == 200
    keys.revoke(store, row.id)
    refused = server.get("/api/v1/jobs", key=revoked)
    assert error(refused) == (401, "unauthorized", "authorization") and "revoked" in refused.json()["error"]["message"]
    expired = new_key("read", expires_at=utcnow() - timedelta(seconds=1))
    assert "expired" in server.get("/api/v1/jobs", key=expired).json()["error"]["message"]


def test_keys_over_rest_are_admin_only_and_audited(server: ApiServer) -> None:
    admin = new_key("admin")
    created = server.post("/api/v1/keys", key=admin, json={"scopes": ["write"], "name": "ci", "expires": "30d"})
    assert created.status_code == 201
    made = created.json()
    assert made["scopes"] == ["write"] and made["state"] == "active" and made["key"].startswith("gdl_")
    assert server.get("/api/v1/jobs", key=made["key"]).status_code == 200
    listed = server.get("/api/v1/keys", key=admin).json()["items"]
    assert made["id"] in [k["id"] for k in listed] and all("key" not in k for k in listed)

    revoked = server.call("DELETE", f"/api/v1/keys/{made['id']}", key=admin)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert error(server.call("DELETE", f"/api/v1/keys/{made['id']}", key=admin)) == (409, "conflict", "key")
    assert error(server.call("DELETE", "/api/v1/keys/000000000000", key=admin)) == (404, "not_found", "key")
    assert server.get("/api/v1/jobs", key=made["key"]).status_code == 401

    for body, field in (
        ({"scopes": []}, "scopes"),
        ({"scopes": ["root"]}, "scopes.0"),
        ({"scopes": ["read"], "expires": "yesterday"}, "expires"),
        ({"scopes": ["read"], "colour": "red"}, "colour"),
    ):
        assert error(server.post("/api/v1/keys", key=admin, json=body)) == (422, "invalid", field), body

    trail = server.get("/api/v1/audit", key=admin).json()["items"]
    actions = [(r["action"], r["target"], r["actor"]) for r in trail]
    admin_id = admin[4:16]
    assert ("key.revoke", made["id"], admin_id) in actions and ("key.create", made["id"], admin_id) in actions
    assert actions.index(("key.revoke", made["id"], admin_id)) < actions.index(("key.create", made["id"], admin_id))


def test_keys_cli_creates_lists_and_revokes(server: ApiServer) -> None:
    group = GodelGroup("godel")
    group.add_command(keys_group)
    runner = CliRunner()

    created = runner.invoke(group, ["keys", "create", "--scope", "write", "--name", "cli", "--format", "json"])
    assert created.exit_code == 0, created.output
    made = json.loads(created.stdout)
    assert set(made) == {"id", "key", "scopes"} and made["scopes"] == ["write"]
    assert server.post("/api/v1/jobs", key=made["key"], json={}).status_code == 422  # past auth: a write key

    as_json = json.loads(runner.invoke(group, ["keys", "list", "--format", "json"]).stdout)
    row = next(k for k in as_json if k["id"] == made["id"])
    assert row["name"] == "cli" and row["state"] == "active" and "key" not in row
    lines = runner.invoke(group, ["keys", "list", "--format", "jsonl"]).stdout.splitlines()
    assert made["id"] in [json.loads(line)["id"] for line in lines]
    table = runner.invoke(group, ["keys", "list"])
    assert table.exit_code == 0 and "scopes" in table.stdout

    assert runner.invoke(group, ["keys", "revoke", made["id"]]).stdout.strip() == f"revoked {made['id']}"
    again = runner.invoke(group, ["keys", "revoke", made["id"]])
    assert again.exit_code == 5 and "already revoked" in again.stderr
    assert server.get("/api/v1/jobs", key=made["key"]).status_code == 401

    bad = runner.invoke(group, ["keys", "create", "--expires", "whenever"])
    assert bad.exit_code == 2 and "expires" in bad.stderr
    bad_scope = runner.invoke(group, ["keys", "create", "--scope", "root"])
    assert bad_scope.exit_code == 2 and isinstance(bad_scope.exception, SystemExit)


def test_socketio_connect_needs_a_key(server: ApiServer) -> None:
    key = new_key("read")
    refused = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        refused.connect(server.url, namespaces=["/overview"], transports=["websocket"], wait_timeout=5)
    for url, auth in ((server.url, {"token": key}), (f"{server.url}?token={key}", None)):
        client = socketio.Client(reconnection=False)
        client.connect(url, namespaces=["/overview"], auth=auth, transports=["websocket"], wait_timeout=5)
        assert client.connected
        client.disconnect()


def test_rate_limit_is_per_key_with_retry_after(limited: ApiServer) -> None:
    key, other = new_key("read"), new_key("read")
    statuses = []
    for _ in range(11):
        response = limited.get("/api/v1/jobs", key=key)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429 and statuses.count(200) >= 5, statuses
    assert error(response) == (429, "rate_limited", "authorization")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Limit"] == "5" and response.headers["X-RateLimit-Remaining"] == "0"
    fresh = limited.get("/api/v1/jobs", key=other)
    assert fresh.status_code == 200 and fresh.headers["X-RateLimit-Remaining"] == "4"


def test_large_bodies_get_a_413_in_the_error_shape(limited: ApiServer) -> None:
    key = new_key("write")
    response = limited.post("/api/v1/jobs", key=key, json={"text": "x" * 4096, "repo": "/tmp"})
    assert error(response) == (413, "too_large", "body")


def test_security_headers_and_the_cors_allow_list(limited: ApiServer) -> None:
    key = new_key("read")
    for response in (limited.get("/api/v1/jobs", key=key), limited.get("/api/v1/missing", key=key)):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"

    preflight = limited.call(
        "OPTIONS",
        "/api/v1/jobs",
        key=None,
        headers={"Origin": DASHBOARD, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    stranger = limited.call(
        "OPTIONS",
        "/api/v1/jobs",
        key=None,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in stranger.headers
    actual = limited.get("/api/v1/jobs", key=key, headers={"Origin": DASHBOARD})
    assert actual.headers["Access-Control-Allow-Origin"] == DASHBOARD and "Origin" in actual.headers["Vary"]


def test_cli_group_is_a_click_group() -> None:
    assert isinstance(keys_group, click.Group) and set(keys_group.commands) == {"create", "list", "revoke"}
