"""API keys over HTTP (admin scope): create, list, revoke; each change is audited."""

from __future__ import annotations

from flask import Blueprint

from godel import audit, keys
from godel.storage.models import ApiKey

from ..auth import actor
from ..openapi import operation
from ..schemas import KeyCreate, KeyCreated, KeyList, KeyOut
from ..services import services

bp = Blueprint("keys", __name__, url_prefix="/api/v1/keys")


def key_out(row: ApiKey) -> KeyOut:
    return KeyOut.model_validate(
        {**{c: getattr(row, c) for c in KeyOut.model_fields if c != "state"}, "state": keys.state(row)}
    )


@operation(bp, "", response=KeyList, scope="admin")
def list_keys() -> KeyList:
    """Every key with its scopes and state; never the key itself."""
    return KeyList(items=[key_out(k) for k in keys.all_keys(services().ctx.store)])


@operation(bp, "", "POST", body=KeyCreate, response=KeyCreated, status=201, scope="admin")
def create_key(body: KeyCreate) -> KeyCreated:
    """Create a key; the response is the only time the key is shown."""
    ctx = services().ctx
    expires_at = keys.parse_expiry(body.expires) if body.expires else None
    row, key = keys.create(ctx.store, scopes=body.scopes, name=body.name, expires_at=expires_at)
    audit.record(
        ctx,
        audit.AuditRecord(action="key.create", actor=actor(), target=row.id, data={"scopes": row.scopes}),
    )
    return KeyCreated(**key_out(row).model_dump(), key=key)


@operation(bp, "/<key_id>", "DELETE", response=KeyOut, scope="admin", errors=(409,))
def revoke_key(key_id: str) -> KeyOut:
    """Revoke a key at once; 409 when it was already revoked."""
    ctx = services().ctx
    row = keys.revoke(ctx.store, key_id)
    audit.record(ctx, audit.AuditRecord(action="key.revoke", actor=actor(), target=row.id))
    return key_out(row)
