"""Install, migration and seeding commands: each run against a deadline and recorded as a ``StepResult``.

Shared by ``godel.dependencies`` (the Reviewer's ``prepare_checks``) and
``godel.depcache`` (seeding a job's cache), which run the same kinds of command.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from godel.runtimes.base import untrusted_environ

OUTPUT_TAIL = 4000
"""Characters of a command's output kept in its result."""
LOCK_NAME = ".lock"
"""The lock file of a job's cache, held while seeding it and while installing into its venv."""

Kind = Literal["seed", "install", "migrate"]


class StepResult(BaseModel):
    """One install, migration or seeding command: what ran, why, and how it went."""

    kind: Kind
    tool: str
    command: str = ""
    reason: str
    ok: bool
    skipped: str | None = None
    """Why the command did not run (tool missing, nothing to do); a skip is not a failure."""
    exit_code: int | None = None
    seconds: float = 0.0
    output: str = ""


def skipped(kind: Kind, tool: str, reason: str, why: str) -> StepResult:
    return StepResult(kind=kind, tool=tool, reason=reason, ok=True, skipped=why)


def run_step(
    kind: Kind, tool: str, argv: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float, reason: str
) -> StepResult:
    """Run ``argv`` with its output captured; on timeout its whole process group is killed."""
    started = time.monotonic()

    def result(ok: bool, exit_code: int | None, output: str) -> StepResult:
        return StepResult(
            kind=kind,
            tool=tool,
            command=shlex.join(argv),
            reason=reason,
            ok=ok,
            exit_code=exit_code,
            seconds=round(time.monotonic() - started, 3),
            output=output[-OUTPUT_TAIL:],
        )

    if timeout <= 0:
        return result(False, None, "no time left to run it")
    try:
        # A session of its own: npm and pip start children that must die with them on timeout.
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**untrusted_environ(), **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        return result(False, None, str(exc))
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return result(False, None, f"{output or ''}\ntimed out after {timeout:.0f}s")
    return result(proc.returncode == 0, proc.returncode, output)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across threads and processes of this machine (flock; released if the holder dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def copy_tree(source: Path, target: Path, *, kind: Kind, reason: str, timeout: float) -> StepResult:
    """A copy-on-write copy where the filesystem can (btrfs, XFS, APFS clones), a full one elsewhere."""
    reflink = ["--reflink=auto"] if sys.platform.startswith("linux") else []
    return run_step(
        kind,
        "cp",
        ["cp", "-R", *reflink, str(source), str(target)],
        cwd=target.parent,
        env={},
        timeout=timeout,
        reason=reason,
    )


def remaining(deadline: float) -> float:
    """Seconds left before ``deadline`` (a ``time.monotonic()`` value); negative once past."""
    return deadline - time.monotonic()
