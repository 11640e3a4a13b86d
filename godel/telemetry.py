"""Prometheus metrics: one registry per server, read from the real stores at scrape time.

Job, agent and task counts, task runtimes and spend come from the database
when Prometheus scrapes, not from counters kept in memory, so every API process
reports the same truth and a restart loses nothing. Queue depths come from the
broker's Redis lists (``godel.monitor.QueueDepths``). Only what this process itself measures (request latency,
Socket.IO fan-out lag) lives in in-memory histograms.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, case, extract, func, select
from sqlalchemy.exc import SQLAlchemyError

from godel.errors import ServiceUnavailable
from godel.lifecycle import AWAITING
from godel.monitor import QueueDepths
from godel.storage.db import get_engine, session_scope
from godel.storage.models import Agent, Cost, Job, Task
from godel.storage.store import TERMINAL, Store

JOB_STATES = ("queued", "running", AWAITING, *sorted(TERMINAL))
TASK_STATES = ("PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED")
AGENT_STATES = ("queued", "running", "succeeded", "failed", "cancelled", "timed_out")
RUNTIME_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
"""Seconds; agent turns run from seconds to an hour."""
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _bound(seconds: float) -> str:
    """A bucket bound as Prometheus writes it: ``1.0``, ``2.5``."""
    return repr(float(seconds))


def duration_seconds(url: str, start: Any, end: Any) -> ColumnElement[Any]:
    """``end - start`` in seconds as SQL, on SQLite and Postgres alike."""
    if get_engine(url).dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return extract("epoch", end - start)


def counts_by_state(store: Store) -> dict[str, dict[str, int]]:
    """Jobs, agents and tasks per state; known states appear with 0."""
    result: dict[str, dict[str, int]] = {}
    with session_scope(store.url) as s:
        for kind, column, known in (
            ("jobs", Job.status, JOB_STATES),
            ("agents", Agent.state, AGENT_STATES),
            ("tasks", Task.state, TASK_STATES),
        ):
            counts = dict.fromkeys(known, 0)
            for state, count in s.execute(select(column, func.count()).group_by(column)):
                counts[str(state)] = int(count)
            result[kind] = counts
    return result


class StoreCollector(Collector):
    """Gauges and counters computed from the database on every scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = [*self._states(), self._runtimes(), *self._costs()]
        except SQLAlchemyError:
            metrics = []
        yield from metrics
        yield GaugeMetricFamily(
            "godel_database_up", "1 when the database answered this scrape", value=int(bool(metrics))
        )

    def _states(self) -> Iterator[Metric]:
        for kind, counts in counts_by_state(self.store).items():
            family = GaugeMetricFamily(f"godel_{kind}", f"{kind.capitalize()} by state", labels=["state"])
            for state, count in counts.items():
                family.add_metric([state], count)
            yield family

    def _runtimes(self) -> Metric:
        family = HistogramMetricFamily(
            "godel_task_runtime_seconds", "Run time of finished Celery tasks", labels=["task"]
        )
        seconds = duration_seconds(self.store.url, Task.started_at, Task.finished_at)
        columns = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in RUNTIME_BUCKETS]
        query = (
            select(Task.name, func.count(), func.coalesce(func.sum(seconds), 0.0), *columns)
            .where(Task.started_at.is_not(None), Task.finished_at.is_not(None))
            .group_by(Task.name)
        )
        with session_scope(self.store.url) as s:
            for name, count, total, *cumulative in s.execute(query):
                buckets = [(_bound(b), float(c or 0)) for b, c in zip(RUNTIME_BUCKETS, cumulative, strict=True)]
                family.add_metric([name], [*buckets, ("+Inf", float(count))], sum_value=float(total))
        return family

    def _costs(self) -> Iterator[Metric]:
        spend = CounterMetricFamily("godel_cost_usd", "Money spent by agents", labels=["provider", "model"])
        tokens = CounterMetricFamily("godel_tokens", "Tokens used by agents", labels=["provider", "model", "kind"])
        query = select(
            Cost.provider,
            Cost.model,
            func.sum(Cost.cost_usd),
            func.sum(Cost.input_tokens),
            func.sum(Cost.output_tokens),
        ).group_by(Cost.provider, Cost.model)
        with session_scope(self.store.url) as s:
            for provider, model, usd, tokens_in, tokens_out in s.execute(query):
                labels = [provider or "unknown", model or "unknown"]
                spend.add_metric(labels, float(usd or 0))
                tokens.add_metric([*labels, "input"], float(tokens_in or 0))
                tokens.add_metric([*labels, "output"], float(tokens_out or 0))
        yield spend
        yield tokens


class QueueCollector(Collector):
    """Depth of each Godel queue in the broker, read on every scrape."""

    def __init__(self, depths: QueueDepths) -> None:
        self.depths = depths

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("godel_queue_depth", "Messages waiting in each queue", labels=["queue"])
        try:
            for queue in self.depths.read():
                depth.add_metric([queue["name"]], queue["messages"])
        except ServiceUnavailable:
            yield GaugeMetricFamily("godel_redis_up", "1 when Redis answered this scrape", value=0)
            return
        yield depth
        yield GaugeMetricFamily("godel_redis_up", "1 when Redis answered this scrape", value=1)


class Telemetry:
    """The registry of one API process and the histograms it feeds."""

    def __init__(self, store: Store, depths: QueueDepths) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.registry.register(StoreCollector(store))
        self.registry.register(QueueCollector(depths))
        self.api_latency = Histogram(
            "godel_api_request_duration_seconds",
            "API request latency by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.fanout_lag = Histogram(
            "godel_event_fanout_lag_seconds",
            "Time from an event's timestamp to its emission to Socket.IO clients",
            ["namespace"],
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.fanned_out = Counter(
            "godel_events_fanned_out", "Events emitted to Socket.IO clients", ["namespace"], registry=self.registry
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
