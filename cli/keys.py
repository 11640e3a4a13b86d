"""``godel keys create|list|revoke``: API keys, written straight to the database.

The CLI works on the database directly, so the first admin key can be made
before any server runs; the key itself is printed once and never stored.
"""

from __future__ import annotations

from typing import Any

import click

from godel import keys as core
from godel.context import build_context
from godel.storage.models import ApiKey

from .output import dumps, emit_object, emit_rows, format_option


def _row(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "scopes": ",".join(key.scopes),
        "state": core.state(key),
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


@click.group("keys")
def keys() -> None:
    """Create, list and revoke API keys for `godel serve`."""


@keys.command("create")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(core.SCOPES),
    default=("read",),
    show_default=True,
    help="Repeatable. admin includes write, write includes read.",
)
@click.option("--expires", help="30d, 12h, or an ISO date; the key never expires when unset.")
@click.option("--name", help="What the key is for, shown by `godel keys list`.")
@click.option(
    "--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True, help="Output format."
)
def create(scopes: tuple[str, ...], expires: str | None, name: str | None, fmt: str) -> None:
    """Create a key and print it once."""
    expires_at = core.parse_expiry(expires) if expires else None
    row, key = core.create(build_context().store, scopes=scopes, name=name, expires_at=expires_at)
    if fmt == "json":
        click.echo(dumps({"id": row.id, "key": key, "scopes": row.scopes}))
        return
    emit_object({"id": row.id, "key": key, "scopes": ",".join(row.scopes), "expires_at": row.expires_at}, "table")
    click.echo("Store the key now: only its hash is kept.", err=True)


@keys.command("list")
@format_option
def list_keys(fmt: str) -> None:
    """Every key with its scopes and state (never the key itself)."""
    rows = [_row(k) for k in core.all_keys(build_context().store)]
    emit_rows(rows, fmt, ["id", "name", "scopes", "state", "created_at", "expires_at", "last_used_at"])


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke KEY_ID at once; requests with it get 401 from then on."""
    row = core.revoke(build_context().store, key_id)
    click.echo(f"revoked {row.id}")
