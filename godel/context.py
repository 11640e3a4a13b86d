"""The services one process uses, built once from the settings."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import redis

from godel import redis_url
from godel.config import Settings, get_settings
from godel.events import Event, EventBus
from godel.storage.db import ensure_schema
from godel.storage.store import Store
from godel.worktrees import Worktrees


@dataclass(frozen=True)
class Context:
    settings: Settings
    redis_url: str
    store: Store

    @functools.cached_property
    def redis(self) -> redis.Redis:
        return redis_url.client(self.redis_url)

    @functools.cached_property
    def bus(self) -> EventBus:
        return EventBus(self.redis, self.store)

    def emit(self, event: Event) -> Event:
        return self.bus.publish(event)

    def worktrees(self, repo: str | Path) -> Worktrees:
        return Worktrees.for_settings(repo, self.settings, dependency_cache=self.settings.dependency_cache)


def build_context(settings: Settings | None = None, *, migrate: bool = True) -> Context:
    settings = settings or get_settings()
    if migrate:
        ensure_schema(settings.db_url)
    return Context(settings=settings, redis_url=redis_url.resolve(settings), store=Store(settings.db_url))


@functools.lru_cache(maxsize=1)
def get_context() -> Context:
    """The process-wide context (Celery tasks use it); tests clear the cache."""
    return build_context()
