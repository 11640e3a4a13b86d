"""``/proxy``: the metering proxy's HTTP face; what it does is in ``godel.proxy``.

Two ways in, the same proxy behind both:

* ``/proxy/t/<token>/openai/v1/...`` and ``/proxy/t/<token>/anthropic/v1/...``: the
  token is in the base URL, so a tool needs nothing but its usual base-URL setting.
* ``/proxy/v1/chat/completions``, ``/proxy/v1/responses``, ``/proxy/v1/messages``
  (and ``/proxy/v1/models``): the token in an ``X-Godel-Token`` header.

No API key is asked for: the short-lived per-agent token is the credential, and
every answer, errors included, comes in the provider's own shape so clients
handle it as they would the real API's.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from godel import proxy
from godel.config import ProxySettings
from godel.context import Context
from godel.proxy import Reply

METHODS = ["GET", "POST"]


def _response(reply: Reply) -> Response:
    # direct_passthrough hands the Relay itself to the WSGI server, which iterates and closes it.
    return Response(reply.body, status=reply.status, headers=reply.headers, direct_passthrough=True)


def proxy_blueprint(ctx_factory: Callable[[], Context], settings: ProxySettings | None = None) -> Blueprint:
    """The ``/proxy`` routes over the context ``ctx_factory`` returns (called once per request).

    ``settings`` defaults to the ``GODEL_PROXY_*`` environment, read once here.
    """
    conf = settings or proxy.load_proxy_settings()
    bp = Blueprint("proxy", __name__, url_prefix="/proxy")

    @bp.before_request
    def _body_limit() -> None:
        # Agents send whole conversations; the API's own, smaller limit is for its JSON.
        request.max_content_length = conf.max_request_bytes

    def relay(family: proxy.Dialect, token: str | None, rest: str) -> Response:
        try:
            body = request.get_data()
        except RequestEntityTooLarge:
            return _response(family.error("too_large", f"request bodies are limited to {conf.max_request_bytes} bytes"))
        call = proxy.Call(
            provider=family.name,
            token=token,
            method=request.method,
            path=rest,
            query=request.query_string.decode("latin-1"),
            headers=list(request.headers.items()),
            body=body,
        )
        return _response(proxy.forward(ctx_factory(), conf, call))

    @bp.route("/t/<token>/openai/v1/<path:rest>", methods=METHODS)
    def openai_by_url(token: str, rest: str) -> Response:
        return relay(proxy.dialect("openai"), token, rest)

    @bp.route("/t/<token>/anthropic/v1/<path:rest>", methods=METHODS)
    def anthropic_by_url(token: str, rest: str) -> Response:
        return relay(proxy.dialect("anthropic"), token, rest)

    @bp.route("/v1/<path:rest>", methods=METHODS)
    def by_header(rest: str) -> Response:
        family = proxy.dialect_for(rest, request.headers.items())
        return relay(family, request.headers.get(proxy.TOKEN_HEADER), rest)

    return bp
