"""``godel serve``: the REST API, Socket.IO and /metrics in one process."""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from godel import keys
from godel.config import get_settings
from godel.errors import GodelError


@click.command("serve")
@click.option("--host", help="Address to bind (GODEL_API_HOST, default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to bind (GODEL_API_PORT, default 7373).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the API on HOST:PORT until interrupted.

    Auth is off by default only on 127.0.0.1/localhost; elsewhere every request
    needs a key from `godel keys create`, and GODEL_AUTH=off is refused.
    """
    try:
        _serve(host, port)
    except GodelError as exc:  # also when run outside the `godel` group
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


def _serve(host: str | None, port: int | None) -> None:
    # Imported here so Flask and Socket.IO load only for this command; by module name because
    # mypy checks `api/` as its own package, not as godel.api.
    create_app: Callable[..., tuple[Any, Any]] = importlib.import_module("godel.api.app").create_app
    base = get_settings()
    settings = base.model_copy(update={"api_host": host or base.api_host, "api_port": port or base.api_port})
    app, socketio = create_app(settings)
    svc = app.extensions["godel"]
    click.echo(
        f"Godel API on http://{settings.api_host}:{settings.api_port}/api/v1 "
        f"(auth {'on' if svc.auth else 'off'}; spec at /api/v1/openapi.json)",
        err=True,
    )
    if svc.auth and not any(keys.state(k) == "active" for k in keys.all_keys(svc.ctx.store)):
        click.echo("No active API key yet: create one with `godel keys create --scope admin`.", err=True)
    # SIGTERM (systemd, k8s, tests) ends the server like Ctrl-C, so the finally block runs.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        socketio.run(app, host=settings.api_host, port=settings.api_port, allow_unsafe_werkzeug=True)
    except KeyboardInterrupt:
        pass
    finally:
        app.extensions["godel.realtime"].stop()
        svc.monitor.stop()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
