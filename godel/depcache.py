"""One job's shared dependency cache: seeded once from the start commit, then reused by every agent.

Every agent of a job starts from the same commit, so installing that commit's
dependencies once per job (``DependencyCache``) spares each agent a full
install.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from godel.dependencies import detect_kinds, node_install, python_installs
from godel.depsteps import LOCK_NAME, StepResult, copy_tree, file_lock, remaining, run_step, skipped
from godel.git import git

log = logging.getLogger(__name__)

SEED_TIMEOUT = 15 * 60
"""Seconds seeding a job's cache may take in all; the job's first agent waits for it."""

DEPS_DIR = "_deps"
STATUS_NAME = "status.json"
"""Written last, atomically: its presence is the cache's "ready" marker."""


class SeedStatus(BaseModel):
    """What seeding a job's cache did; stored as ``_deps/status.json``."""

    commit: str
    kinds: list[str] = Field(default_factory=list)
    venv: str | None = None
    node_modules: str | None = None
    steps: list[StepResult] = Field(default_factory=list)
    seeded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)


@dataclass
class DependencyCache:
    """One job's shared dependencies in ``GODEL_HOME/worktrees/<job>/_deps``, seeded once.

    ``src`` is an export of the job's start commit: installs run there so
    relative paths in manifests (``-e ./lib``, ``file:./pkg``) resolve, and
    editable installs point into a tree no agent edits and cleanup removes.
    Python gets one venv (``venv``) exposed through ``env()``. Node gets
    ``src/node_modules``, symlinked into each agent's worktree by ``attach()``.
    """

    dir: Path
    repo: Path
    timeout: float = SEED_TIMEOUT

    @property
    def src(self) -> Path:
        return self.dir / "src"

    @property
    def venv(self) -> Path:
        return self.dir / "venv"

    @property
    def lock(self) -> Path:
        return self.dir / LOCK_NAME

    def status(self) -> SeedStatus | None:
        """The finished seeding's record, or None while nobody has finished seeding."""
        try:
            return SeedStatus.model_validate_json((self.dir / STATUS_NAME).read_text())
        except FileNotFoundError:
            return None
        except (OSError, PydanticValidationError) as exc:
            log.warning("reseeding %s: unreadable status: %s", self.dir, exc)
            return None

    def ensure(self, start: str) -> SeedStatus:
        """The cache for ``start``: the first caller seeds it, concurrent callers wait and reuse it."""
        if (status := self.status()) is not None:
            return status
        self.dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.lock):
            if (status := self.status()) is not None:
                return status  # another agent seeded while this one waited
            status = self._seed(start)
            tmp = self.dir / f".{STATUS_NAME}.{os.getpid()}"
            tmp.write_text(status.model_dump_json(indent=2))
            tmp.replace(self.dir / STATUS_NAME)
        return status

    def _seed(self, start: str) -> SeedStatus:
        started = time.monotonic()
        deadline = started + self.timeout
        for leftover in (self.src, self.venv):  # a seeder that died half-way
            shutil.rmtree(leftover, ignore_errors=True)
        commit = git(self.repo, "rev-parse", "--verify", f"{start}^{{commit}}")  # start may name a branch
        status = SeedStatus(
            commit=commit, kinds=detect_kinds(git(self.repo, "ls-tree", "--name-only", commit).splitlines())
        )
        if status.kinds:
            export = self._export(commit, deadline)
            status.steps.append(export)
            if export.ok and "python" in status.kinds:
                self._seed_python(status, deadline)
            if export.ok and "node" in status.kinds:
                self._seed_node(status, deadline)
        status.seconds = round(time.monotonic() - started, 3)
        if not status.ok:
            failed = next(s for s in status.steps if not s.ok)
            log.warning("dependency cache %s: %s failed: %s", self.dir, failed.command, failed.output[-300:])
        return status

    def _export(self, start: str, deadline: float) -> StepResult:
        # A private index file: reads objects only, so no repo lock and no effect on anyone's checkout.
        env = {"GIT_INDEX_FILE": str(self.dir / "export.index"), "GIT_LFS_SKIP_SMUDGE": "1"}
        reason = "export the start commit for installs"
        read = run_step(
            "seed",
            "git",
            ["git", "read-tree", start],
            cwd=self.repo,
            env=env,
            timeout=remaining(deadline),
            reason=reason,
        )
        if not read.ok:
            return read
        self.src.mkdir(parents=True)
        checkout = ["git", "checkout-index", "-a", "-f", f"--prefix={self.src}/"]
        result = run_step("seed", "git", checkout, cwd=self.repo, env=env, timeout=remaining(deadline), reason=reason)
        (self.dir / "export.index").unlink(missing_ok=True)
        return result

    def _seed_python(self, status: SeedStatus, deadline: float) -> None:
        # --without-pip takes milliseconds; pip then comes from the base interpreter's site-packages.
        create = [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(self.venv)]
        step = run_step(
            "seed", "venv", create, cwd=self.dir, env={}, timeout=remaining(deadline), reason="one venv for the job"
        )
        status.steps.append(step)
        if not step.ok:
            return
        status.venv = str(self.venv)
        python = str(self.venv / "bin" / "python")
        _inherit_site_packages(python)
        env = {"VIRTUAL_ENV": str(self.venv), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        if subprocess.run([python, "-c", "import pip"], capture_output=True).returncode:
            ensure = [python, "-m", "ensurepip", "--default-pip"]
            step = run_step(
                "seed", "pip", ensure, cwd=self.dir, env=env, timeout=remaining(deadline), reason="the base has no pip"
            )
            status.steps.append(step)
            if not step.ok:
                return
        for argv, reason in python_installs(self.src, python):
            status.steps.append(
                run_step("seed", "pip", argv, cwd=self.src, env=env, timeout=remaining(deadline), reason=reason)
            )

    def _seed_node(self, status: SeedStatus, deadline: float) -> None:
        target = self.src / "node_modules"
        if target.exists():
            return  # the repository commits its node_modules: every worktree has them already
        main = self.repo / "node_modules"
        if main.is_dir():
            reason = "snapshot of the main checkout's node_modules"
            step = copy_tree(main, target, kind="seed", reason=reason, timeout=remaining(deadline))
        else:
            planned = node_install(self.src, os.environ.get("PATH"), need_lock=True)
            if planned is None:
                return  # without a lock file an install is not reproducible: agents install their own
            tool, argv, reason = planned
            if argv is None:
                status.steps.append(skipped("seed", tool, reason, f"{tool} is not on PATH"))
                return
            step = run_step("seed", tool, argv, cwd=self.src, env={}, timeout=remaining(deadline), reason=reason)
        status.steps.append(step)
        if step.ok and target.is_dir():
            status.node_modules = str(target)

    def attach(self, worktree: Path) -> None:
        """Give ``worktree`` the shared node_modules as a symlink.

        A symlink rather than a copy: it costs nothing per agent, where
        ``cp --reflink=auto`` is a full copy on ext4 and most filesystems.
        The shared tree is read-only by convention; ``prepare_checks`` swaps
        the link for a private copy before installing into a worktree, and
        ``Worktrees.commit_all`` never commits an untracked node_modules.
        """
        status = self.status()
        link = Path(worktree) / "node_modules"
        if status and status.node_modules and not link.exists() and not link.is_symlink():
            link.symlink_to(status.node_modules, target_is_directory=True)

    def env(self, worktree: Path | None = None) -> dict[str, str]:
        """Variables that put an agent in the job's venv, to lay over ``os.environ``; {} without one.

        PATH is complete (the venv's bin, then this process's PATH). PYTHONPATH
        puts the agent's own worktree (and its ``src/``) first, so the project
        is imported from the agent's tree even when a requirements file
        installed it into the shared venv.
        """
        status = self.status()
        if status is None or not status.venv or not (Path(status.venv) / "bin" / "python").exists():
            return {}
        bin_dir = Path(status.venv) / "bin"
        env = {"VIRTUAL_ENV": status.venv, "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", os.defpath)])}
        if worktree is not None:
            worktree = Path(worktree)
            paths = [str(worktree / "src")] if (worktree / "src").is_dir() else []
            paths.append(str(worktree))
            if os.environ.get("PYTHONPATH"):
                paths.append(os.environ["PYTHONPATH"])
            env["PYTHONPATH"] = os.pathsep.join(paths)
        return env


def _inherit_site_packages(python: str) -> None:
    """Let the job's venv see Godel's own packages (pytest, coverage) after its own.

    ``--system-site-packages`` reaches the base interpreter only; when Godel
    itself runs in a venv, the tools the Reviewer needs live there. A ``.pth``
    line appends that directory, so the project's own installs still win.
    """
    own = sysconfig.get_paths()["purelib"]
    target = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    )
    if target.returncode == 0 and target.stdout.strip() and target.stdout.strip() != own:
        Path(target.stdout.strip(), "godel-host.pth").write_text(own + "\n")
