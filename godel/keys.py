"""API keys: created once, stored only as a hash, found by an indexed id.

A key reads ``gdl_<id>_<secret>``. The id (12 hex characters) is the primary
key of its ``api_keys`` row, so verifying a key is one indexed lookup followed
by a constant-time comparison of sha256 hashes; the secret itself is never
stored. Scopes nest: ``admin`` grants ``write``, which grants ``read``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select

from godel.config import parse_duration
from godel.errors import Conflict, Forbidden, GodelError, NotFound, Unauthorized, ValidationError
from godel.storage.db import session_scope
from godel.storage.models import ApiKey, utcnow
from godel.storage.store import Store

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
"""Ordered weakest first: a key holding a scope holds every scope before it."""
PREFIX = "gdl_"
ID_LENGTH = 12
LAST_USED_RESOLUTION = timedelta(seconds=60)
"""``last_used_at`` is written at most this often per key, not on every request."""
_DAYS = re.compile(r"^\s*(\d+)\s*(d|day|days|w|week|weeks)\s*$", re.IGNORECASE)






def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def grants(held: Iterable[str], needed: Scope) -> bool:
    """True when the scopes ``held`` include ``needed`` or a stronger one."""
    rank = SCOPES.index(needed)
    return any(scope in SCOPES and SCOPES.index(scope) >= rank for scope in held)


def parse_expiry(value: str, *, now: datetime | None = None) -> datetime:
    """``30d``, ``2w``, ``12h``, ``45m`` from now, or an ISO date/datetime (UTC when naive)."""
    now = now or utcnow()
    if match := _DAYS.match(value):
        number, unit = match.groups()
        return now + timedelta(days=int(number) * (7 if unit.lower().startswith("w") else 1))
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        moment = None
    if moment is None:
        try:
            return now + timedelta(seconds=parse_duration(value, field="expires"))
        except GodelError:
            raise ValidationError(f"{value!r} is not a duration (30d, 12h) or an ISO date", field="expires") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=now.tzinfo)
    if moment <= now:
        raise ValidationError("the expiry is in the past", field="expires")
    return moment


def normalise_scopes(scopes: Iterable[str]) -> list[Scope]:
    """The scopes, each once, weakest first; an unknown one is an error naming ``scopes``."""
    chosen: list[Scope] = []
    for scope in scopes:
        known = next((s for s in SCOPES if s == scope), None)
        if known is None:
            raise ValidationError(f"unknown scope {scope!r}; one of {', '.join(SCOPES)}", field="scopes")
        chosen.append(known)
    if not chosen:
        raise ValidationError("a key needs at least one scope", field="scopes")
    return sorted(set(chosen), key=SCOPES.index)


def create(
    store: Store, *, scopes: Iterable[str], name: str | None = None, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Store a new key; returns its row and the key itself, which is never shown again."""
    key_id = secrets.token_hex(ID_LENGTH // 2)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=key_id, name=name, key_hash=hash_key(key), scopes=list(normalise_scopes(scopes)), expires_at=expires_at
    )
    with session_scope(store.url) as s:
        s.add(row)
    return row, key


def all_keys(store: Store) -> list[ApiKey]:
    with session_scope(store.url) as s:
        return list(s.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def get(store: Store, key_id: str) -> ApiKey:
    with session_scope(store.url) as s:
        row = s.get(ApiKey, key_id)
        if row is None:
            raise NotFound(f"no API key {key_id!r}", field="key")
        return row


def revoke(store: Store, key_id: str) -> ApiKey:
    with session_scope(store.url) as s:
        row = s.get(ApiKey, key_id)
        if row is None:
            raise NotFound(f"no API key {key_id!r}", field="key")
        if row.revoked_at is not None:
            raise Conflict(f"API key {key_id} was already revoked", field="key")
        row.revoked_at = utcnow()
        return row


def state(row: ApiKey, now: datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def _key_id(key: str) -> str | None:
    if not key.startswith(PREFIX) or len(key) < len(PREFIX) + ID_LENGTH + 2:
        return None
    key_id = key[len(PREFIX) : len(PREFIX) + ID_LENGTH]
    return key_id if key[len(PREFIX) + ID_LENGTH] == "_" else None


def verify(store: Store, key: str, needed: Scope) -> ApiKey:
    """The key's row if it is active and grants ``needed``; else ``Unauthorized``/``Forbidden``."""
    key_id = _key_id(key)
    with session_scope(store.url) as s:
        row = s.get(ApiKey, key_id) if key_id else None
        if row is None or not hmac.compare_digest(row.key_hash, hash_key(key)):
            raise Unauthorized("invalid API key", field="authorization")
        now = utcnow()
        current = state(row, now)
        if current != "active":
            raise Unauthorized(f"API key {row.id} is {current}", field="authorization")
        if not grants(row.scopes, needed):
            raise Forbidden(f"API key {row.id} lacks the {needed!r} scope", field="scope")
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            row.last_used_at = now
        return row
