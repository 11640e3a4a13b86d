"""One git worktree and branch per agent, and the merge of their work.

Agents work on ``godel/<job>/<agent>`` in ``GODEL_HOME/worktrees/<job>/<agent>``,
started from the commit that was checked out when the job was submitted. The
user's own checkout is never touched: merges happen in a detached worktree.
Git cannot hold a branch ``godel/<job>`` beside branches ``godel/<job>/*``, so
publishing the job's branch folds the merged agent branches into it (each is
a named merge commit) and deletes them.

Many jobs share one repository. Git's own locks make a second writer fail
rather than wait, so every command that changes refs or ``.git/worktrees``
runs under ``repo_lock``, and lock errors from writers Godel does not control
(the user's git, an IDE) are retried. The job's dependency cache lives beside
its worktrees in ``<job>/_deps`` (``godel.dependencies``) and goes with them.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from godel.depcache import DEPS_DIR, SEED_TIMEOUT, DependencyCache
from godel.errors import GitError, GodelError
from godel.git import branch_exists, branches, git, repo_lock
from godel.storage.store import TERMINAL

if TYPE_CHECKING:
    from godel.config import Settings
    from godel.storage.models import Job
    from godel.storage.store import Store

log = logging.getLogger(__name__)

MERGE_DIR = "_merge"
TRASH_PREFIX = ".trash-"
"""A job's dependency cache is renamed to this (in the worktrees root) and deleted outside the repo lock."""

WRITE = ("-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "core.filesRefLockTimeout=2000")
"""For commands that write: no background gc repacking or pruning under another job's feet."""
LOCK_ERRORS = ("index.lock", ".lock': File exists", "cannot lock ref", "Unable to create")
RETRIES = 6


def job_branch(job_id: str) -> str:
    return f"godel/{job_id}"


def agent_branch(job_id: str, agent: str) -> str:
    return f"godel/{job_id}/{agent}"


def git_write(cwd: Path | str, *args: str) -> str:
    """A git command that writes, retried while another process holds one of git's lock files."""
    for attempt in range(RETRIES):
        try:
            return git(cwd, *WRITE, *args)
        except GitError as exc:
            if attempt == RETRIES - 1 or not any(text in str(exc) for text in LOCK_ERRORS):
                raise
            time.sleep(0.05 * 2**attempt + random.random() * 0.05)
    raise AssertionError("unreachable")


@dataclass
class Worktrees:
    """Worktree operations for one repository, under one ``GODEL_HOME``."""

    repo: Path
    root: Path
    lock_dir: Path
    dependency_cache: bool = True
    """Seed ``<job>/_deps`` when a job's first worktree is created (see ``godel.dependencies``)."""
    dependency_timeout: float = SEED_TIMEOUT

    @classmethod
    def for_settings(cls, repo: str | Path, settings: Settings, **options: Any) -> Worktrees:
        return cls(Path(repo), settings.worktrees_dir, settings.home / "locks", **options)

    def path(self, job_id: str, agent: str) -> Path:
        return self.root / job_id / agent

    def dependencies(self, job_id: str) -> DependencyCache:
        return DependencyCache(self.root / job_id / DEPS_DIR, self.repo, timeout=self.dependency_timeout)

    def create(self, job_id: str, agent: str, start: str) -> Path:
        """A fresh worktree for ``agent`` on its branch at ``start`` (rerun-safe), with the job's dependencies."""
        path = self.path(job_id, agent)
        with repo_lock(self.lock_dir, self.repo):
            self._remove(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            git_write(self.repo, "worktree", "add", "-f", "-B", agent_branch(job_id, agent), str(path), start)
        if self.dependency_cache:
            cache = self.dependencies(job_id)
            try:
                cache.ensure(start)  # outside the repo lock: installs take minutes, other jobs go on
                cache.attach(path)
            except (OSError, GodelError) as exc:  # an agent without the cache still works, just slower
                log.warning("dependency cache of job %s unavailable: %s", job_id, exc)
        return path

    def agent_env(self, job_id: str, path: Path | None = None) -> dict[str, str]:
        """Environment variables to lay over ``os.environ`` for an agent of the job (its venv); {} without one."""
        return self.dependencies(job_id).env(path) if self.dependency_cache else {}

    def _remove(self, path: Path) -> None:
        """Remove one worktree; the caller holds the repo lock."""
        if path.exists():
            git(self.repo, "worktree", "remove", "--force", str(path), check=False)
            shutil.rmtree(path, ignore_errors=True)
        git_write(self.repo, "worktree", "prune")

    def commit_all(self, path: Path, message: str) -> str | None:
        """Commit everything the agent changed; None when it changed nothing.

        An untracked top-level node_modules (the job's shared link, or an
        agent's own install) is never committed.
        """
        exclude = [] if git(path, "ls-tree", "HEAD", "--", "node_modules") else [":(exclude)node_modules"]
        # Staging touches only this worktree's own index: it needs no repo lock.
        git_write(path, "add", "-A", "--", ".", *exclude)
        if not git(path, "diff", "--cached", "--name-only"):
            return None
        with repo_lock(self.lock_dir, self.repo):  # the commit moves a branch ref
            git_write(path, "commit", "-q", "--no-verify", "-m", message)
        return git(path, "rev-parse", "HEAD")

    def changed_files(self, path: Path, base: str) -> list[str]:
        return [f for f in git(path, "diff", "--name-only", base, "HEAD").splitlines() if f]

    def merge(self, job_id: str, base: str, names: list[str]) -> MergeResult:
        """Merge the agents' branches onto ``base`` in a detached worktree.

        The merges themselves run outside the repo lock: a detached HEAD is the
        worktree's own, so they move no shared ref and can take their time.
        """
        path = self.path(job_id, MERGE_DIR)
        with repo_lock(self.lock_dir, self.repo):
            self._remove(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            git_write(self.repo, "worktree", "add", "-f", "--detach", str(path), base)
        result = MergeResult(sha=base)
        for name in names:
            branch = agent_branch(job_id, name)
            if git(path, "rev-parse", branch) == git(path, "merge-base", "HEAD", branch):
                continue  # nothing new on this branch
            try:
                git_write(path, "merge", "--no-ff", "--no-verify", "-q", "-m", f"Merge {branch}", branch)
                result.merged.append(branch)
            except GitError:
                conflicts = git(path, "diff", "--name-only", "--diff-filter=U", check=False).splitlines()
                git(path, "merge", "--abort", check=False)
                result.conflicts[branch] = conflicts
        result.sha = git(path, "rev-parse", "HEAD")
        return result

    def publish(self, job_id: str, sha: str) -> str:
        """Point ``godel/<job>`` at ``sha`` and drop the job's worktrees and agent branches."""
        self.cleanup(job_id)
        with repo_lock(self.lock_dir, self.repo):
            for branch in branches(self.repo, f"godel/{job_id}/"):
                git_write(self.repo, "branch", "-D", branch)
            git_write(self.repo, "branch", "-f", job_branch(job_id), sha)
        return job_branch(job_id)

    def cleanup(self, job_id: str) -> None:
        """Remove the job's worktrees and dependency cache; its branches stay."""
        job_dir = self.root / job_id
        if not self.repo.is_dir():  # the repository is gone: only Godel's own files are left
            shutil.rmtree(job_dir, ignore_errors=True)
            return
        trash = self.root / f"{TRASH_PREFIX}{job_id}-{uuid.uuid4().hex[:8]}"
        with repo_lock(self.lock_dir, self.repo):
            if (job_dir / DEPS_DIR).exists():
                # A rename now; the slow delete of a venv and node_modules comes after the lock.
                (job_dir / DEPS_DIR).rename(trash)
            if job_dir.exists():
                for path in job_dir.iterdir():
                    if path.is_dir() and not path.is_symlink():
                        git(self.repo, "worktree", "remove", "--force", str(path), check=False)
                shutil.rmtree(job_dir, ignore_errors=True)
            git_write(self.repo, "worktree", "prune")
        shutil.rmtree(trash, ignore_errors=True)

    def rollback(self, job_id: str) -> list[str]:
        """Remove every worktree and branch the job created; returns the branches deleted."""
        self.cleanup(job_id)
        deleted = []
        with repo_lock(self.lock_dir, self.repo):
            names = branches(self.repo, f"godel/{job_id}/")
            if branch_exists(self.repo, job_branch(job_id)):
                names.append(job_branch(job_id))
            for branch in names:
                git_write(self.repo, "branch", "-D", branch)
                deleted.append(branch)
        return deleted


@dataclass
class MergeResult:
    sha: str
    merged: list[str] = field(default_factory=list)
    conflicts: dict[str, list[str]] = field(default_factory=dict)


# -- what is on disk (godel worktrees) --------------------------------------


def list_active(settings: Settings, store: Store) -> list[dict[str, Any]]:
    """Every worktree and dependency cache under ``GODEL_HOME/worktrees``, with its job's state and size.

    ``state`` is ``active`` while the job runs, ``cleanup pending`` once it
    ended (``godel worktrees --prune`` removes those), ``unknown job`` when this
    database never had the job (another database, or a deleted row): those are
    left alone, they may belong to a running Godel elsewhere.
    """
    root = settings.worktrees_dir
    if not root.is_dir():
        return []
    now = time.time()
    rows = []
    for job_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        job = store.find_job(job_dir.name)
        for path in sorted(p for p in job_dir.iterdir() if p.is_dir() and not p.is_symlink()):
            if path.name != DEPS_DIR or any((path / name).exists() for name in ("src", "venv")):
                rows.append(_row(path, job, now))  # a cache row only when it holds something
    return rows


def prune(settings: Settings, store: Store) -> list[dict[str, Any]]:
    """Remove the worktrees and caches of jobs that ended; returns the rows removed."""
    rows = list_active(settings, store)
    root = settings.worktrees_dir
    for leftover in root.glob(f"{TRASH_PREFIX}*"):  # from a cleanup that died mid-delete
        shutil.rmtree(leftover, ignore_errors=True)
    removed = []
    for job_dir in sorted(root.iterdir()) if root.is_dir() else []:
        job = store.find_job(job_dir.name) if not job_dir.name.startswith(".") else None
        if job is not None and job.status in TERMINAL:
            Worktrees.for_settings(job.repo_path, settings).cleanup(job.id)
            removed += [r for r in rows if r["job_id"] == job.id]
    return removed


def _row(path: Path, job: Job | None, now: float) -> dict[str, Any]:
    branch, repo = _head(path)
    agent = next((a for a in job.agents if a.name == path.name), None) if job else None
    created = _created(path)
    size = disk_usage(path)
    ended = job.status in TERMINAL if job else None
    kind = {DEPS_DIR: "dependencies", MERGE_DIR: "merge"}.get(path.name, "agent")
    return {
        "job_id": path.parent.name,
        "agent": path.name,
        "kind": kind,
        "role": agent.role if agent else None,
        "job_status": job.status if job else None,
        "ended": ended,
        "state": "unknown job" if job is None else "cleanup pending" if ended else "active",
        "branch": branch,
        "repo": repo or (job.repo_path if job else None),
        "path": str(path),
        "size_bytes": size,
        "size": human_size(size),
        "age_seconds": int(now - created),
        "age": human_age(now - created),
        "created_at": datetime.fromtimestamp(created, UTC),
    }


def _head(path: Path) -> tuple[str | None, str | None]:
    """The branch checked out in a worktree and its repository, read from git's files (no subprocess)."""
    try:
        pointer = (path / ".git").read_text().strip()
        if not pointer.startswith("gitdir:"):
            return None, None
        gitdir = (path / pointer.split(":", 1)[1].strip()).resolve()
        head = (gitdir / "HEAD").read_text().strip()
        common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
    except OSError:
        return None, None
    branch = head.removeprefix("ref: refs/heads/") if head.startswith("ref: ") else "(detached)"
    repo = common.parent if common.name == ".git" else common
    return branch, str(repo)


def _created(path: Path) -> float:
    # git writes a worktree's .git file once, at `worktree add`; the directory's mtime moves with its files.
    for candidate in (path / ".git", path):
        try:
            return candidate.lstat().st_mtime
        except OSError:
            continue
    return time.time()


def disk_usage(path: Path) -> int:
    """Bytes on disk under ``path``, like ``du``: symlinks not followed, hard links once, the .git file skipped."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.name == ".git" and Path(entry.path).parent == path:
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            total += getattr(stat, "st_blocks", 0) * 512 or stat.st_size
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return total


def human_size(size: float) -> str:
    for unit in ("B", "K", "M", "G"):
        if size < 1024:
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}T"


def human_age(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f}{unit}"
    return f"{max(seconds, 0):.0f}s"
