"""What differs between provider APIs: routes, credentials, where usage sits in an answer, error shapes."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from godel.config import DEFAULT_ANTHROPIC_UPSTREAM, DEFAULT_OPENAI_UPSTREAM, ProxySettings
from godel.errors import ValidationError

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
