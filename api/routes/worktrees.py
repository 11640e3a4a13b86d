"""Agent worktrees still on disk: owner, branch, size, and whether cleanup is pending."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Blueprint

from godel.storage.store import TERMINAL

from ..openapi import operation
from ..queries import agents_with_worktrees
from ..schemas import WorktreeList, WorktreeOut
from ..services import services

bp = Blueprint("worktrees", __name__, url_prefix="/api/v1/worktrees")


def disk_usage(path: Path) -> int:
    """Bytes of the regular files under ``path``; symlinks are not followed."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # removed while walking: an agent or cleanup is at work
            total += stat.st_size
    return total


@operation(bp, "", response=WorktreeList)
def list_worktrees() -> WorktreeList:
    """Worktrees named by agent rows that exist on disk.

    `cleanup` is `pending` when the job has ended but its worktree is still there
    (cleanup failed or has not run yet); `godel rollback` removes it.
    """
    items = []
    for agent, job_status in agents_with_worktrees(services().ctx.store):
        path = Path(agent.worktree or "")
        if not path.is_dir():
            continue
        items.append(
            WorktreeOut(
                path=str(path),
                job_id=agent.job_id,
                agent=agent.name,
                role=agent.role,
                branch=agent.branch,
                job_status=job_status,
                agent_state=agent.state,
                size_bytes=disk_usage(path),
                cleanup="pending" if job_status in TERMINAL else "active",
            )
        )
    return WorktreeList(items=items, total_bytes=sum(w.size_bytes for w in items))
