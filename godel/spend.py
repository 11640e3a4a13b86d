"""What has been spent, grouped the ways people ask: provider, model, role, day, job."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select

from godel.storage.db import session_scope
from godel.storage.models import Cost
from godel.storage.store import Store

GroupBy = Literal["provider", "model", "role", "day", "job"]
GROUPS: tuple[GroupBy, ...] = ("provider", "model", "role", "day", "job")


def spend(
    store: Store, by: list[GroupBy], *, since: datetime | None = None, job_id: str | None = None
) -> list[dict[str, Any]]:
    """Rows of tokens and USD per group, biggest spend first."""
    columns: dict[str, Any] = {
        "provider": Cost.provider,
        "model": Cost.model,
        "role": Cost.role,
        "day": func.substr(func.cast(Cost.created_at, type_=Cost.provider.type), 1, 10),
        "job": Cost.job_id,
    }
    keys = [columns[name].label(name) for name in by]
    cost = func.coalesce(func.sum(Cost.cost_usd), 0.0).label("cost_usd")
    query = select(
        *keys,
        func.count().label("steps"),
        func.coalesce(func.sum(Cost.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(Cost.output_tokens), 0).label("output_tokens"),
        cost,
    )
    if since is not None:
        query = query.where(Cost.created_at >= since)
    if job_id is not None:
        query = query.where(Cost.job_id == job_id)
    if keys:
        query = query.group_by(*keys)
    with session_scope(store.url) as s:
        rows = [dict(row._mapping) for row in s.execute(query.order_by(cost.desc()))]
    for row in rows:
        row["cost_usd"] = round(float(row["cost_usd"]), 6)
    return rows
