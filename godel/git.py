"""Thin wrappers over the git command line, and a lock per repository.

Git's own locks (index.lock, ref locks, worktree admin files) make
concurrent worktree and branch commands on one repository fail rather than
wait; Godel serialises its own ref-changing commands per repository instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from godel.errors import GitError, RepositoryError

AUTHOR = {
    "GIT_AUTHOR_NAME": "Godel",
    "GIT_AUTHOR_EMAIL": "godel@localhost",
    "GIT_COMMITTER_NAME": "Godel",
    "GIT_COMMITTER_EMAIL": "godel@localhost",
}
"""Identity of the commits Godel makes for its agents."""


def git(cwd: Path | str, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **AUTHOR, "GIT_TERMINAL_PROMPT": "0"},
    )
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


@dataclass(frozen=True)
class Checkout:
    """Where a repository's work tree is and what is checked out there."""

    root: Path
    sha: str
    branch: str | None
    """None when HEAD is detached."""


def checkout(path: Path | str) -> Checkout:
    """The git work tree holding ``path``, which must have a commit; one git call, as submits are hot."""
    path = Path(path).expanduser().absolute()
    if not path.is_dir():
        raise RepositoryError(f"{path} is not a directory", field="repo")
    proc = subprocess.run(
        ["git", "rev-parse", "--show-toplevel", "HEAD", "--symbolic-full-name", "HEAD"],
        cwd=path,
        capture_output=True,
        text=True,
    )
    lines = proc.stdout.split()
    if proc.returncode != 0 and not lines:
        raise RepositoryError(f"{path} is not a git repository (run `git init` and commit first)", field="repo")
    if proc.returncode != 0 or len(lines) < 3:
        raise RepositoryError(f"{lines[0] if lines else path} has no commits yet; commit something first", field="repo")
    root, sha, ref = lines[:3]
    return Checkout(Path(root), sha, ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None)


def branch_exists(repo: Path, branch: str) -> bool:
    return bool(git(repo, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False))


def branches(repo: Path, pattern: str) -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{pattern}")
    return [line for line in out.splitlines() if line]


@contextmanager
def repo_lock(lock_dir: Path, repo: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``repo`` across processes of this machine."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(str(repo.resolve()).encode()).hexdigest()[:16]
    with open(lock_dir / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
