"""Budgets: a per-job cap (``--budget``) and a global daily cap (``GODEL_DAILY_BUDGET``).

Spend is checked when a step records cost and before a step starts. Crossing
50, 80 and 100% of a job's cap emits a warning event once each; reaching the
cap ends the job ``budget_exceeded``, which revokes its queued tasks and stops
its running agents through the job's stop key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from godel.context import Context
from godel.events import Event, EventType
from godel.lifecycle import end_job
from godel.storage.db import session_scope
from godel.storage.models import Cost, Job

WARN_AT = (0.5, 0.8, 1.0)
"""Fractions of a job's budget that emit a ``budget.warning`` event."""


def spent_today(ctx: Context) -> float:
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with session_scope(ctx.store.url) as s:
        total = s.scalar(select(func.coalesce(func.sum(Cost.cost_usd), 0.0)).where(Cost.created_at >= midnight))
    return float(total or 0.0)


def exceeded(ctx: Context, job: Job) -> str | None:
    """Why the job may not spend more, or None."""
    cap = job.options.get("budget")
    if cap is not None and job.cost_usd >= float(cap):
        return f"job budget ${float(cap):.2f} spent (${job.cost_usd:.4f})"
    daily = ctx.settings.daily_budget
    if daily is not None and (today := spent_today(ctx)) >= daily:
        return f"daily budget ${daily:.2f} spent (${today:.4f} today)"
    return None


def after_spend(ctx: Context, job: Job, before: float, after: float) -> str | None:
    """Emit the warnings crossed between ``before`` and ``after``; the reason to stop, if any."""
    cap = job.options.get("budget")
    if cap is not None and float(cap) > 0:
        cap = float(cap)
        for fraction in WARN_AT:
            if before < cap * fraction <= after:
                ctx.emit(
                    Event(
                        job_id=job.id,
                        type=EventType.budget_warning,
                        state=f"{int(fraction * 100)}%",
                        message=f"${after:.4f} of ${cap:.2f} spent",
                        data={"fraction": fraction, "spent_usd": after, "budget_usd": cap},
                    )
                )
    job.cost_usd = after
    return exceeded(ctx, job)


def charge(ctx: Context, cost: Cost, job: Job | None = None, **data: Any) -> float:
    """Record one step's or call's spend, announce it, and end the job if it spent the budget.

    The one way cost enters the store, for runtimes' own reports and the
    metering proxy alike; ``data`` adds to the ``cost.recorded`` event. Returns the job's total.
    """
    total = ctx.store.add_cost(cost)
    ctx.emit(
        Event(
            job_id=cost.job_id,
            type=EventType.cost_recorded,
            agent=cost.agent,
            role=cost.role,
            data={
                "cost_usd": cost.cost_usd,
                "job_cost_usd": total,
                "input_tokens": cost.input_tokens,
                "output_tokens": cost.output_tokens,
                "provider": cost.provider,
                "model": cost.model,
                **data,
            },
        )
    )
    job = job or ctx.store.find_job(cost.job_id)
    if job is not None and (reason := after_spend(ctx, job, total - cost.cost_usd, total)):
        end_job(ctx, job.id, "budget_exceeded", error=reason)
    return total
