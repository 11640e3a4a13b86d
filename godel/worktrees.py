"""One git worktree and branch per agent, and the merge of their work.

Agents work on ``godel/<job>/<agent>`` in ``GODEL_HOME/worktrees/<job>/<agent>``,
started from the commit that was checked out when the job was submitted. The
user's own checkout is never touched: merges happen in a detached worktree.
Git cannot hold a branch ``godel/<job>`` beside branches ``godel/<job>/*``, so
publishing the job's branch folds the merged agent branches into it (each is
a named merge commit) and deletes them.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from godel.errors import GitError
from godel.git import branch_exists, branches, git, repo_lock

MERGE_DIR = "_merge"


def job_branch(job_id: str) -> str:
    return f"godel/{job_id}"


def agent_branch(job_id: str, agent: str) -> str:
    return f"godel/{job_id}/{agent}"


@dataclass
class Worktrees:
    """Worktree operations for one repository, under one ``GODEL_HOME``."""

    repo: Path
    root: Path
    lock_dir: Path

    def path(self, job_id: str, agent: str) -> Path:
        return self.root / job_id / agent

    def create(self, job_id: str, agent: str, start: str) -> Path:
        """A fresh worktree for ``agent`` on its branch at ``start`` (rerun-safe)."""
        path = self.path(job_id, agent)
        with repo_lock(self.lock_dir, self.repo):
            self._remove(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            git(self.repo, "worktree", "add", "-f", "-B", agent_branch(job_id, agent), str(path), start)
        return path

    def _remove(self, path: Path) -> None:
        if path.exists():
            git(self.repo, "worktree", "remove", "--force", str(path), check=False)
            shutil.rmtree(path, ignore_errors=True)
        git(self.repo, "worktree", "prune")

    def commit_all(self, path: Path, message: str) -> str | None:
        """Commit everything the agent changed; None when it changed nothing."""
        git(path, "add", "-A")
        if not git(path, "status", "--porcelain"):
            return None
        git(path, "commit", "-q", "--no-verify", "-m", message)
        return git(path, "rev-parse", "HEAD")

    def changed_files(self, path: Path, base: str) -> list[str]:
        return [f for f in git(path, "diff", "--name-only", base, "HEAD").splitlines() if f]

    def merge(self, job_id: str, base: str, names: list[str]) -> MergeResult:
        """Merge the agents' branches onto ``base`` in a detached worktree."""
        path = self.path(job_id, MERGE_DIR)
        with repo_lock(self.lock_dir, self.repo):
            self._remove(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            git(self.repo, "worktree", "add", "-f", "--detach", str(path), base)
        result = MergeResult(sha=base)
        for name in names:
            branch = agent_branch(job_id, name)
            if git(path, "rev-parse", branch) == git(path, "merge-base", "HEAD", branch):
                continue  # nothing new on this branch
            try:
                git(path, "merge", "--no-ff", "--no-verify", "-q", "-m", f"Merge {branch}", branch)
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
                git(self.repo, "branch", "-D", branch)
            git(self.repo, "branch", "-f", job_branch(job_id), sha)
        return job_branch(job_id)

    def cleanup(self, job_id: str) -> None:
        """Remove the job's worktrees; its branches stay."""
        with repo_lock(self.lock_dir, self.repo):
            job_dir = self.root / job_id
            if job_dir.exists():
                for path in job_dir.iterdir():
                    self._remove(path)
                shutil.rmtree(job_dir, ignore_errors=True)
            git(self.repo, "worktree", "prune")

    def rollback(self, job_id: str) -> list[str]:
        """Remove every worktree and branch the job created; returns the branches deleted."""
        self.cleanup(job_id)
        deleted = []
        with repo_lock(self.lock_dir, self.repo):
            names = branches(self.repo, f"godel/{job_id}/")
            if branch_exists(self.repo, job_branch(job_id)):
                names.append(job_branch(job_id))
            for branch in names:
                git(self.repo, "branch", "-D", branch)
                deleted.append(branch)
        return deleted


@dataclass
class MergeResult:
    sha: str
    merged: list[str] = field(default_factory=list)
    conflicts: dict[str, list[str]] = field(default_factory=dict)
