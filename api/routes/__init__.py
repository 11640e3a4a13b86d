"""One blueprint per resource; ``BLUEPRINTS`` is what the app registers."""

from __future__ import annotations

from flask import Blueprint

from . import agents, audit, docs, health, jobs, keys, metrics, monitor, sessions, worktrees

BLUEPRINTS: list[Blueprint] = [
    jobs.bp,
    agents.bp,
    sessions.bp,
    worktrees.bp,
    metrics.bp,
    health.bp,
    monitor.bp,
    keys.bp,
    audit.bp,
    docs.bp,
]
