"""``godel worktrees``: the agents' worktrees on disk, and pruning those of finished jobs."""

from __future__ import annotations

import click

from godel import worktrees as core
from godel.context import build_context

from .output import emit_rows, format_option

COLUMNS = ["job_id", "agent", "state", "job_status", "branch", "repo", "size", "age"]


@click.command("worktrees")
@click.option("--prune", is_flag=True, help="Remove the worktrees and dependency caches of jobs that ended.")
@format_option
def worktrees(prune: bool, fmt: str) -> None:
    """List worktrees under GODEL_HOME/worktrees with their job, branch, size and age.

    A worktree whose job ended is a cleanup still pending; --prune removes
    those. Worktrees of jobs this database does not know are left alone.
    """
    ctx = build_context()
    if prune:
        rows = core.prune(ctx.settings, ctx.store)
        emit_rows(rows, fmt, COLUMNS, title=f"removed {len(rows)} worktree(s) and cache(s)")
        return
    emit_rows(core.list_active(ctx.settings, ctx.store), fmt, COLUMNS)
