"""Which Redis Godel uses, decided in one place.

A configured ``GODEL_REDIS_URL`` always wins. Otherwise the Redis that
``godel up`` started under ``GODEL_HOME`` (its URL is in ``run/redis.url``)
and, failing that, the conventional local one on 127.0.0.1:6379.
"""

from __future__ import annotations

import functools

import redis

from godel.config import Settings

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
"""The Redis tried when none is configured, before Godel starts its own."""


def own_redis_url(settings: Settings) -> str | None:
    """The URL of the Redis ``godel up`` started, if that file says one runs."""
    path = settings.run_dir / "redis.url"
    return path.read_text().strip() if path.is_file() else None


def resolve(settings: Settings) -> str:
    return settings.redis_url or own_redis_url(settings) or LOCAL_REDIS


@functools.lru_cache(maxsize=8)
def client(url: str) -> redis.Redis:
    """A pooled client per URL, decoding replies to ``str``."""
    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=2, health_check_interval=30)


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError, ValueError):
        return False
