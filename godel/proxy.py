"""The metering proxy: agents' model calls pass through Godel, so cost is exact and budgets bite.

A runtime that accepts a base URL (the ``openai`` runtime, Claude Code through
``ANTHROPIC_BASE_URL``, Codex through ``OPENAI_BASE_URL``) is pointed at
``{GODEL_PROXY_URL}/t/<token>/openai/v1`` or ``{GODEL_PROXY_URL}/t/<token>/anthropic``.
The token names the job and agent, so each call's tokens are priced and recorded
the moment it ends, and the next call of a job whose budget is spent is refused
in the provider's own error shape. That stops an external CLI mid-run, where no
Godel code runs between its model calls.

Bodies stream through chunk by chunk; usage is read on the way past (the final
SSE events, or the JSON body). This module knows nothing of Flask:
``api/routes/proxy.py`` turns requests into a ``Call`` and a ``Reply`` back.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import math
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import redis
import sqlalchemy.exc
from pydantic import SecretStr

from godel import budget, pricing
from godel.config import DEFAULT_ANTHROPIC_UPSTREAM, DEFAULT_OPENAI_UPSTREAM, ProxySettings, get_settings
from godel.context import Context
from godel.errors import ServiceUnavailable, ValidationError
from godel.events import Event, EventType
from godel.lifecycle import end_job, stop_reason
from godel.storage.models import Cost, Job, utcnow
from godel.storage.store import TERMINAL

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Godel-Token"
"""Carries the token on the canonical paths ``/proxy/v1/...``, for clients that can add a header."""
TOKEN_KEY = "godel:proxy:token:{digest}"
"""Redis key of a token's grant; the token itself is stored only as a hash."""
CALLS_KEY = "godel:proxy:calls:{digest}"
"""Redis counter of the calls metered with a token, read when the agent's turn ends."""
CALLS_TTL = 24 * 3600
PLACEHOLDER_KEY = "godel-proxy"
"""An API key a client sends when the proxy holds the real one (some CLIs refuse to start without
a key): it is dropped and the configured key sent instead."""
METERED_BY = "metered_by"
"""``AgentResult.data`` key set to ``"proxy"`` when the proxy metered an agent's turn, so the cost
its runtime reports is not recorded a second time."""
READ_SIZE = 64 * 1024
MAX_METERED_BODY = 64 * 1024 * 1024
"""Bytes of a non-streaming answer kept to read its usage; a larger one is passed on unmetered."""
MAX_SSE_LINE = 8 * 1024 * 1024
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,128}")


def load_proxy_settings() -> ProxySettings:
    return get_settings().proxy


# --- tokens --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """Whose calls a token carries."""

    job_id: str
    agent: str
    role: str
    token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_key(token: str) -> str:
    return TOKEN_KEY.format(digest=_digest(token))


def mint(ctx: Context, job_id: str, agent: str, role: str, ttl: float) -> str:
    """A new token for one agent of one job, valid for ``ttl`` seconds (the job's remaining time)."""
    for name, value in (("job_id", job_id), ("agent", agent), ("role", role)):
        if not value:
            raise ValidationError("must not be empty", field=name)
    if ttl <= 0:
        raise ValidationError(f"must be more than 0 seconds, not {ttl}", field="ttl")
    token = secrets.token_urlsafe(32)
    grant = json.dumps({"job_id": job_id, "agent": agent, "role": role})
    try:
        ctx.redis.set(_token_key(token), grant, ex=max(1, math.ceil(ttl)))
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"cannot store the proxy token in Redis: {exc}", field="redis") from None
    return token


def resolve(ctx: Context, token: str | None) -> Grant | None:
    """The grant behind a token, or None when it is malformed, unknown or expired."""
    if not token or not _TOKEN_SHAPE.fullmatch(token):
        return None
    try:
        raw = ctx.redis.get(_token_key(token))
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"cannot read proxy tokens from Redis: {exc}", field="redis") from None
    if not raw:
        return None
    data = json.loads(str(raw))
    return Grant(job_id=str(data["job_id"]), agent=str(data["agent"]), role=str(data["role"]), token=token)


def retire(ctx: Context, token: str) -> int:
    """End a token (its agent's turn is over); how many calls the proxy metered with it.

    The count, not the runtime's say-so, decides whether the runtime's own cost
    is skipped: a tool that ignored its base URL was not metered here.
    """
    calls = CALLS_KEY.format(digest=_digest(token))
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.get(calls)
    pipe.delete(_token_key(token), calls)
    count = pipe.execute()[0]
    return int(count or 0)


def _count_call(ctx: Context, token: str) -> None:
    key = CALLS_KEY.format(digest=_digest(token))
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, CALLS_TTL)
    pipe.execute()


def token_ttl(job: Job) -> float:
    """Seconds the job may still run, so a token dies with its job's deadline."""
    if job.deadline is None:
        return float(job.options.get("timeout", 3600))
    return (job.deadline - utcnow()).total_seconds()


def base_urls(proxy_url: str, token: str) -> dict[str, str]:
    """The base URLs a runtime gives its client, one per provider family."""
    root = proxy_url.rstrip("/")
    return {"openai": f"{root}/t/{token}/openai/v1", "anthropic": f"{root}/t/{token}/anthropic"}


def runtime_options(ctx: Context, settings: ProxySettings, job: Job, agent: str, role: str) -> dict[str, Any]:
    """``{"proxy": {...}}`` for an agent's runtime options, or ``{}`` when GODEL_PROXY_URL is unset.

    The API keys are the placeholder when the proxy holds the real key, else None
    (the tool keeps whatever key it was given).
    """
    if not settings.url:
        return {}
    ttl = token_ttl(job)
    if ttl <= 0:
        return {}  # the job is past its deadline; the step is about to be halted anyway
    token = mint(ctx, job.id, agent, role, ttl)
    urls = base_urls(settings.url, token)
    return {
        "proxy": {
            "token": token,
            "openai_base_url": urls["openai"],
            "anthropic_base_url": urls["anthropic"],
            "openai_api_key": PLACEHOLDER_KEY if settings.openai_api_key else None,
            "anthropic_api_key": PLACEHOLDER_KEY if settings.anthropic_api_key else None,
        }
    }


# --- provider dialects ---------------------------------------------------------------------------

Route = Literal["metered", "passthrough"]
Problem = Literal["unauthorized", "refused", "not_found", "too_large", "bad_gateway", "timeout", "unavailable"]
_RETRY_USELESS = frozenset({"unauthorized", "refused", "not_found", "too_large"})
"""Problems a retry cannot fix: answered with ``x-should-retry: false``, which the OpenAI and
Anthropic SDKs obey before their own status rules."""
_MODELS = re.compile(r"models(/[^/?#]+)*")


@dataclass
class Used:
    """Tokens and model seen in one answer; ``seen`` is False when it carried no usage at all."""

    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    seen: bool = False
    billed_input: float | None = None
    """Input tokens weighted by their price relative to plain input (cache reads cost less); None: all plain."""
    parts: dict[str, int] = field(default_factory=dict)
    """The latest value of each usage counter, for APIs that spread them over several events."""


@dataclass(frozen=True)
class Reply:
    """What the HTTP layer sends back: status, headers and a body it must iterate (and close)."""

    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return max(0, int(value))


class Dialect(ABC):
    """What differs between provider APIs: paths, credentials, usage fields, error shapes."""

    name: str
    default_upstream: str
    version_prefix: str
    """Path between the configured upstream and ``/<path>``: "" when the upstream ends in /v1."""
    metered: frozenset[str]
    passthrough: frozenset[tuple[str, str]]
    credential_headers: frozenset[str]
    problems: dict[str, tuple[int, str, str | None]]
    """Problem -> (HTTP status, error type, error code)."""
    required_headers: dict[str, str] = {}
    """Headers the upstream insists on that a bare client (curl) may leave out."""

    def upstream(self, settings: ProxySettings) -> str:
        return str(getattr(settings, f"{self.name}_upstream"))

    def api_key(self, settings: ProxySettings) -> str | None:
        secret: SecretStr | None = getattr(settings, f"{self.name}_api_key")
        return secret.get_secret_value() if secret else None

    def price_provider(self, settings: ProxySettings) -> str | None:
        """The price-table provider: configured, else this family's own host; None prices by model name.

        Any other host (a gateway, a local server) may serve anyone's models.
        """
        configured: str | None = getattr(settings, f"{self.name}_provider")
        if configured:
            return configured
        own = urlsplit(self.default_upstream).hostname
        return self.name if urlsplit(self.upstream(settings)).hostname == own else None

    def route(self, method: str, path: str) -> Route | None:
        """Whether the proxy serves ``method /v1/<path>``, and whether it costs money."""
        if any(part in ("", ".", "..") for part in path.split("/")):
            return None
        if method == "POST" and path in self.metered:
            return "metered"
        if (method, path) in self.passthrough or (method == "GET" and _MODELS.fullmatch(path)):
            return "passthrough"
        return None

    @abstractmethod
    def auth_header(self, key: str) -> tuple[str, str]:
        """The header that carries ``key`` upstream."""

    def prepare(self, path: str, payload: dict[str, Any]) -> bool:
        """Adjust a metered request so its answer carries usage; True if ``payload`` changed."""
        return False

    @abstractmethod
    def observe(self, doc: dict[str, Any], used: Used) -> None:
        """Update ``used`` from one JSON document (a body or an SSE event); later values win."""

    @abstractmethod
    def error_body(self, kind: str, code: str | None, message: str) -> dict[str, Any]:
        """The provider's JSON error shape."""

    def error(self, problem: Problem, message: str) -> Reply:
        status, kind, code = self.problems[problem]
        headers = [("Content-Type", "application/json")]
        if problem in _RETRY_USELESS:
            headers.append(("x-should-retry", "false"))
        return Reply(status, headers, [json.dumps(self.error_body(kind, code, message)).encode()])


class OpenAIDialect(Dialect):
    """Chat Completions, legacy Completions and the Responses API (which Codex speaks)."""

    name = "openai"
    default_upstream = DEFAULT_OPENAI_UPSTREAM
    version_prefix = ""
    metered = frozenset({"chat/completions", "completions", "responses"})
    passthrough: frozenset[tuple[str, str]] = frozenset()
    credential_headers = frozenset({"authorization", "api-key"})
    # 429 insufficient_quota is what OpenAI answers when credit runs out. The SDKs obey
    # x-should-retry: false, and Codex ends its turn on a 429 it cannot read as a usage limit.
    problems = {
        "unauthorized": (401, "invalid_request_error", "invalid_api_key"),
        "refused": (429, "insufficient_quota", "budget_exceeded"),
        "not_found": (404, "invalid_request_error", "unknown_url"),
        "too_large": (413, "invalid_request_error", "request_too_large"),
        "bad_gateway": (502, "api_error", "upstream_unreachable"),
        "timeout": (504, "api_error", "upstream_timeout"),
        "unavailable": (503, "api_error", "service_unavailable"),
    }

    def auth_header(self, key: str) -> tuple[str, str]:
        return "Authorization", f"Bearer {key}"

    def prepare(self, path: str, payload: dict[str, Any]) -> bool:
        # A streamed chat completion reports usage only when asked to, in one extra final chunk
        # (choices: []); clients skip it. The Responses API always reports it.
        if path not in ("chat/completions", "completions") or payload.get("stream") is not True:
            return False
        options = payload.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        if options.get("include_usage") is True:
            return False
        payload["stream_options"] = {**options, "include_usage": True}
        return True

    def observe(self, doc: dict[str, Any], used: Used) -> None:
        # Responses API events wrap the response object; chat chunks and bodies are flat.
        inner = doc.get("response")
        body = inner if isinstance(inner, dict) else doc
        if isinstance(body.get("model"), str) and body["model"]:
            used.model = body["model"]
        usage = body.get("usage")
        if not isinstance(usage, dict):
            return
        prompt = _count(usage.get("prompt_tokens", usage.get("input_tokens")))
        completion = _count(usage.get("completion_tokens", usage.get("output_tokens")))
        if prompt is not None:
            used.input_tokens, used.seen = prompt, True
        if completion is not None:
            used.output_tokens, used.seen = completion, True

    def error_body(self, kind: str, code: str | None, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class AnthropicDialect(Dialect):
    """The Messages API, as the Anthropic SDKs and Claude Code call it."""

    name = "anthropic"
    default_upstream = DEFAULT_ANTHROPIC_UPSTREAM
    version_prefix = "/v1"
    metered = frozenset({"messages"})
    passthrough = frozenset({("POST", "messages/count_tokens")})
    credential_headers = frozenset({"x-api-key", "authorization"})
    # 402 billing_error is Anthropic's "out of credit"; no SDK or Claude Code retries a 402.
    problems = {
        "unauthorized": (401, "authentication_error", None),
        "refused": (402, "billing_error", None),
        "not_found": (404, "not_found_error", None),
        "too_large": (413, "request_too_large", None),
        "bad_gateway": (502, "api_error", None),
        "timeout": (504, "timeout_error", None),
        "unavailable": (503, "api_error", None),
    }
    INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    """Cached prompt tokens are input too, as the claude profile counts them, though priced differently."""
    SPLIT_KEYS = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
    """``usage.cache_creation``: cache writes by lifetime, which Anthropic prices differently."""
    CACHE_READ, CACHE_WRITE_5M, CACHE_WRITE_1H = 0.1, 1.25, 2.0
    """Anthropic's prices of cached prompt tokens, as multiples of the model's input price. Claude Code
    caches most of its prompt, so pricing these as plain input would overstate its cost several times."""
    required_headers = {"anthropic-version": "2023-06-01"}

    def auth_header(self, key: str) -> tuple[str, str]:
        return "x-api-key", key

    def observe(self, doc: dict[str, Any], used: Used) -> None:
        # message_start carries the message (input usage); message_delta carries cumulative
        # usage at top level; a non-streamed body is the message itself.
        message = doc.get("message") if doc.get("type") == "message_start" else doc
        if not isinstance(message, dict):
            return
        if isinstance(message.get("model"), str) and message["model"]:
            used.model = message["model"]
        usage = message.get("usage")
        if not isinstance(usage, dict):
            return
        split = usage.get("cache_creation")
        split = split if isinstance(split, dict) else {}
        found = [(key, usage.get(key)) for key in (*self.INPUT_KEYS, "output_tokens")]
        found += [(key, split.get(key)) for key in self.SPLIT_KEYS]
        for key, value in found:
            if (count := _count(value)) is not None:
                used.parts[key], used.seen = count, True
        parts = used.parts
        used.input_tokens = sum(parts.get(key, 0) for key in self.INPUT_KEYS)
        used.output_tokens = parts.get("output_tokens", 0)
        short, long = parts.get("ephemeral_5m_input_tokens", 0), parts.get("ephemeral_1h_input_tokens", 0)
        unsplit = max(0, parts.get("cache_creation_input_tokens", 0) - short - long)
        used.billed_input = (
            parts.get("input_tokens", 0)
            + self.CACHE_READ * parts.get("cache_read_input_tokens", 0)
            + self.CACHE_WRITE_5M * (short + unsplit)
            + self.CACHE_WRITE_1H * long
        )

    def error_body(self, kind: str, code: str | None, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": kind, "message": message}}


DIALECTS: dict[str, Dialect] = {d.name: d for d in (OpenAIDialect(), AnthropicDialect())}


def dialect(name: str) -> Dialect:
    found = DIALECTS.get(name)
    if found is None:
        raise ValidationError(f"unknown provider {name!r}; one of {', '.join(DIALECTS)}", field="provider")
    return found


def dialect_for(path: str, headers: Iterable[tuple[str, str]]) -> Dialect:
    """The dialect of a canonical ``/proxy/v1/<path>`` call, which names no provider in its URL."""
    if path == "messages" or path.startswith("messages/"):
        return DIALECTS["anthropic"]
    if path.startswith("models") and any(n.lower() in ("anthropic-version", "x-api-key") for n, _ in headers):
        return DIALECTS["anthropic"]
    return DIALECTS["openai"]


# --- reading usage off the wire ------------------------------------------------------------------


class Meter:
    """Reads usage from an answer as it streams past, without holding a stream in memory."""

    def __init__(self, dialect: Dialect, *, streaming: bool, model: str | None = None) -> None:
        self.dialect = dialect
        self.streaming = streaming
        self.used = Used(model=model)
        self._buffer = bytearray()
        self._overflow = False
        """A body too large to keep: it is passed on unmetered."""
        self._skipping = False
        """Inside an oversized SSE line, dropped until its newline."""

    def feed(self, chunk: bytes) -> None:
        if not self.streaming:
            if not self._overflow:
                self._buffer += chunk
                self._overflow = len(self._buffer) > MAX_METERED_BODY
                if self._overflow:
                    self._buffer.clear()
            return
        self._buffer += chunk
        while (end := self._buffer.find(b"\n")) >= 0:
            if not self._skipping:
                self._line(bytes(self._buffer[:end]))
            self._skipping = False
            del self._buffer[: end + 1]
        if len(self._buffer) > MAX_SSE_LINE:
            # an event this large is content, never the small usage event: drop it and read on
            self._buffer.clear()
            self._skipping = True

    def finish(self) -> Used:
        """The usage seen; call once the answer has ended."""
        if self._overflow:
            log.warning("%s answer larger than %d bytes; not metered", self.dialect.name, MAX_METERED_BODY)
            return Used(model=self.used.model)
        if self.streaming and not self._skipping:
            self._line(bytes(self._buffer))
        elif not self.streaming:
            self._document(bytes(self._buffer))
        self._buffer.clear()
        return self.used

    def _line(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if line.startswith(b"data:"):
            self._document(line[5:].strip())

    def _document(self, data: bytes) -> None:
        if not data or data == b"[DONE]":
            return
        try:
            doc = json.loads(data)
        except ValueError:
            return  # keep-alive comments, or a body that is not JSON: nothing to meter
        if isinstance(doc, dict):
            self.dialect.observe(doc, self.used)


# --- forwarding ----------------------------------------------------------------------------------

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
        _count_call(ctx, grant.token)

    return Reply(response.status, headers, Relay(conn, response, meter, settle))


# --- budget and records --------------------------------------------------------------------------


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
    total = ctx.store.add_cost(
        Cost(
            job_id=grant.job_id,
            agent=grant.agent,
            role=grant.role,
            provider=recorded_provider,
            model=used.model,
            input_tokens=used.input_tokens,
            output_tokens=used.output_tokens,
            cost_usd=estimate.usd,
        )
    )
    ctx.emit(
        Event(
            job_id=grant.job_id,
            type=EventType.cost_recorded,
            agent=grant.agent,
            role=grant.role,
            data={
                "source": "proxy",
                "cost_usd": estimate.usd,
                "job_cost_usd": total,
                "input_tokens": used.input_tokens,
                "output_tokens": used.output_tokens,
                "provider": recorded_provider,
                "model": used.model,
                "cost_unknown": not estimate.priced,
            },
        )
    )
    job = ctx.store.find_job(grant.job_id)
    if job is not None and (reason := budget.after_spend(ctx, job, total - estimate.usd, total)):
        end_job(ctx, job.id, "budget_exceeded", error=reason)
    return estimate.usd
