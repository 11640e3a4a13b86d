"""CLI parity: with GODEL_API_URL set, the installed `godel` talks to a real API server instead of the store."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from godel import keys
from godel.context import build_context
from tests.conftest import make_repo
from tests.e2e.test_godel_do import GODEL
from tests.integration.test_api_serve import ApiServer, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("celery_worker")]


@pytest.fixture(scope="module")
def server(godel_env: dict[str, str]) -> Iterator[ApiServer]:
    with running_server(godel_env, GODEL_AUTH="on") as running:
        yield running


@pytest.fixture(scope="module")
def client_env(
    server: ApiServer, godel_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """A user on another machine: no database or Redis settings, only the API's URL and a key."""
    key = keys.create(build_context().store, scopes=["write"])[1]
    home = tmp_path_factory.mktemp("client-home")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GODEL_")}
    environ.update(
        GODEL_HOME=str(home),
        GODEL_API_URL=server.url,
        GODEL_API_KEY=key,
        GODEL_REDIS_URL="redis://127.0.0.1:1/0",
        GODEL_CONFIG=str(home / "absent.yaml"),
    )
    return environ


def godel(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GODEL, *args], env=env, capture_output=True, text=True, timeout=120)


def test_do_jobs_show_through_the_api(client_env: dict[str, str], tmp_path: Path, fake_agent: str) -> None:
    repo = make_repo(tmp_path / "repo")
    done = godel(
        client_env,
        "do",
        "fix the typo in the README",
        "--repo",
        str(repo),
        "--runtime",
        "command",
        "--agent-cmd",
        fake_agent,
        "--json",
        "--wait",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "succeeded" and report["branch"] == f"godel/{report['job_id']}"
    # GODEL_REDIS_URL points nowhere: had the CLI used it, it would have failed.
    listed = json.loads(godel(client_env, "jobs", "--format", "json").stdout)
    assert report["job_id"] in [row["job_id"] for row in listed]
    shown = json.loads(godel(client_env, "show", report["job_id"], "--events", "--format", "json").stdout)
    assert shown["events"][0]["type"] == "job.submitted" and shown["events"][-1]["type"] == "job.finished"
    assert godel(client_env, "rollback", report["job_id"]).stdout.strip() == f"deleted {report['branch']}"


def test_errors_keep_their_exit_codes(client_env: dict[str, str], tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    missing = godel(client_env, "show", "zzzzzzzz")
    assert missing.returncode == 4 and "no job" in missing.stderr
    deploy = godel(client_env, "do", "deploy to production", "--repo", str(repo), "--runtime", "demo")
    assert deploy.returncode == 2 and "--yes" in deploy.stderr
    bad_key = godel({**client_env, "GODEL_API_KEY": "gk_nope"}, "jobs")
    assert bad_key.returncode == 9 and "API key" in bad_key.stderr


def until(env: dict[str, str], job_id: str, status: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if json.loads(godel(env, "show", job_id, "--format", "json").stdout)["status"] == status:
            return True
        time.sleep(0.3)
    return False


def test_cancel_and_approve_through_the_api(client_env: dict[str, str], tmp_path: Path, fake_agent: str) -> None:
    repo = make_repo(tmp_path / "repo")
    queued = godel(
        client_env,
        "do",
        "fix the typo in the README",
        "--repo",
        str(repo),
        "--runtime",
        "command",
        "--agent-cmd",
        fake_agent,
        "--require-approval",
        "--yes",
        "--json",
    )
    job_id = json.loads(queued.stdout)["job_id"]
    assert until(client_env, job_id, "awaiting_approval")
    approved = godel(client_env, "approve", job_id)
    assert approved.returncode == 0, approved.stderr
    assert until(client_env, job_id, "succeeded")
    assert godel(client_env, "approve", job_id).returncode == 5  # no longer paused: a conflict
    sleeper = godel(
        client_env,
        "do",
        "fix the typo in the README",
        "--repo",
        str(repo),
        "--runtime",
        "command",
        "--agent-cmd",
        f"FAKE_AGENT=sleep {fake_agent}",
        "--json",
    )
    sleeper_id = json.loads(sleeper.stdout)["job_id"]
    cancelled = godel(client_env, "cancel", sleeper_id)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
