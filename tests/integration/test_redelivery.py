"""acks_late: a task whose worker process dies is redelivered and the job still succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from godel import jobs
from godel.context import build_context
from tests.integration.test_pipeline import wait

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("celery_worker")]


@pytest.fixture(scope="module")
def worker_pool() -> str:
    return "prefork"


def _ppid(pid: int) -> int:
    return int(subprocess.run(["ps", "-o", "ppid=", "-p", str(pid)], capture_output=True, text=True).stdout.strip())


def test_killed_pool_process_task_is_redelivered(
    godel_env: dict[str, str], git_repo: Path, fake_agent: str, tmp_path: Path
) -> None:
    ctx = build_context()
    marker = tmp_path / "slept"
    cmd = f"FAKE_AGENT=sleep_once FAKE_AGENT_MARKER={marker} {fake_agent}"
    request = jobs.SubmitRequest(text="fix the typo in the README", repo=git_repo, runtime="command", agent_cmd=cmd)
    job = jobs.submit(ctx, jobs.prepare(ctx, request))
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    agent_pid = int(marker.read_text())
    shell_pid = _ppid(agent_pid)
    pool_child = _ppid(shell_pid)
    os.kill(pool_child, signal.SIGKILL)
    os.kill(agent_pid, signal.SIGKILL)  # the orphaned agent of the dead attempt
    done = wait(ctx, job.id, timeout=60)
    assert done.status == "succeeded", done.error
    assert done.agents[0].state == "succeeded"
