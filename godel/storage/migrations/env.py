"""Alembic environment: runs on the engine Godel already configured."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import DateTime, create_engine

from godel.storage.models import Base, UTCDateTime

config = context.config
engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url") or "")



def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Migrations name plain SQLAlchemy types, so they never import Godel's models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("import sqlalchemy as sa")
        return repr(DateTime(timezone=True)).replace("DateTime", "sa.DateTime")
    return False


with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
