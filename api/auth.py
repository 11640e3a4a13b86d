"""Who may call what: API keys with scopes, and a per-key rate limit.

Every route declares its scope through ``@operation``; the ``before_request``
hook here reads it, so no view can forget to check. The rate limit is a fixed
one-minute window counted in Redis, shared by every API process, keyed by the
API key (by client address when auth is off).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis
from flask import Flask, Request, Response, g, request

from godel import keys
from godel.errors import GodelError, Unauthorized
from godel.keys import Scope
from godel.storage.models import ApiKey
from godel.storage.store import Store

from .openapi import operation_of

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
RATE_KEY = "godel:ratelimit:{ident}:{window}"


class RateLimited(GodelError):
    """Too many requests for this key in the current window."""

    exit_code = 8
    http_status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, headers: dict[str, str]) -> None:
        super().__init__(message, field="authorization")
        self.headers = {**headers, "Retry-After": str(retry_after)}


def token_of(req: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key``."""
    header = req.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return req.headers.get("X-API-Key") or None


@dataclass
class Guard:
    """Authentication and rate limiting as the server is configured."""

    store: Store
    redis: redis.Redis
    enabled: bool
    rate_limit: int

    def authenticate(self, token: str | None, scope: Scope) -> ApiKey | None:
        """The key's row, or None when auth is off; raises 401/403 errors."""
        if not self.enabled:
            return None
        if not token:
            raise Unauthorized(
                "an API key is required: send Authorization: Bearer <key> or X-API-Key", field="authorization"
            )
        return keys.verify(self.store, token, scope)

    def throttle(self, ident: str) -> dict[str, str]:
        """Count one request for ``ident``; the rate headers, or ``RateLimited``."""
        if not self.rate_limit:
            return {}
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = RATE_KEY.format(ident=ident, window=window)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS + 1)
            count = int(pipe.execute()[0])
        except (redis.RedisError, OSError) as exc:  # fail open: Redis down is reported by /health
            log.warning("rate limit not applied: %s", exc)
            return {}
        reset = WINDOW_SECONDS - int(now % WINDOW_SECONDS)
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit - count)),
            "X-RateLimit-Reset": str(reset),
        }
        if count > self.rate_limit:
            raise RateLimited(
                f"more than {self.rate_limit} requests per minute; retry in {reset}s",
                retry_after=reset,
                headers=headers,
            )
        return headers


def actor() -> str | None:
    """The id of the key behind the current request (None when auth is off), for audit records."""
    key: ApiKey | None = g.get("api_key")
    return key.id if key else None


def install(app: Flask, guard: Guard) -> None:
    """Check the key and scope of every request before its view runs."""

    @app.before_request
    def _authorise() -> None:
        if request.method == "OPTIONS" or request.endpoint is None:
            return  # CORS preflight, or a 404 about to happen
        if request.blueprint == "proxy":
            return  # the per-agent token in the URL or X-Godel-Token is the proxy's credential
        op = operation_of(app, request.endpoint)
        scope: Scope | None = op.scope if op is not None else "read"
        if scope is None:
            return
        g.api_key = guard.authenticate(token_of(request), scope)
        ident = g.api_key.id if g.api_key is not None else f"addr:{request.remote_addr}"
        g.rate_headers = guard.throttle(ident)

    @app.after_request
    def _rate_headers(response: Response) -> Response:
        for name, value in g.get("rate_headers", {}).items():
            response.headers.setdefault(name, value)
        return response
