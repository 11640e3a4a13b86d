"""Aggregates for dashboards (states, throughput, latency, cost) and Prometheus's /metrics."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from flask import Blueprint, Response

from godel.storage.models import utcnow
from godel.telemetry import counts_by_state

from ..openapi import operation
from ..queries import costs_since, finished_jobs
from ..schemas import (
    CostBreakdown,
    CostQuery,
    CostRow,
    Latency,
    LatencyQuery,
    StateCounts,
    Throughput,
    ThroughputPoint,
    ThroughputQuery,
)
from ..services import services

bp = Blueprint("metrics", __name__)


def percentile(ordered: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks of an ascending list."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


@operation(bp, "/api/v1/metrics/states", response=StateCounts)
def states() -> StateCounts:
    """How many jobs, agents and tasks are in each state."""
    return StateCounts.model_validate(counts_by_state(services().ctx.store))


@operation(bp, "/api/v1/metrics/throughput", query=ThroughputQuery, response=Throughput)
def throughput(query: ThroughputQuery) -> Throughput:
    """Jobs finished per minute over the last `minutes` (default an hour)."""
    now = utcnow()
    first = _minute(now) - timedelta(minutes=query.minutes - 1)
    counts: dict[datetime, int] = defaultdict(int)
    for _start, finished in finished_jobs(services().ctx.store, first):
        counts[_minute(finished)] += 1
    items = [
        ThroughputPoint(minute=first + timedelta(minutes=i), finished=counts[first + timedelta(minutes=i)])
        for i in range(query.minutes)
    ]
    total = sum(p.finished for p in items)
    return Throughput(items=items, total=total, per_minute=round(total / query.minutes, 4))


@operation(bp, "/api/v1/metrics/latency", query=LatencyQuery, response=Latency)
def latency(query: LatencyQuery) -> Latency:
    """Percentiles of job duration (start to end, in seconds) over the last `hours`."""
    since = utcnow() - timedelta(hours=query.hours)
    durations = sorted(
        max(0.0, (end - start).total_seconds()) for start, end in finished_jobs(services().ctx.store, since)
    )
    return Latency(
        count=len(durations),
        p50=percentile(durations, 0.50),
        p90=percentile(durations, 0.90),
        p99=percentile(durations, 0.99),
        mean=sum(durations) / len(durations) if durations else None,
    )


@operation(bp, "/api/v1/metrics/costs", query=CostQuery, response=CostBreakdown)
def costs(query: CostQuery) -> CostBreakdown:
    """Spend and tokens per day (UTC), provider and model over the last `days`."""
    since = (utcnow() - timedelta(days=query.days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    rows: dict[tuple[object, str | None, str | None], CostRow] = {}
    for cost in costs_since(services().ctx.store, since):
        key = (cost.created_at.date(), cost.provider, cost.model)
        row = rows.setdefault(
            key,
            CostRow(
                day=cost.created_at.date(),
                provider=cost.provider,
                model=cost.model,
                cost_usd=0.0,
                input_tokens=0,
                output_tokens=0,
            ),
        )
        row.cost_usd = round(row.cost_usd + cost.cost_usd, 6)
        row.input_tokens += cost.input_tokens
        row.output_tokens += cost.output_tokens
    items = sorted(rows.values(), key=lambda r: (r.day, r.provider or "", r.model or ""))
    return CostBreakdown(items=items, total_usd=round(sum(r.cost_usd for r in items), 6))


@operation(bp, "/metrics", response=None, media_type="text/plain")
def prometheus() -> Response:
    """Prometheus exposition: jobs, agents and tasks by state, queue depth, runtimes, latency, cost.

    Needs no key only when auth is off.
    """
    body, content_type = services().telemetry.render()
    return Response(body, content_type=content_type)
