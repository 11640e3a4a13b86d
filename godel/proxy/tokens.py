"""Per-agent proxy tokens: minted for one agent of one job, resolved on each call, retired after its turn."""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any

import redis

from godel.config import ProxySettings
from godel.context import Context
from godel.errors import ServiceUnavailable, ValidationError
from godel.storage.models import Job, utcnow

TOKEN_HEADER = "X-Godel-Token"
"""Carries the token on the canonical paths ``/proxy/v1/...``, for clients that can add a header."""
TOKEN_KEY = "godel:proxy:token:{digest}"
"""Redis key of a token's grant; the token itself is stored only as a hash."""
CALLS_KEY = "godel:proxy:calls:{digest}"
"""Redis counter of the calls metered with a token, read when the agent's turn ends."""
CALLS_TTL = 24 * 3600
PLACEHOLDER_KEY = "godel-proxy"
"""An API key a client sends when the proxy holds the real one (some CLIs refuse to start without
a key): it is dropped and the configured key sent instead."""
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,128}")


@dataclass(frozen=True)
class Grant:
    """Whose calls a token carries."""

    job_id: str
    agent: str
    role: str
    token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_key(token: str) -> str:
    return TOKEN_KEY.format(digest=_digest(token))


def mint(ctx: Context, job_id: str, agent: str, role: str, ttl: float) -> str:
    """A new token for one agent of one job, valid for ``ttl`` seconds (the job's remaining time)."""
    for name, value in (("job_id", job_id), ("agent", agent), ("role", role)):
        if not value:
            raise ValidationError("must not be empty", field=name)
    if ttl <= 0:
        raise ValidationError(f"must be more than 0 seconds, not {ttl}", field="ttl")
    token = secrets.token_urlsafe(32)
    grant = json.dumps({"job_id": job_id, "agent": agent, "role": role})
    try:
        ctx.redis.set(_token_key(token), grant, ex=max(1, math.ceil(ttl)))
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"cannot store the proxy token in Redis: {exc}", field="redis") from None
    return token


def resolve(ctx: Context, token: str | None) -> Grant | None:
    """The grant behind a token, or None when it is malformed, unknown or expired."""
    if not token or not _TOKEN_SHAPE.fullmatch(token):
        return None
    try:
        raw = ctx.redis.get(_token_key(token))
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"cannot read proxy tokens from Redis: {exc}", field="redis") from None
    if not raw:
        return None
    data = json.loads(str(raw))
    return Grant(job_id=str(data["job_id"]), agent=str(data["agent"]), role=str(data["role"]), token=token)


def retire(ctx: Context, token: str) -> int:
    """End a token (its agent's turn is over); how many calls the proxy metered with it.

    The count, not the runtime's say-so, decides whether the runtime's own cost
    is skipped: a tool that ignored its base URL was not metered here.
    """
    calls = CALLS_KEY.format(digest=_digest(token))
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.get(calls)
    pipe.delete(_token_key(token), calls)
    count = pipe.execute()[0]
    return int(count or 0)


def count_call(ctx: Context, token: str) -> None:
    """Count one metered call against ``token``, for ``retire`` to report."""
    key = CALLS_KEY.format(digest=_digest(token))
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, CALLS_TTL)
    pipe.execute()


def token_ttl(job: Job) -> float:
    """Seconds the job may still run, so a token dies with its job's deadline."""
    if job.deadline is None:
        return float(job.options.get("timeout", 3600))
    return (job.deadline - utcnow()).total_seconds()


def base_urls(proxy_url: str, token: str) -> dict[str, str]:
    """The base URLs a runtime gives its client, one per provider family."""
    root = proxy_url.rstrip("/")
    return {"openai": f"{root}/t/{token}/openai/v1", "anthropic": f"{root}/t/{token}/anthropic"}


def runtime_options(ctx: Context, settings: ProxySettings, job: Job, agent: str, role: str) -> dict[str, Any]:
    """``{"proxy": {...}}`` for an agent's runtime options, or ``{}`` when GODEL_PROXY_URL is unset.

    The API keys are the placeholder when the proxy holds the real key, else None
    (the tool keeps whatever key it was given).
    """
    if not settings.url:
        return {}
    ttl = token_ttl(job)
    if ttl <= 0:
        return {}  # the job is past its deadline; the step is about to be halted anyway
    token = mint(ctx, job.id, agent, role, ttl)
    urls = base_urls(settings.url, token)
    return {
        "proxy": {
            "token": token,
            "openai_base_url": urls["openai"],
            "anthropic_base_url": urls["anthropic"],
            "openai_api_key": PLACEHOLDER_KEY if settings.openai_api_key else None,
            "anthropic_api_key": PLACEHOLDER_KEY if settings.anthropic_api_key else None,
        }
    }
