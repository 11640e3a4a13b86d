"""Budgets and records: whether a job may call a model now, and what each metered call cost."""

from __future__ import annotations

from godel import budget, pricing
from godel.context import Context
from godel.lifecycle import end_job, stop_reason
from godel.proxy.dialects import Used
from godel.proxy.tokens import Grant
from godel.storage.models import Cost, utcnow
from godel.storage.store import TERMINAL

METERED_BY = "metered_by"
"""``AgentResult.data`` key set to ``"proxy"`` when the proxy metered an agent's turn, so the cost
its runtime reports is not recorded a second time."""


def refusal(ctx: Context, grant: Grant) -> str | None:
    """Why this agent's job may not call a model now, or None.

    A spent budget also ends the job here, as a step would, so a CLI that keeps
    calling finds its job already stopped.
    """
    job = ctx.store.find_job(grant.job_id)
    if job is None:
        return f"job {grant.job_id} does not exist"
    if job.status in TERMINAL:
        return f"job {job.id} has ended ({job.status})" + (f": {job.error}" if job.error else "")
    if reason := stop_reason(ctx, job.id):
        return f"job {job.id} is stopping ({reason})"
    if job.deadline is not None and job.deadline <= utcnow():
        return f"job {job.id} is past its deadline"
    if reason := budget.exceeded(ctx, job):
        end_job(ctx, job.id, "budget_exceeded", error=reason)
        return reason
    return None


def price(provider: str | None, used: Used) -> pricing.Estimate:
    """Dollars for one call, from Godel's price table, with cached input at its own rate."""
    hit = pricing.lookup(provider, used.model)
    if hit is None:
        return pricing.estimate(provider, used.model, used.input_tokens, used.output_tokens)  # 0.0, logged once
    entry, rate = hit
    billed_input = used.input_tokens if used.billed_input is None else used.billed_input
    usd = (billed_input * rate.input + used.output_tokens * rate.output) / 1_000_000
    return pricing.Estimate(usd=usd, priced=True, entry=entry)


def record(ctx: Context, grant: Grant, used: Used, provider: str | None) -> float:
    """Store one call's cost, announce it, and end the job if that spent its budget. Returns USD."""
    estimate = price(provider, used)
    recorded_provider = provider or (estimate.entry.partition("/")[0] if estimate.entry else None)
    cost = Cost(
        job_id=grant.job_id,
        agent=grant.agent,
        role=grant.role,
        provider=recorded_provider,
        model=used.model,
        input_tokens=used.input_tokens,
        output_tokens=used.output_tokens,
        cost_usd=estimate.usd,
    )
    budget.charge(ctx, cost, source="proxy", cost_unknown=not estimate.priced)
    return estimate.usd
