"""``godel serve`` as a real process: the helper every API test file starts it with, and its own rules.

The other ``test_api_*`` files import ``running_server`` and ``ApiServer`` from here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from godel import stack

pytestmark = pytest.mark.integration

SERVE = [sys.executable, "-c", "from godel.cli.serve import serve; serve()"]
START_TIMEOUT = 30.0
_UNSET: Any = object()


@dataclass
class ApiServer:
    """A running ``godel serve`` and a ``requests`` shortcut that sends ``key`` when set."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    key: str | None = None

    def call(self, method: str, path: str, *, key: str | None = _UNSET, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        key = self.key if key is _UNSET else key
        if key:
            headers.setdefault("Authorization", f"Bearer {key}")
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, **kwargs)

    def wait_job(self, job_id: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job: dict[str, Any] = self.get(f"/api/v1/jobs/{job_id}").json()
            if job["finished_at"]:
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish: {self.get(f'/api/v1/jobs/{job_id}').json()}")


@contextmanager
def running_server(env: dict[str, str], **extra: str) -> Iterator[ApiServer]:
    """Start ``godel serve`` on a free port with ``env`` (the ``godel_env`` values) plus ``extra``."""
    port = stack._free_port()
    home = Path(env["GODEL_HOME"])
    log = home / f"api-{port}.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GODEL_")}
    environ.update(env)
    environ.update({"GODEL_API_HOST": "127.0.0.1", "GODEL_API_PORT": str(port), **extra})
    with open(log, "wb") as out:
        proc = subprocess.Popen(SERVE, env=environ, stdout=out, stderr=subprocess.STDOUT)
    server = ApiServer(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"godel serve exited {proc.returncode}:\n{log.read_text()}")
            try:
                if requests.get(server.url + "/health/live", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"godel serve did not answer:\n{log.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def home_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """A GODEL_HOME with its own SQLite database; these tests are about the process, not the backend."""
    (tmp_path / "home").mkdir()
    return {
        "GODEL_HOME": str(tmp_path / "home"),
        "GODEL_REDIS_URL": redis_url,
        "GODEL_DATABASE_URL": f"sqlite:///{tmp_path / 'godel.db'}",
        "GODEL_CONFIG": str(tmp_path / "absent.yaml"),
    }


def test_auth_off_is_refused_on_a_reachable_address(home_env: dict[str, str]) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GODEL_")}
    environ.update(home_env, GODEL_AUTH="off")
    proc = subprocess.run(
        [*SERVE], env={**environ, "GODEL_API_HOST": "0.0.0.0"}, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "GODEL_AUTH=off is only allowed when binding 127.0.0.1 or localhost, not 0.0.0.0" in proc.stderr


def test_a_bad_setting_names_its_variable(home_env: dict[str, str]) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GODEL_")}
    environ.update(home_env, GODEL_CORS_ORIGINS="https://ok.example,*")
    proc = subprocess.run(SERVE, env=environ, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "GODEL_CORS_ORIGINS" in proc.stderr


def test_ready_is_503_naming_redis_when_it_is_down(home_env: dict[str, str]) -> None:
    dead = f"redis://127.0.0.1:{stack._free_port()}/0"
    with running_server({**home_env, "GODEL_REDIS_URL": dead}) as server:
        assert server.get("/health/live").json() == {"ok": True}
        ready = server.get("/health/ready")
        assert ready.status_code == 503
        checks = {c["name"]: c for c in ready.json()["checks"]}
        assert checks["redis"]["ok"] is False and dead in checks["redis"]["detail"]
        assert checks["database"]["ok"] is True
        assert checks["workers"] == {"name": "workers", "ok": False, "detail": "not checked: Redis is down"}
        detail = server.get("/health")
        assert detail.status_code == 503 and detail.json()["auth"] is False


def test_default_local_serve_has_auth_off_and_stops_cleanly_on_sigterm(home_env: dict[str, str]) -> None:
    with running_server(home_env) as server:
        assert server.get("/api/v1/jobs").status_code == 200
        proc = server.proc
    assert proc.returncode == 0
    assert "auth off" in server.log.read_text()
