"""The proxy's pure parts: reading usage off the wire, preparing requests, routes, error shapes, settings."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from godel import proxy
from godel.errors import ConfigError
from godel.proxy import DIALECTS, Meter, ProxySettings, Used, usage
from godel.storage.models import Job, utcnow

pytestmark = pytest.mark.unit

OPENAI = DIALECTS["openai"]
ANTHROPIC = DIALECTS["anthropic"]


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ProxySettings.model_fields:
        monkeypatch.delenv(f"GODEL_PROXY_{name.upper()}", raising=False)


def sse(*events: dict[str, Any] | str, crlf: bool = False) -> bytes:
    lines = []
    for event in events:
        if isinstance(event, str):
            lines.append(f"data: {event}\n\n")
        else:
            name = f"event: {event['type']}\n" if "type" in event else ""
            lines.append(f"{name}data: {json.dumps(event)}\n\n")
    text = "".join(lines)
    return (text.replace("\n", "\r\n") if crlf else text).encode()


def metered(dialect: proxy.Dialect, data: bytes, *, streaming: bool, step: int = 0) -> Used:
    """Feed ``data`` in pieces of ``step`` bytes (0: at once), as sockets cut it."""
    meter = Meter(dialect, streaming=streaming, model="asked-for")
    pieces = [data[i : i + step] for i in range(0, len(data), step)] if step else [data]
    for piece in pieces:
        meter.feed(piece)
    return meter.finish()


# --- usage ---------------------------------------------------------------------------------------

CHAT_STREAM = sse(
    {"object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06", "choices": [{"delta": {"content": "hi"}}]},
    {"object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06", "choices": [], "usage": None},
    {
        "object": "chat.completion.chunk",
        "model": "gpt-4o-2024-08-06",
        "choices": [],
        "usage": {"prompt_tokens": 812, "completion_tokens": 93, "total_tokens": 905},
    },
    "[DONE]",
)


@pytest.mark.parametrize("step", [0, 1, 7, 100])
def test_an_openai_stream_yields_its_final_usage_however_the_bytes_are_cut(step: int) -> None:
    used = metered(OPENAI, CHAT_STREAM, streaming=True, step=step)
    assert used == Used(model="gpt-4o-2024-08-06", input_tokens=812, output_tokens=93, seen=True)


def test_crlf_streams_and_keepalive_comments_are_read() -> None:
    data = b": keep-alive\r\n\r\n" + sse(
        {"type": "message_start", "message": {"usage": {"input_tokens": 5}}}, crlf=True
    )
    assert metered(ANTHROPIC, data, streaming=True).input_tokens == 5


def test_an_openai_body_and_a_responses_body_are_read() -> None:
    chat = {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 10, "completion_tokens": 3}}
    responses = {"object": "response", "model": "gpt-5", "usage": {"input_tokens": 40, "output_tokens": 9}}
    assert metered(OPENAI, json.dumps(chat).encode(), streaming=False) == Used("gpt-4o-mini", 10, 3, True)
    assert metered(OPENAI, json.dumps(responses).encode(), streaming=False) == Used("gpt-5", 40, 9, True)


def test_a_responses_stream_is_read_from_response_completed() -> None:
    data = sse(
        {"type": "response.created", "response": {"model": "gpt-5", "usage": None}},
        {"type": "response.output_text.delta", "delta": "x"},
        {
            "type": "response.completed",
            "response": {"model": "gpt-5", "usage": {"input_tokens": 7, "output_tokens": 2}},
        },
    )
    assert metered(OPENAI, data, streaming=True) == Used("gpt-5", 7, 2, True)


def test_an_anthropic_stream_counts_cached_input_and_the_last_cumulative_output() -> None:
    start = {
        "model": "claude-sonnet-4-5-20250929",
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 30,
            "cache_read_input_tokens": 400,
            "output_tokens": 1,
        },
    }
    data = sse(
        {"type": "message_start", "message": start},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "message_delta", "usage": {"output_tokens": 20}},
        {"type": "message_delta", "usage": {"output_tokens": 57}},
        {"type": "message_stop"},
    )
    used = metered(ANTHROPIC, data, streaming=True, step=3)
    assert (used.model, used.input_tokens, used.output_tokens, used.seen) == (
        "claude-sonnet-4-5-20250929",
        442,
        57,
        True,
    )
    assert used.billed_input == pytest.approx(12 + 1.25 * 30 + 0.1 * 400)


def test_an_anthropic_body_is_read() -> None:
    body = {"type": "message", "model": "claude-haiku-4-5", "usage": {"input_tokens": 8, "output_tokens": 4}}
    used = metered(ANTHROPIC, json.dumps(body).encode(), streaming=False)
    assert (used.model, used.input_tokens, used.output_tokens, used.billed_input) == ("claude-haiku-4-5", 8, 4, 8)


@pytest.mark.parametrize(
    ("dialect", "data", "streaming"),
    [
        (OPENAI, sse({"object": "chat.completion.chunk", "choices": [], "usage": None}, "[DONE]"), True),
        (OPENAI, b"not json at all", False),
        (ANTHROPIC, b'{"usage": {"input_tokens": "many", "output_tokens": true}}', False),
        (ANTHROPIC, sse({"type": "ping"}), True),
    ],
)
def test_an_answer_without_usage_is_not_taken_for_a_free_one(
    dialect: proxy.Dialect, data: bytes, streaming: bool
) -> None:
    used = metered(dialect, data, streaming=streaming)
    assert not used.seen and (used.input_tokens, used.output_tokens) == (0, 0)
    assert used.model == "asked-for"  # the request's model stands in when the answer names none


def test_an_oversized_event_is_skipped_without_losing_the_usage_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage, "MAX_SSE_LINE", 200)
    huge = {"object": "chat.completion.chunk", "choices": [{"delta": {"content": "x" * 500}}]}
    data = sse(huge, {"model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    assert metered(OPENAI, data, streaming=True, step=10) == Used("gpt-4o", 3, 4, True)


def test_an_oversized_body_is_passed_on_unmetered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage, "MAX_METERED_BODY", 64)
    body = {"model": "gpt-4o", "pad": "x" * 500, "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    assert not metered(OPENAI, json.dumps(body).encode(), streaming=False, step=10).seen


def test_cache_writes_are_priced_by_lifetime_and_reads_at_a_tenth() -> None:
    usage = {
        "input_tokens": 100,
        "cache_read_input_tokens": 10_000,
        "cache_creation_input_tokens": 3_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 2_000},
        "output_tokens": 500,
    }
    used = metered(ANTHROPIC, json.dumps({"model": "claude-sonnet-4-5", "usage": usage}).encode(), streaming=False)
    assert used.input_tokens == 13_100  # recorded as the claude profile counts them
    cost = proxy.price("anthropic", used)
    billed = 100 + 0.1 * 10_000 + 1.25 * 1_000 + 2.0 * 2_000
    assert cost.priced and cost.entry == "anthropic/claude-sonnet-4"
    assert cost.usd == pytest.approx((billed * 3.00 + 500 * 15.00) / 1e6)


def test_an_unpriced_model_costs_nothing_and_says_so() -> None:
    cost = proxy.price(None, Used(model="house-model-7", input_tokens=10, output_tokens=10, seen=True))
    assert (cost.usd, cost.priced) == (0.0, False)


# --- requests ------------------------------------------------------------------------------------


def test_a_streamed_chat_request_asks_for_usage_keeping_its_own_stream_options() -> None:
    body = json.dumps({"model": "gpt-4o", "stream": True, "stream_options": {"x": 1}}).encode()
    sent, model = proxy.prepare_body(OPENAI, "chat/completions", body)
    assert json.loads(sent)["stream_options"] == {"x": 1, "include_usage": True} and model == "gpt-4o"


@pytest.mark.parametrize(
    ("dialect", "path", "payload"),
    [
        (OPENAI, "chat/completions", {"model": "m", "stream": False}),
        (OPENAI, "chat/completions", {"model": "m", "stream": True, "stream_options": {"include_usage": True}}),
        (OPENAI, "responses", {"model": "m", "stream": True}),
        (ANTHROPIC, "messages", {"model": "m", "stream": True}),
    ],
)
def test_other_requests_are_forwarded_byte_for_byte(dialect: proxy.Dialect, path: str, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, indent=3).encode()
    assert proxy.prepare_body(dialect, path, body) == (body, "m")


def test_a_body_that_is_not_a_json_object_is_forwarded_for_the_upstream_to_judge() -> None:
    assert proxy.prepare_body(OPENAI, "chat/completions", b"[1, 2]") == (b"[1, 2]", None)
    assert proxy.prepare_body(OPENAI, "chat/completions", b"\xff{") == (b"\xff{", None)


def settings(**values: Any) -> ProxySettings:
    return ProxySettings(**values)


def test_hop_by_hop_host_and_token_headers_stay_behind_and_the_proxy_key_fills_in() -> None:
    client = [
        ("Host", "127.0.0.1:7373"),
        ("Content-Length", "12"),
        ("Connection", "keep-alive"),
        ("Accept-Encoding", "gzip"),
        (proxy.TOKEN_HEADER, "secret"),
        ("Content-Type", "application/json"),
        ("OpenAI-Organization", "org-1"),
    ]
    out = proxy.outgoing_headers(OPENAI, settings(openai_api_key=SecretStr("sk-proxy")), client)
    assert out == {
        "Content-Type": "application/json",
        "OpenAI-Organization": "org-1",
        "Authorization": "Bearer sk-proxy",
        "Accept-Encoding": "identity",
    }


def test_the_clients_own_key_wins_and_the_placeholder_does_not() -> None:
    conf = settings(anthropic_api_key=SecretStr("sk-ant-proxy"))
    own = proxy.outgoing_headers(ANTHROPIC, conf, [("x-api-key", "sk-ant-own"), ("anthropic-version", "2024-01-01")])
    placeholder = proxy.outgoing_headers(ANTHROPIC, conf, [("X-Api-Key", proxy.PLACEHOLDER_KEY)])
    oauth = proxy.outgoing_headers(ANTHROPIC, conf, [("Authorization", "Bearer oauth-token")])
    assert (own["x-api-key"], own["anthropic-version"]) == ("sk-ant-own", "2024-01-01")
    assert placeholder == {
        "x-api-key": "sk-ant-proxy",
        "Accept-Encoding": "identity",
        "anthropic-version": "2023-06-01",
    }
    assert "x-api-key" not in oauth and oauth["Authorization"] == "Bearer oauth-token"


def test_without_a_configured_key_nothing_is_invented() -> None:
    out = proxy.outgoing_headers(OPENAI, settings(), [("Authorization", f"Bearer {proxy.PLACEHOLDER_KEY}")])
    assert out == {"Accept-Encoding": "identity"}


# --- routes, prices and errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "method", "path", "route"),
    [
        (OPENAI, "POST", "chat/completions", "metered"),
        (OPENAI, "POST", "responses", "metered"),
        (OPENAI, "GET", "models", "passthrough"),
        (OPENAI, "GET", "models/gpt-4o", "passthrough"),
        (OPENAI, "GET", "chat/completions", None),
        (OPENAI, "POST", "files", None),
        (OPENAI, "GET", "models/../files", None),
        (ANTHROPIC, "POST", "messages", "metered"),
        (ANTHROPIC, "POST", "messages/count_tokens", "passthrough"),
        (ANTHROPIC, "POST", "messages/batches", None),
        (ANTHROPIC, "POST", "chat/completions", None),
    ],
)
def test_only_known_paths_are_served(dialect: proxy.Dialect, method: str, path: str, route: str | None) -> None:
    assert dialect.route(method, path) == route


def test_canonical_paths_pick_the_dialect_from_the_path_or_headers() -> None:
    assert proxy.dialect_for("messages", []).name == "anthropic"
    assert proxy.dialect_for("messages/count_tokens", []).name == "anthropic"
    assert proxy.dialect_for("chat/completions", []).name == "openai"
    assert proxy.dialect_for("models", [("Authorization", "Bearer x")]).name == "openai"
    assert proxy.dialect_for("models", [("Anthropic-Version", "2023-06-01")]).name == "anthropic"


def test_prices_come_from_the_configured_provider_else_the_official_host_else_the_model_name() -> None:
    assert OPENAI.price_provider(settings()) == "openai"
    assert ANTHROPIC.price_provider(settings()) == "anthropic"
    assert OPENAI.price_provider(settings(openai_upstream="http://127.0.0.1:11434/v1")) is None
    assert OPENAI.price_provider(settings(openai_upstream="http://127.0.0.1:11434/v1", openai_provider="local")) == (
        "local"
    )


def body_of(reply: proxy.Reply) -> Any:
    return json.loads(b"".join(reply.body))


def test_refusals_use_each_providers_stop_shape_and_say_not_to_retry() -> None:
    openai_refusal = OPENAI.error("refused", "job budget spent")
    anthropic_refusal = ANTHROPIC.error("refused", "job budget spent")
    assert openai_refusal.status == 429 and ("x-should-retry", "false") in openai_refusal.headers
    assert body_of(openai_refusal) == {
        "error": {"message": "job budget spent", "type": "insufficient_quota", "param": None, "code": "budget_exceeded"}
    }
    assert anthropic_refusal.status == 402 and ("x-should-retry", "false") in anthropic_refusal.headers
    assert body_of(anthropic_refusal) == {
        "type": "error",
        "error": {"type": "billing_error", "message": "job budget spent"},
    }


def test_passing_troubles_may_be_retried() -> None:
    for problem in ("bad_gateway", "timeout", "unavailable"):
        reply = OPENAI.error(problem, "later")  # type: ignore[arg-type]
        assert reply.status >= 500 and all(name != "x-should-retry" for name, _ in reply.headers)


# --- settings and tokens -------------------------------------------------------------------------


def test_settings_come_from_godel_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GODEL_PROXY_URL", "http://10.0.0.5:7373/proxy/")
    monkeypatch.setenv("GODEL_PROXY_ANTHROPIC_API_KEY", "sk-ant")
    conf = proxy.load_proxy_settings()
    assert conf.url == "http://10.0.0.5:7373/proxy"
    assert conf.anthropic_api_key is not None and conf.anthropic_api_key.get_secret_value() == "sk-ant"
    assert (conf.openai_upstream, conf.anthropic_upstream) == (
        proxy.DEFAULT_OPENAI_UPSTREAM,
        "https://api.anthropic.com",
    )


def test_a_bad_upstream_is_a_config_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GODEL_PROXY_OPENAI_UPSTREAM", "api.openai.com/v1")
    with pytest.raises(ConfigError) as caught:
        proxy.load_proxy_settings()
    assert caught.value.field == "proxy_openai_upstream" and "GODEL_PROXY_OPENAI_UPSTREAM" in str(caught.value)


def test_base_urls_carry_the_token() -> None:
    assert proxy.base_urls("http://h:1/proxy/", "tok") == {
        "openai": "http://h:1/proxy/t/tok/openai/v1",
        "anthropic": "http://h:1/proxy/t/tok/anthropic",
    }


def test_a_token_lives_as_long_as_its_job() -> None:
    job = Job(id="j", options={"timeout": 900}, deadline=utcnow() + timedelta(seconds=300))
    assert 295 < proxy.token_ttl(job) <= 300
    assert proxy.token_ttl(Job(id="j", options={"timeout": 900}, deadline=None)) == 900
