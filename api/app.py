"""``create_app``: the Flask app and its Socket.IO server, wired to one Godel context.

Everything cross-cutting is here, in request order: body size limit and CORS
preflight, then auth and rate limit (``auth.install``), the view, and on the way
out security headers, CORS headers and the latency histogram.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from flask_socketio import SocketIO  # type: ignore[import-untyped]
from werkzeug.exceptions import RequestEntityTooLarge

from godel.broker import make_celery
from godel.config import Settings, get_settings
from godel.context import build_context
from godel.monitor import Monitor, QueueDepths
from godel.telemetry import Telemetry

from . import auth, errors
from .access import auth_enabled
from .realtime import Realtime
from .routes import BLUEPRINTS
from .routes.proxy import proxy_blueprint
from .services import EXTENSION, Services

MONITOR_MAX_TASKS = 10_000
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Cross-Origin-Opener-Policy": "same-origin",
}
"""Sent on every response; a view that sets its own value keeps it."""
CORS_ALLOW_HEADERS = "Authorization, X-API-Key, Content-Type"
CORS_EXPOSE_HEADERS = "Location, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
CORS_METHODS = "GET, POST, DELETE, OPTIONS"


def create_app(settings: Settings | None = None, *, start: bool = True) -> tuple[Flask, SocketIO]:
    """Build the app for ``settings`` (binding ``settings.api_host``); ``start`` runs the background threads.

    Raises ``ValidationError`` (field ``auth``) when auth is off on a non-loopback address.
    """
    settings = settings or get_settings()
    api = settings
    enabled = auth_enabled(settings)
    ctx = build_context(settings)

    app = Flask("godel.api")
    app.config.update(MAX_CONTENT_LENGTH=api.max_request_bytes)
    celery = make_celery(ctx.redis_url)
    # The monitor starts below, after ``realtime`` exists, so the hook always finds it.
    monitor = Monitor(celery, max_tasks=MONITOR_MAX_TASKS, on_event=lambda note: realtime.celery_event(note))
    svc = Services(
        ctx=ctx,
        guard=auth.Guard(ctx.store, ctx.redis, enabled, api.rate_limit),
        telemetry=Telemetry(ctx.store, QueueDepths(celery)),
        monitor=monitor,
    )
    app.extensions[EXTENSION] = svc
    errors.register(app)
    _limits_and_cors(app, api)
    auth.install(app, svc.guard)
    _response_headers(app, api, svc.telemetry)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.register_blueprint(proxy_blueprint(lambda: svc.ctx))

    socketio = SocketIO(
        app,
        async_mode="threading",
        message_queue=ctx.redis_url,
        channel=f"godel-socketio-db{ctx.redis.connection_pool.connection_kwargs.get('db', 0)}",
        cors_allowed_origins=(api.cors_origins if api.cors_origins != ["*"] else "*") or None,
        manage_session=False,
        max_http_buffer_size=api.max_request_bytes,
    )
    realtime = Realtime(socketio, svc)
    realtime.register()
    app.extensions["godel.realtime"] = realtime
    if start:
        monitor.start()
        realtime.start()
    return app, socketio


def _cors_headers(api: Settings, origin: str | None) -> dict[str, str]:
    """Headers allowing ``origin``, or none; a wildcard never comes with credentials."""
    if not origin or not api.cors_origins:
        return {}
    if api.cors_origins == ["*"]:
        return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS}
    if origin.rstrip("/") in api.cors_origins:
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS,
        }
    return {}


def _limits_and_cors(app: Flask, api: Settings) -> None:
    @app.before_request
    def _before() -> Response | None:
        g.started = time.perf_counter()
        if request.blueprint == "proxy":
            return None  # agents' model calls: the proxy sets its own body limit and answers in their shape
        if request.content_length is not None and request.content_length > api.max_request_bytes:
            raise RequestEntityTooLarge(f"request bodies are limited to {api.max_request_bytes} bytes")
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            response = Response(status=204)
            allowed = _cors_headers(api, request.headers.get("Origin"))
            if allowed:
                response.headers.update(allowed)
                response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
                response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
                response.headers["Access-Control-Max-Age"] = "600"
            return response
        return None


def _response_headers(app: Flask, api: Settings, telemetry: Telemetry) -> None:
    @app.after_request
    def _after(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        response.headers.update(_cors_headers(api, request.headers.get("Origin")))
        response.vary.add("Origin")
        started = g.get("started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
            telemetry.api_latency.labels(request.method, route, str(response.status_code)).observe(
                time.perf_counter() - started
            )
        return response
