"""``godel db``: schema migrations."""

from __future__ import annotations

import click

from godel.config import get_settings
from godel.storage.db import current_revision, head_revision, safe_url, upgrade


@click.group("db")
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def upgrade_cmd(revision: str) -> None:
    """Apply migrations up to REVISION (default: head). Stored data is kept."""
    url = get_settings().db_url
    upgrade(url, revision)
    click.echo(f"{safe_url(url)} at revision {current_revision(url)}")


@db.command("current")
def current() -> None:
    """Show the database's revision and the newest one Godel ships."""
    url = get_settings().db_url
    click.echo(f"{safe_url(url)}: {current_revision(url) or 'empty'} (head {head_revision()})")
