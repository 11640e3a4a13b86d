"""``--merge-into BRANCH``: merge an approved job into a branch the user names, and undo it.

A branch checked out in the user's main worktree is merged there only when that
worktree is clean; a branch checked out nowhere is merged in a temporary
worktree. Undo resets the branch when nothing came after the merge, and
reverts the merge commit when something did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from godel.context import Context
from godel.errors import GitError
from godel.git import branch_exists, git, repo_lock
from godel.storage.models import Job
from godel.worktrees import job_branch


def _checked_out_in(repo: Path, branch: str) -> Path | None:
    """The worktree that has ``branch`` checked out, if any."""
    path: Path | None = None
    for line in git(repo, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            path = Path(line.split(" ", 1)[1])
        elif line == f"branch refs/heads/{branch}":
            return path
    return None


def _in_worktree_of(ctx: Context, job: Job, branch: str, command: list[str]) -> None:
    """Run a git command with ``branch`` checked out, without disturbing the user."""
    repo = Path(job.repo_path)
    where = _checked_out_in(repo, branch)
    if where is not None:
        if git(where, "status", "--porcelain", "--untracked-files=no"):
            raise GitError(f"{branch} is checked out in {where} with uncommitted changes", field="merge_into")
        _run_or_abort(where, command)
        return
    temp = ctx.settings.worktrees_dir / job.id / "_target"
    git(repo, "worktree", "add", "-f", str(temp), branch)
    try:
        _run_or_abort(temp, command)
    finally:
        git(repo, "worktree", "remove", "--force", str(temp), check=False)


def _run_or_abort(where: Path, command: list[str]) -> None:
    try:
        git(where, *command)
    except GitError:
        git(where, command[0], "--abort", check=False)
        raise


def merge_into(ctx: Context, job: Job, target: str) -> dict[str, Any]:
    repo = Path(job.repo_path)
    with repo_lock(ctx.settings.home / "locks", repo):
        if not branch_exists(repo, target):
            raise GitError(f"branch {target!r} does not exist", field="merge_into")
        before = git(repo, "rev-parse", target)
        message = f"Merge {job_branch(job.id)} into {target} (Godel job {job.id})"
        _in_worktree_of(ctx, job, target, ["merge", "--no-ff", "--no-verify", "-m", message, job_branch(job.id)])
        return {"branch": target, "before": before, "after": git(repo, "rev-parse", target)}


def undo(ctx: Context, job: Job, info: dict[str, Any]) -> str:
    """Take a ``--merge-into`` back out of its branch; says how."""
    repo, branch = Path(job.repo_path), str(info["branch"])
    with repo_lock(ctx.settings.home / "locks", repo):
        if not branch_exists(repo, branch):
            return f"{branch} no longer exists"
        if git(repo, "rev-parse", branch) == info["after"]:
            where = _checked_out_in(repo, branch)
            if where is None:
                git(repo, "update-ref", f"refs/heads/{branch}", info["before"], info["after"])
            else:
                _in_worktree_of(ctx, job, branch, ["reset", "--keep", info["before"]])
            return f"reset {branch} to {info['before'][:10]}"
        _in_worktree_of(ctx, job, branch, ["revert", "--no-edit", "-m", "1", info["after"]])
        return f"reverted the merge on {branch} (commits came after it)"
