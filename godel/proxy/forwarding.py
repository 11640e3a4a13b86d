"""Forwarding a call upstream and relaying its answer back chunk by chunk, metered on the way past."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis
import sqlalchemy.exc

from godel.config import ProxySettings
from godel.context import Context
from godel.errors import ServiceUnavailable
from godel.proxy.dialects import Dialect, Reply, Used, dialect
from godel.proxy.metering import record, refusal
from godel.proxy.tokens import PLACEHOLDER_KEY, TOKEN_HEADER, count_call, resolve
from godel.proxy.usage import Meter

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_DROP_REQUEST = _HOP_BY_HOP | {"host", "content-length", "accept-encoding", TOKEN_HEADER.lower()}
# Content-Length is dropped from answers so they are sent chunked: the client then sees the end
# only after the last chunk is metered, and its next call meets the updated budget. Date and
# Server are the HTTP server's own to send.
_DROP_RESPONSE = _HOP_BY_HOP | {"content-length", "date", "server"}


@dataclass(frozen=True)
class Call:
    """One client request, as the HTTP layer received it."""

    provider: str
    token: str | None
    method: str
    path: str
    """What follows ``/v1/``, e.g. ``chat/completions``."""
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _is_placeholder(value: str) -> bool:
    return value.strip() in (PLACEHOLDER_KEY, f"Bearer {PLACEHOLDER_KEY}")


def outgoing_headers(dialect: Dialect, settings: ProxySettings, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The client's headers minus hop-by-hop ones; the configured key when the client sent none."""
    out: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in _DROP_REQUEST or (lower in dialect.credential_headers and _is_placeholder(value)):
            continue
        out[name] = value
    key = dialect.api_key(settings)
    if key and not any(name.lower() in dialect.credential_headers for name in out):
        name, value = dialect.auth_header(key)
        out[name] = value
    # Usage is read from the bytes as they pass, so they must not arrive compressed.
    out["Accept-Encoding"] = "identity"
    present = {name.lower() for name in out}
    out.update({name: value for name, value in dialect.required_headers.items() if name.lower() not in present})
    return out


def prepare_body(dialect: Dialect, path: str, body: bytes) -> tuple[bytes, str | None]:
    """The body to forward (unchanged unless usage must be asked for) and the model it names."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body, None  # the upstream will say what is wrong with it
    if not isinstance(payload, dict):
        return body, None
    model = payload.get("model") if isinstance(payload.get("model"), str) else None
    if dialect.prepare(path, payload):
        return json.dumps(payload).encode(), model
    return body, model


def _send(
    url: str, method: str, headers: dict[str, str], body: bytes, timeout: float
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    parts = urlsplit(url)
    connection = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = connection(parts.hostname or "", parts.port, timeout=timeout)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, target, body=body if method != "GET" else None, headers=headers)
        return conn, conn.getresponse()
    except BaseException:
        conn.close()
        raise


class Relay:
    """The upstream body, handed on chunk by chunk; its usage is settled exactly once.

    Settling happens when the upstream body ends, before the HTTP layer sends the
    client the end of the answer, or on ``close()`` when the client leaves early
    (with the usage seen so far). WSGI servers call ``close()`` either way.
    """

    def __init__(
        self,
        conn: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        meter: Meter | None = None,
        settle: Callable[[Used], None] | None = None,
    ) -> None:
        self._conn, self._response = conn, response
        self._meter, self._settle = meter, settle
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        try:
            chunk = self._response.read1(READ_SIZE)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            # Raising, not ending quietly, makes the client see a broken answer, not a short one.
            raise ConnectionAbortedError(f"upstream stopped mid-answer: {exc}") from exc
        if not chunk:
            self.close()
            raise StopIteration
        if self._meter is not None:
            self._meter.feed(chunk)
        return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._response.close()
        self._conn.close()
        if self._meter is not None and self._settle is not None:
            try:
                self._settle(self._meter.finish())
            except Exception:  # the answer is already on its way; a metering failure must not break it
                log.exception("recording the cost of a proxied call failed")


def _upstream_url(dialect: Dialect, settings: ProxySettings, call: Call) -> str:
    url = f"{dialect.upstream(settings)}{dialect.version_prefix}/{call.path}"
    return f"{url}?{call.query}" if call.query else url


def forward(ctx: Context, settings: ProxySettings, call: Call) -> Reply:
    """Check the token and the budget, forward the call, and meter its answer as it streams back.

    Failures come back in the provider's error shape, so any client reports them sensibly.
    """
    family = dialect(call.provider)
    try:
        return _forward(ctx, settings, family, call)
    except (ServiceUnavailable, redis.RedisError, sqlalchemy.exc.OperationalError) as exc:
        log.warning("proxy cannot check a call: %s", exc)
        return family.error("unavailable", f"Godel cannot check this call now: {exc}")


def _forward(ctx: Context, settings: ProxySettings, family: Dialect, call: Call) -> Reply:
    kind = family.route(call.method, call.path)
    if kind is None:
        return family.error("not_found", f"the Godel proxy does not serve {call.method} /v1/{call.path}")
    grant = resolve(ctx, call.token)
    if grant is None:
        return family.error("unauthorized", "unknown or expired Godel proxy token")
    body, model = call.body, None
    if kind == "metered":
        if reason := refusal(ctx, grant):
            return family.error("refused", f"Godel stopped this call: {reason}")
        body, model = prepare_body(family, call.path, call.body)
    url = _upstream_url(family, settings, call)
    try:
        conn, response = _send(
            url, call.method, outgoing_headers(family, settings, call.headers), body, settings.timeout
        )
    except TimeoutError:
        return family.error("timeout", f"no answer from {family.upstream(settings)} within {settings.timeout:g}s")
    except (OSError, http.client.HTTPException) as exc:
        return family.error("bad_gateway", f"cannot reach {family.upstream(settings)}: {exc}")
    headers = [(n, v) for n, v in response.getheaders() if n.lower() not in _DROP_RESPONSE]
    if kind != "metered" or not 200 <= response.status < 300:
        return Reply(response.status, headers, Relay(conn, response))  # errors are not billed
    streaming = (response.getheader("Content-Type") or "").startswith("text/event-stream")
    meter = Meter(family, streaming=streaming, model=model)
    provider = family.price_provider(settings)

    def settle(used: Used) -> None:
        if not used.seen:
            log.warning("%s answer for job %s carried no usage; not metered", family.name, grant.job_id)
            return
        record(ctx, grant, used, provider)
        count_call(ctx, grant.token)

    return Reply(response.status, headers, Relay(conn, response, meter, settle))
