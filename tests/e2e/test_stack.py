"""`godel up|status|down` and detaching from a running job, as a user does it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from godel import stack
from tests.conftest import make_repo
from tests.e2e.test_godel_do import GODEL, godel

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """No GODEL_REDIS_URL: Godel uses the local Redis if it answers, else starts its own."""
    home = tmp_path_factory.mktemp("godel-home")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GODEL_")}
    environ.update(
        GODEL_HOME=str(home),
        GODEL_CONFIG=str(home / "absent.yaml"),
        GODEL_WORKER_CONCURRENCY="2",
        GODEL_API_PORT=str(stack._free_port()),
    )
    yield environ
    godel(environ, "down")


def status(env: dict[str, str]) -> dict[str, dict[str, object]]:
    result = godel(env, "status", "--format", "json")
    assert result.returncode == 0, result.stderr
    return {part["name"]: part for part in json.loads(result.stdout)}


def test_up_status_down(env: dict[str, str]) -> None:
    up = godel(env, "up")
    assert up.returncode == 0, up.stderr
    assert "Redis at redis://" in up.stdout and "Celery worker" in up.stdout and "started the API" in up.stdout
    parts = status(env)
    assert parts["celery"]["state"] == "up" and parts["worker-1"]["started_by_godel"]
    assert parts["api"]["state"] == "up" and parts["api"]["started_by_godel"]
    assert parts["database"]["state"] == "up" and "godel.db" in str(parts["database"]["detail"])
    again = godel(env, "up")
    assert "already answer" in again.stdout
    down = godel(env, "down")
    assert "stopped worker-1" in down.stdout and "stopped api" in down.stdout
    assert "worker-1" not in status(env)
    assert "nothing Godel started" in godel(env, "down").stdout


def test_own_redis_when_none_answers(tmp_path: Path) -> None:
    """With the conventional Redis port answering nothing we know of, Godel starts its own."""
    home = tmp_path / "home"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GODEL_")}
    environ.update(GODEL_HOME=str(home), GODEL_CONFIG=str(home / "absent.yaml"))
    # Point the fallback at a closed port the way a machine without Redis looks.
    (home / "run").mkdir(parents=True)
    (home / "run" / "redis.url").write_text("redis://127.0.0.1:1/0")
    try:
        up = godel(environ, "up", "--no-api")
        assert up.returncode == 0, up.stderr
        assert "started Redis at redis://127.0.0.1:" in up.stdout
        url = (home / "run" / "redis.url").read_text()
        assert url != "redis://127.0.0.1:1/0"
        assert status(environ)["redis"]["started_by_godel"]
    finally:
        down = godel(environ, "down")
    assert "stopped redis" in down.stdout
    assert not (home / "run" / "redis.url").exists()


def test_ctrl_c_detaches_and_cancel_stops(env: dict[str, str], tmp_path: Path, fake_agent: str) -> None:
    repo = make_repo(tmp_path / "repo")
    proc = subprocess.Popen(
        [
            GODEL,
            "do",
            "fix the typo in the readme",
            "--runtime",
            "command",
            "--agent-cmd",
            f"FAKE_AGENT=sleep {fake_agent}",
        ],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    job_id = None
    deadline = time.monotonic() + 60
    while job_id is None and time.monotonic() < deadline:
        rows = json.loads(godel(env, "jobs", "--format", "json", "--status", "running").stdout)
        job_id = rows[0]["job_id"] if rows else None
        time.sleep(0.3)
    assert job_id, "job never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Detached" in err
    assert json.loads(godel(env, "show", job_id, "--format", "json").stdout)["status"] == "running"
    cancel = godel(env, "cancel", job_id)
    assert cancel.returncode == 0 and "cancelled" in cancel.stdout
    assert godel(env, "cancel", job_id).returncode == 5  # already ended: a conflict
    assert godel(env, "show", "nope-nope").returncode == 4
