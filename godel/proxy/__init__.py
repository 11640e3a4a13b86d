"""The metering proxy: agents' model calls pass through Godel, so cost is exact and budgets bite.

A runtime that accepts a base URL (the ``openai`` runtime, Claude Code through
``ANTHROPIC_BASE_URL``, Codex through ``OPENAI_BASE_URL``) is pointed at
``{GODEL_PROXY_URL}/t/<token>/openai/v1`` or ``{GODEL_PROXY_URL}/t/<token>/anthropic``.
The token names the job and agent, so each call's tokens are priced and recorded
the moment it ends, and the next call of a job whose budget is spent is refused
in the provider's own error shape. That stops an external CLI mid-run, where no
Godel code runs between its model calls.

Bodies stream through chunk by chunk; usage is read on the way past (the final
SSE events, or the JSON body). This package knows nothing of Flask:
``api/routes/proxy.py`` turns requests into a ``Call`` and a ``Reply`` back.

``tokens`` mints and resolves per-agent tokens, ``dialects`` holds what differs
between providers, ``usage`` reads usage off the wire, ``forwarding`` sends calls
upstream and relays answers, ``metering`` checks budgets and records costs.
"""

from __future__ import annotations

from godel.config import DEFAULT_ANTHROPIC_UPSTREAM, DEFAULT_OPENAI_UPSTREAM, ProxySettings, get_settings
from godel.proxy.dialects import (
    DIALECTS,
    AnthropicDialect,
    Dialect,
    OpenAIDialect,
    Problem,
    Reply,
    Route,
    Used,
    dialect,
    dialect_for,
)
from godel.proxy.forwarding import READ_SIZE, Call, Relay, forward, outgoing_headers, prepare_body
from godel.proxy.metering import METERED_BY, price, record, refusal
from godel.proxy.tokens import (
    CALLS_KEY,
    CALLS_TTL,
    PLACEHOLDER_KEY,
    TOKEN_HEADER,
    TOKEN_KEY,
    Grant,
    base_urls,
    mint,
    resolve,
    retire,
    runtime_options,
    token_ttl,
)
from godel.proxy.usage import MAX_METERED_BODY, MAX_SSE_LINE, Meter


def load_proxy_settings() -> ProxySettings:
    return get_settings().proxy


__all__ = [
    "CALLS_KEY",
    "CALLS_TTL",
    "DEFAULT_ANTHROPIC_UPSTREAM",
    "DEFAULT_OPENAI_UPSTREAM",
    "DIALECTS",
    "MAX_METERED_BODY",
    "MAX_SSE_LINE",
    "METERED_BY",
    "PLACEHOLDER_KEY",
    "READ_SIZE",
    "TOKEN_HEADER",
    "TOKEN_KEY",
    "AnthropicDialect",
    "Call",
    "Dialect",
    "Grant",
    "Meter",
    "OpenAIDialect",
    "Problem",
    "ProxySettings",
    "Relay",
    "Reply",
    "Route",
    "Used",
    "base_urls",
    "dialect",
    "dialect_for",
    "forward",
    "load_proxy_settings",
    "mint",
    "outgoing_headers",
    "prepare_body",
    "price",
    "record",
    "refusal",
    "resolve",
    "retire",
    "runtime_options",
    "token_ttl",
]
