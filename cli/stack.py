"""``godel up|down|status|worker``: the local stack and foreground workers."""

from __future__ import annotations

import os
import sys

import click

from godel import stack
from godel.broker import ALL_QUEUES
from godel.config import get_settings
from godel.storage.db import ensure_schema

from .output import emit_rows, format_option


@click.command("up")
@click.option("--workers", "-w", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--api/--no-api", default=True, show_default=True, help="Also start `godel serve`.")
def up(workers: int, api: bool) -> None:
    """Start what is missing: Godel's own Redis if none answers, Celery workers, the API server."""
    settings = get_settings()
    ensure_schema(settings.db_url)
    for line in stack.up(settings, workers, api=api):
        click.echo(line)


@click.command("down")
def down() -> None:
    """Stop only the processes `godel up` started."""
    for line in stack.down(get_settings()):
        click.echo(line)


@click.command("status")
@format_option
def status(fmt: str) -> None:
    """Each part of the stack and the broker and database it uses."""
    parts = stack.status(get_settings())
    emit_rows([vars(p) for p in parts], fmt, ["name", "state", "pid", "started_by_godel", "detail"])


@click.command("worker", context_settings={"ignore_unknown_options": True})
@click.option("-Q", "--queues", default=",".join(ALL_QUEUES), show_default=True, help="Queues to consume.")
@click.option("-c", "--concurrency", type=int, default=None, help="Agent slots (GODEL_WORKER_CONCURRENCY).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(queues: str, concurrency: int | None, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker in the foreground (for k8s, systemd, or `make worker`).

    Extra arguments go to `celery worker` unchanged, e.g. `godel worker -- --loglevel DEBUG`.
    """
    settings = get_settings()
    ensure_schema(settings.db_url)
    url, started = stack.ensure_redis(settings)
    if started:
        click.echo(f"started Redis at {url}", err=True)
    os.environ.update(stack.worker_env(settings, url))
    argv = stack.worker_argv(
        queues=queues.split(","),
        concurrency=concurrency or settings.worker_concurrency,
        pool=settings.worker_pool,
        extra=celery_args,
    )
    os.execv(sys.executable, argv)
