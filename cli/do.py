"""``godel do``: parse an intent, pick a team, run it on Celery and follow it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from godel import jobs
from godel.config import get_settings, parse_duration
from godel.context import build_context
from godel.validation import validated

from .backend import backend
from .output import dumps
from .progress import watch

STATUS_EXIT = {
    "succeeded": 0,
    "failed": 10,
    "changes_requested": 11,
    "cancelled": 12,
    "timed_out": 13,
    "budget_exceeded": 14,
}
"""Exit code of ``godel do`` by how the job ended (0 only on success)."""
DETACHED_EXIT = 130


def _dry_run(prepared: jobs.Prepared, as_json: bool) -> None:
    from godel.broker import make_celery
    from godel.canvas import build

    built = build(make_celery("redis://dry-run/0"), "dry-run", prepared.agents)
    record = {
        "intent": prepared.intent.model_dump(mode="json"),
        "team": [{"name": n, "role": r.value} for n, r in prepared.agents],
        "plan": prepared.plan,
        "canvas": built.describe(),
        "runtime": prepared.runtime,
        "repo": str(prepared.repo),
        "base_ref": prepared.base_ref,
    }
    if as_json:
        click.echo(dumps(record))
        return
    intent = prepared.intent
    click.echo(f"intent:       {intent.intent.value} ({intent.complexity.value}, confidence {intent.confidence:.2f})")
    click.echo(f"feature:      {intent.feature}")
    click.echo(f"requirements: {', '.join(intent.requirements) or '-'}")
    click.echo(f"template:     {intent.template}   runtime: {prepared.runtime}")
    click.echo("team:         " + ", ".join(n for n, _ in prepared.agents))
    click.echo("canvas:")
    for line in record["canvas"]:
        click.echo(f"  {line}")


@click.command("do")
@click.argument("text")
@click.option(
    "--repo", type=click.Path(path_type=Path), default=".", show_default=True, help="Git repository to work on."
)
@click.option("--runtime", help="Agent runtime: command, demo (GODEL_RUNTIME).")
@click.option("--agent-cmd", help="Executable for --runtime command (GODEL_AGENT_CMD).")
@click.option("--timeout", help="Bound on the whole job: 90s, 45m, 2h (default 60m).")
@click.option("--workers", type=int, help="Override the number of Workers.")
@click.option("--template", help="Use this intent template instead of the parsed one.")
@click.option("--model", help="Model for runtimes that take one (overrides the template's).")
@click.option("--budget", type=float, help="USD the job may spend; it ends budget_exceeded when spent.")
@click.option(
    "--strategy",
    type=click.Choice(["careful", "fast"]),
    help="careful: more review, smaller subtasks, approval before merge; fast: no coordinator, one reviewer.",
)
@click.option("--coverage", type=float, help="For testing intents: the Reviewer requires this test coverage %.")
@click.option("--merge-into", help="After approval also merge godel/<job> into this branch (rollback undoes it).")
@click.option(
    "--require-approval", is_flag=True, help="Pause before merging (before a deploy's workers) for `godel approve`."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Print intent, team and canvas; enqueue nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine output: one JSON object.")
@click.option("--wait/--no-wait", default=None, help="Wait for the end (default: yes, except with --json).")
def do(
    text: str,
    repo: Path,
    runtime: str | None,
    agent_cmd: str | None,
    timeout: str | None,
    workers: int | None,
    template: str | None,
    model: str | None,
    budget: float | None,
    strategy: str | None,
    coverage: float | None,
    merge_into: str | None,
    require_approval: bool,
    yes: bool,
    dry_run: bool,
    as_json: bool,
    wait: bool | None,
) -> None:
    """Run TEXT (an intent in plain words) with a team of agents on REPO."""
    settings = get_settings()
    request = validated(
        jobs.SubmitRequest,
        {
            "text": text,
            "repo": repo,
            "runtime": runtime,
            "agent_cmd": agent_cmd,
            "workers": workers,
            "template": template,
            "require_approval": require_approval,
            "model": model,
            "budget": budget,
            "strategy": strategy,
            "coverage": coverage,
            "merge_into": merge_into,
            "timeout": parse_duration(timeout, field="timeout") if timeout else None,
        },
    )
    if dry_run:  # always local: it reads the repository and templates here
        _dry_run(jobs.prepare(build_context(settings), request), as_json)
        return
    err = Console(stderr=True)
    be = backend(settings)
    job = be.submit(request, yes=yes, say=lambda line: err.print(f"[dim]{line}[/]"))
    job_id = job["job_id"]
    if not ((not as_json) if wait is None else wait):
        click.echo(dumps(job) if as_json else f"job {job_id} queued; follow it with `godel show {job_id}`")
        return
    try:
        if not as_json:
            err.print(f"job [bold]{job_id}[/] · {job['intent']} · team of {len(job['agents'])} · Ctrl-C detaches")
        watch(job, be.follow(job_id), None if as_json else Console())
    except KeyboardInterrupt:
        err.print(
            f"\nDetached; job {job_id} keeps running. `godel show {job_id}` to look, `godel cancel {job_id}` to stop."
        )
        sys.exit(DETACHED_EXIT)
    job = be.job(job_id)
    if as_json:
        click.echo(dumps(job))
    else:
        _summary(job)
    sys.exit(STATUS_EXIT.get(job["status"], 1))


def _summary(job: dict[str, Any]) -> None:
    console = Console()
    style = "green" if job["status"] == "succeeded" else "red"
    console.print(f"[{style}]{job['status']}[/] {job['summary'] or job['error'] or ''}")
    if job["status"] == "succeeded":
        branch, job_id = job["branch"], job["job_id"]
        console.print(f"branch: [bold]{branch}[/]  (git log {branch}; `godel rollback {job_id}` undoes it)")
    if job["cost_usd"]:
        console.print(f"cost: ${job['cost_usd']:.4f}")
