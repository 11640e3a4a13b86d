"""Fixtures over the real services: a Redis db and a database per test file.

Redis is ``GODEL_TEST_REDIS_URL`` (default the local one; an embedded
redis-server when none answers); each test file gets its own Redis db,
flushed before and after. Databases are SQLite files or fresh Postgres
databases created on ``GODEL_TEST_POSTGRES_URL`` and dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from godel import stack
from godel.config import get_settings
from godel.context import get_context
from godel.storage.db import upgrade

REDIS_BASE = os.environ.get("GODEL_TEST_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
POSTGRES_URL = os.environ.get("GODEL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FIXTURES = Path(__file__).parent / "fixtures"


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test Redis: the configured one, else an embedded one started here."""
    if _answers(REDIS_BASE + "/0"):
        yield REDIS_BASE
        return
    port = stack._free_port()
    data = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [stack.redis_server_binary(), "--port", str(port), "--save", "", "--dir", str(data)], stdout=subprocess.DEVNULL
    )
    base = f"redis://127.0.0.1:{port}"
    while not _answers(base + "/0"):
        time.sleep(0.05)
    yield base
    proc.terminate()
    proc.wait()


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Settings are read once per process; a test that changes GODEL_* variables gets them re-read."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _claim_db(base: str) -> int:
    """Claim a Redis db (1-15) no other test process holds; claims live in db 0 and expire."""
    registry = redis.Redis.from_url(base + "/0")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        for number in range(1, 16):
            if registry.set(f"godel-test:db:{number}", os.getpid(), nx=True, ex=1800):
                return number
        time.sleep(0.5)
    raise RuntimeError("no free Redis db for tests: all 15 are claimed (see godel-test:db:* keys in db 0)")


@pytest.fixture(scope="module")
def redis_url(redis_server: str) -> Iterator[str]:
    """A Redis db of this test file's own, empty at start and flushed at the end."""
    number = _claim_db(redis_server)
    url = f"{redis_server}/{number}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()
    redis.Redis.from_url(redis_server + "/0").delete(f"godel-test:db:{number}")


def _postgres_database(name: str) -> tuple[str, str]:
    admin = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    return admin, POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database of this test file's own, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'godel.db'}"
        upgrade(url)
        yield url
        return
    name = f"godel_test_{uuid.uuid4().hex[:10]}"
    admin, url = _postgres_database(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)
    yield url
    from godel.storage.db import get_engine

    get_engine(url).dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def godel_env(redis_url: str, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Point this process's settings at the file's Redis db, database and a fresh GODEL_HOME."""
    env = {
        "GODEL_HOME": str(tmp_path_factory.mktemp("home")),
        "GODEL_REDIS_URL": redis_url,
        "GODEL_DATABASE_URL": db_url,
        "GODEL_CONFIG": str(tmp_path_factory.mktemp("cfg") / "none.yaml"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    get_context.cache_clear()
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()
    get_context.cache_clear()


@pytest.fixture(scope="module")
def worker_pool() -> str:
    """The Celery pool of the test worker; a test file overrides it to try another."""
    return "threads"


@pytest.fixture(scope="module")
def celery_worker(godel_env: dict[str, str], worker_pool: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process consuming every Godel queue."""
    home = Path(godel_env["GODEL_HOME"])
    log = open(home / "worker.log", "wb")  # noqa: SIM115 - open for the worker's whole life
    argv = stack.worker_argv(
        queues=stack.ALL_QUEUES, concurrency=4, pool=worker_pool, name=f"test-{uuid.uuid4().hex[:6]}@%h"
    )
    proc = subprocess.Popen(
        argv,
        env={**os.environ, **godel_env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack.wait_for_workers(godel_env["GODEL_REDIS_URL"], timeout=30)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    run = lambda *args: subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    for name, text in (files or {"README.md": "# sample\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    run("add", "-A")
    run("-c", "user.name=Test", "-c", "user.email=test@example.com", "commit", "-qm", "initial")
    return path


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def fake_agent() -> str:
    """Command line of the agent executable tests put behind the `command` runtime."""
    return f"{sys.executable} {FIXTURES / 'fake_agent.py'}"
