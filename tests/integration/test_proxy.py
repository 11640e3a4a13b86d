"""The metering proxy over real sockets: a Flask server with only the proxy blueprint, in front of
fake OpenAI and Anthropic servers, with the real Redis and database (SQLite and Postgres).

Checked: bytes stream through as they come, usage is recorded once per call with the right
tokens and price, a spent budget refuses the next call and ends the job, bad tokens get 401, and
upstream errors come back as they were, unmetered.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from pydantic import SecretStr
from werkzeug.serving import make_server

from godel import pricing, proxy, stack
from godel.api.routes.proxy import proxy_blueprint
from godel.config import ProxySettings
from godel.context import Context, build_context
from godel.lifecycle import cancel
from godel.storage.models import Agent, Cost, Job, utcnow
from tests.conftest import make_repo
from tests.fixtures import fake_anthropic_server as anthropic
from tests.fixtures import fake_openai_server as openai
from tests.fixtures.fake_anthropic_server import FakeAnthropicServer
from tests.fixtures.fake_openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration

PROXY_OPENAI_KEY = "sk-proxy-openai"
CHAT = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def ctx(godel_env: dict[str, str]) -> Context:
    return build_context()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("proxy") / "repo")


@pytest.fixture(scope="module")
def openai_up() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(paths=("/v1/chat/completions", "/v1/responses")) as server:
        yield server


@pytest.fixture(scope="module")
def anthropic_up() -> Iterator[FakeAnthropicServer]:
    server = FakeAnthropicServer()
    with server:
        yield server


@pytest.fixture(autouse=True)
def fresh_upstreams(openai_up: FakeOpenAIServer, anthropic_up: FakeAnthropicServer) -> None:
    for server in (openai_up, anthropic_up):
        server.replies.clear()
        server.requests.clear()


@pytest.fixture(scope="module")
def proxy_url(ctx: Context, openai_up: FakeOpenAIServer, anthropic_up: FakeAnthropicServer) -> Iterator[str]:
    """The proxy blueprint alone, in a threaded werkzeug server like ``godel serve``'s."""
    settings = ProxySettings(
        url=None,
        openai_upstream=openai_up.base_url,
        anthropic_upstream=anthropic_up.base_url,
        openai_api_key=SecretStr(PROXY_OPENAI_KEY),
        anthropic_api_key=None,
        openai_provider=None,
        anthropic_provider=None,
        timeout=10,
    )
    with serving(ctx, settings) as url:
        yield url


@contextmanager
def serving(ctx: Context, settings: ProxySettings) -> Iterator[str]:
    app = Flask("proxy-test")
    app.register_blueprint(proxy_blueprint(lambda: ctx, settings))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/proxy"
    finally:
        server.shutdown()
        thread.join(timeout=5)


# --- helpers -------------------------------------------------------------------------------------


def new_job(ctx: Context, repo: Path, budget: float | None = None) -> tuple[Job, str]:
    """A running job with one agent, and that agent's proxy token."""
    job_id = uuid.uuid4().hex[:12]
    job = Job(
        id=job_id,
        text="proxy test",
        intent={},
        template="bug-fix",
        status="running",
        repo_path=str(repo),
        base_ref="HEAD",
        base_branch="main",
        branch=f"godel/{job_id}",
        runtime="cli:claude",
        options={"budget": budget, "tasks": [], "timeout": 600},
        deadline=utcnow() + timedelta(seconds=600),
    )
    ctx.store.add_job(job, [Agent(name="worker-1", role="worker", state="running", runtime="cli:claude")])
    job = ctx.store.job(job_id)
    return job, proxy.mint(ctx, job.id, "worker-1", "worker", proxy.token_ttl(job))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _open(url: str, body: Any, headers: dict[str, str], method: str) -> tuple[http.client.HTTPConnection, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=15)
    payload = json.dumps(body).encode() if body is not None else None
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    conn.request(method, target, body=payload, headers={"Content-Type": "application/json", **headers})
    return conn, conn.getresponse()


def post(url: str, body: Any = None, headers: dict[str, str] | None = None, method: str = "POST") -> Answer:
    conn, response = _open(url, body, headers or {}, method)
    try:
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def costs(ctx: Context, job_id: str) -> list[Cost]:
    return list(ctx.store.costs(job_id))


def event_data(ctx: Context, job_id: str, type_: str) -> list[dict[str, Any]]:
    return [e.data for e in ctx.store.events(job_id) if e.type == type_]


def assert_one_cost(
    ctx: Context, job_id: str, provider: str, model: str, tokens: tuple[int, int], billed_input: float | None = None
) -> Cost:
    rows = costs(ctx, job_id)
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row.provider, row.model, row.input_tokens, row.output_tokens) == (provider, model, *tokens)
    assert row.agent == "worker-1" and row.role == "worker"
    expected = pricing.lookup(provider, model)
    assert expected is not None
    rate = expected[1]
    billed = tokens[0] if billed_input is None else billed_input
    assert row.cost_usd == pytest.approx((billed * rate.input + tokens[1] * rate.output) / 1e6) and row.cost_usd > 0
    assert ctx.store.job(job_id).cost_usd == pytest.approx(row.cost_usd)
    assert ctx.store.agent(job_id, "worker-1").cost_usd == pytest.approx(row.cost_usd)
    [event] = event_data(ctx, job_id, "cost.recorded")
    assert event["data"]["source"] == "proxy" and event["agent"] == "worker-1"
    assert (event["data"]["input_tokens"], event["data"]["output_tokens"]) == tokens
    return row


# --- forwarding and metering ---------------------------------------------------------------------


def test_an_openai_call_is_forwarded_with_the_proxy_key_and_metered_once(
    ctx: Context, repo: Path, proxy_url: str, openai_up: FakeOpenAIServer
) -> None:
    job, token = new_job(ctx, repo)
    openai_up.replies.append(openai.answer("hi there", usage=(1000, 200)))

    answer = post(f"{proxy_url}/t/{token}/openai/v1/chat/completions", {"model": "gpt-4o", "messages": CHAT})

    assert answer.status == 200, answer.body
    assert answer.json()["choices"][0]["message"]["content"] == "hi there"
    [sent] = openai_up.requests
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == f"Bearer {PROXY_OPENAI_KEY}"  # the client sent no key
    assert "stream_options" not in sent["body"]
    assert_one_cost(ctx, job.id, "openai", openai.DEFAULT_MODEL, (1000, 200))


def test_a_client_key_passes_through_and_the_placeholder_key_is_swapped(
    ctx: Context, repo: Path, proxy_url: str, openai_up: FakeOpenAIServer
) -> None:
    job, token = new_job(ctx, repo)
    openai_up.replies.extend([openai.answer("a"), openai.answer("b")])
    url = f"{proxy_url}/t/{token}/openai/v1/chat/completions"

    assert post(url, {"model": "gpt-4o", "messages": CHAT}, {"Authorization": "Bearer sk-client"}).status == 200
    placeholder = {"Authorization": f"Bearer {proxy.PLACEHOLDER_KEY}"}
    assert post(url, {"model": "gpt-4o", "messages": CHAT}, placeholder).status == 200

    assert [r["headers"]["authorization"] for r in openai_up.requests] == [
        "Bearer sk-client",
        f"Bearer {PROXY_OPENAI_KEY}",
    ]
    assert len(costs(ctx, job.id)) == 2


def test_retiring_a_token_counts_the_calls_it_metered_and_ends_it(
    ctx: Context, repo: Path, proxy_url: str, openai_up: FakeOpenAIServer
) -> None:
    job, token = new_job(ctx, repo)
    _, unused = new_job(ctx, repo)
    openai_up.replies.extend([openai.answer("a"), openai.error(500, "boom"), openai.answer("b")])
    url = f"{proxy_url}/t/{token}/openai/v1/chat/completions"
    statuses = [post(url, {"model": "gpt-4o", "messages": CHAT}).status for _ in range(3)]

    assert statuses == [200, 500, 200]
    assert proxy.retire(ctx, token) == 2  # the failed call was not metered
    assert proxy.retire(ctx, unused) == 0  # a tool that ignored its base URL: its own cost counts
    assert post(url, {"model": "gpt-4o", "messages": CHAT}).status == 401
    assert len(openai_up.requests) == 3 and len(costs(ctx, job.id)) == 2


def test_an_openai_stream_reaches_the_client_before_the_upstream_has_finished(
    ctx: Context, repo: Path, proxy_url: str, openai_up: FakeOpenAIServer
) -> None:
    job, token = new_job(ctx, repo)
    hold = threading.Event()
    openai_up.replies.append(openai.stream("one two three", usage=(900, 300), hold=hold))
    body = {"model": "gpt-4o", "stream": True, "messages": CHAT}

    conn, response = _open(f"{proxy_url}/t/{token}/openai/v1/chat/completions", body, {}, "POST")
    try:
        assert response.status == 200
        assert response.getheader("Content-Type").startswith("text/event-stream")
        first = response.read1(65536)
        assert b"one" in first and b"[DONE]" not in first
        assert not hold.is_set() and costs(ctx, job.id) == []  # the upstream is still holding the rest
        hold.set()
        rest = response.read()
    finally:
        hold.set()
        conn.close()

    streamed = first + rest
    assert streamed.rstrip().endswith(b"data: [DONE]")
    assert b'"prompt_tokens": 900' in streamed  # the usage chunk the proxy asked for reached the client too
    assert openai_up.requests[0]["body"]["stream_options"] == {"include_usage": True}
    assert_one_cost(ctx, job.id, "openai", openai.DEFAULT_MODEL, (900, 300))


def test_a_responses_api_stream_is_metered_from_response_completed(
    ctx: Context, repo: Path, proxy_url: str, openai_up: FakeOpenAIServer
) -> None:
    job, token = new_job(ctx, repo)
    openai_up.replies.append(openai.responses_stream("done", usage=(700, 70), model="gpt-5-2025-08-07"))

    answer = post(f"{proxy_url}/t/{token}/openai/v1/responses", {"model": "gpt-5", "stream": True, "input": "hi"})

    assert answer.status == 200 and b"response.completed" in answer.body
    assert "stream_options" not in openai_up.requests[0]["body"]  # the Responses API always reports usage
    assert_one_cost(ctx, job.id, "openai", "gpt-5-2025-08-07", (700, 70))


def test_an_anthropic_stream_on_the_canonical_path_counts_cached_input(
    ctx: Context, repo: Path, proxy_url: str, anthropic_up: FakeAnthropicServer
) -> None:
    job, token = new_job(ctx, repo)
    anthropic_up.replies.append(anthropic.message_stream("hello there", usage=(20, 60), cache_read=100))
    headers = {proxy.TOKEN_HEADER: token, "x-api-key": "sk-ant-client", "anthropic-version": "2023-06-01"}
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": True, "messages": CHAT}

    answer = post(f"{proxy_url}/v1/messages?beta=true", body, headers)

    assert answer.status == 200, answer.body
    assert answer.body.count(b"event: content_block_delta") == 2 and b"message_stop" in answer.body
    [sent] = anthropic_up.requests
    assert sent["path"] == "/v1/messages?beta=true"
    assert sent["headers"]["x-api-key"] == "sk-ant-client"
    assert proxy.TOKEN_HEADER.lower() not in sent["headers"]
    assert_one_cost(ctx, job.id, "anthropic", anthropic.DEFAULT_MODEL, (120, 60), billed_input=20 + 0.1 * 100)


def test_an_anthropic_message_is_metered_from_its_body(
    ctx: Context, repo: Path, proxy_url: str, anthropic_up: FakeAnthropicServer
) -> None:
    job, token = new_job(ctx, repo)
    anthropic_up.replies.append(anthropic.message("fine", usage=(300, 40)))
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": CHAT}

    answer = post(f"{proxy_url}/t/{token}/anthropic/v1/messages", body, {"x-api-key": "sk-ant-client"})

    assert answer.status == 200 and answer.json()["content"][0]["text"] == "fine"
    assert anthropic_up.requests[0]["headers"]["anthropic-version"] == "2023-06-01"  # added for a bare client
    assert_one_cost(ctx, job.id, "anthropic", anthropic.DEFAULT_MODEL, (300, 40))


def test_a_client_that_leaves_mid_stream_is_still_metered_once(
    ctx: Context, repo: Path, proxy_url: str, anthropic_up: FakeAnthropicServer
) -> None:
    job, token = new_job(ctx, repo)
    hold = threading.Event()
    anthropic_up.replies.append(anthropic.message_stream(" ".join(["word"] * 200), usage=(50, 400), hold=hold))
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": True, "messages": CHAT}

    conn, response = _open(f"{proxy_url}/t/{token}/anthropic/v1/messages", body, {"x-api-key": "k"}, "POST")
    assert b"message_start" in response.read1(65536)
    response.close()  # the socket stays open while the response holds it
    conn.close()
    hold.set()

    deadline = time.monotonic() + 10
    while not costs(ctx, job.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a second record, were there one, would land in this time
    [row] = costs(ctx, job.id)
    # settled on close with what was seen: message_start's input, not the message_delta never relayed
    assert (row.input_tokens, row.output_tokens) == (50, 1)


# --- pass-through, routes and tokens -------------------------------------------------------------


def test_upstream_errors_come_back_as_they_were_and_cost_nothing(
    ctx: Context, repo: Path, proxy_url: str, openai_up: FakeOpenAIServer, anthropic_up: FakeAnthropicServer
) -> None:
    job, token = new_job(ctx, repo)
    openai_up.replies.extend(
        [openai.error(500, "upstream broke"), openai.error(429, "slow down", headers={"Retry-After": "7"})]
    )
    anthropic_up.replies.append(anthropic.error(529, "overloaded_error", "Overloaded"))
    url = f"{proxy_url}/t/{token}/openai/v1/chat/completions"

    broke = post(url, {"model": "gpt-4o", "messages": CHAT})
    limited = post(url, {"model": "gpt-4o", "messages": CHAT})
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": CHAT}
    overloaded = post(f"{proxy_url}/t/{token}/anthropic/v1/messages", body, {"x-api-key": "k"})

    assert (broke.status, broke.json()["error"]["message"]) == (500, "upstream broke")
    assert (limited.status, limited.headers["retry-after"]) == (429, "7")
    assert (overloaded.status, overloaded.json()["error"]["type"]) == (529, "overloaded_error")
    assert costs(ctx, job.id) == [] and event_data(ctx, job.id, "cost.recorded") == []


def test_an_unreachable_or_silent_upstream_is_a_502_or_504_in_the_providers_shape(
    ctx: Context, repo: Path, openai_up: FakeOpenAIServer
) -> None:
    job, token = new_job(ctx, repo)
    chat = {"model": "gpt-4o", "messages": CHAT}
    closed = f"http://127.0.0.1:{stack._free_port()}/v1"
    openai_up.replies.append(openai.Reply(body={}, delay=2.0))

    with serving(ctx, ProxySettings(openai_upstream=closed, anthropic_upstream=closed)) as url:
        unreachable = post(f"{url}/t/{token}/openai/v1/chat/completions", chat)
    with serving(ctx, ProxySettings(openai_upstream=openai_up.base_url, timeout=0.3)) as url:
        silent = post(f"{url}/t/{token}/openai/v1/chat/completions", chat)

    assert unreachable.status == 502 and unreachable.json()["error"]["code"] == "upstream_unreachable"
    assert silent.status == 504 and silent.json()["error"]["code"] == "upstream_timeout"
    assert costs(ctx, job.id) == []


def test_models_pass_through_and_unknown_routes_are_not_forwarded(
    ctx: Context, repo: Path, proxy_url: str, openai_up: FakeOpenAIServer
) -> None:
    job, token = new_job(ctx, repo)

    models = post(f"{proxy_url}/t/{token}/openai/v1/models", method="GET")
    unknown = post(f"{proxy_url}/t/{token}/openai/v1/files", {"purpose": "x"})

    assert models.status == 200 and models.json()["data"][0]["id"] == openai.DEFAULT_MODEL
    assert unknown.status == 404 and unknown.json()["error"]["code"] == "unknown_url"
    assert [r["path"] for r in openai_up.requests] == ["/v1/models"]
    assert costs(ctx, job.id) == []


def test_unknown_expired_and_missing_tokens_get_401_in_each_providers_shape(
    ctx: Context, repo: Path, proxy_url: str, openai_up: FakeOpenAIServer, anthropic_up: FakeAnthropicServer
) -> None:
    job, _ = new_job(ctx, repo)
    short = proxy.mint(ctx, job.id, "worker-1", "worker", ttl=1)
    time.sleep(1.2)
    chat = {"model": "gpt-4o", "messages": CHAT}
    message = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": CHAT}

    expired = post(f"{proxy_url}/t/{short}/openai/v1/chat/completions", chat)
    unknown = post(f"{proxy_url}/t/{'x' * 40}/anthropic/v1/messages", message)
    missing = post(f"{proxy_url}/v1/chat/completions", chat)
    wrong_header = post(f"{proxy_url}/v1/messages", message, {proxy.TOKEN_HEADER: "nope"})

    for openai_shaped in (expired, missing):
        assert openai_shaped.status == 401
        assert openai_shaped.json()["error"]["code"] == "invalid_api_key"
        assert openai_shaped.headers["x-should-retry"] == "false"
    for anthropic_shaped in (unknown, wrong_header):
        assert anthropic_shaped.status == 401
        assert anthropic_shaped.json() == {
            "type": "error",
            "error": {"type": "authentication_error", "message": "unknown or expired Godel proxy token"},
        }
    assert openai_up.requests == [] and anthropic_up.requests == []


# --- budgets -------------------------------------------------------------------------------------


def test_the_call_that_spends_the_budget_ends_the_job_and_the_next_is_refused(
    ctx: Context, repo: Path, proxy_url: str, openai_up: FakeOpenAIServer, anthropic_up: FakeAnthropicServer
) -> None:
    job, token = new_job(ctx, repo, budget=0.004)  # the first call costs $0.0045
    openai_up.replies.extend([openai.answer("first", usage=(1000, 200)), openai.answer("never sent")])
    url = f"{proxy_url}/t/{token}/openai/v1/chat/completions"

    first = post(url, {"model": "gpt-4o", "messages": CHAT})
    ended = ctx.store.job(job.id)
    second = post(url, {"model": "gpt-4o", "messages": CHAT})
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": CHAT}
    third = post(f"{proxy_url}/v1/messages", body, {proxy.TOKEN_HEADER: token, "x-api-key": "k"})

    assert first.status == 200
    assert ended.status == "budget_exceeded" and "budget" in (ended.error or "")
    assert second.status == 429 and second.headers["x-should-retry"] == "false"
    error = second.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "budget_exceeded")
    assert "budget_exceeded" in error["message"]
    assert third.status == 402 and third.json()["error"]["type"] == "billing_error"
    assert len(openai_up.requests) == 1 and anthropic_up.requests == []
    assert len(costs(ctx, job.id)) == 1
    assert [e["state"] for e in event_data(ctx, job.id, "budget.warning")] == ["50%", "80%", "100%"]
    assert [e["state"] for e in event_data(ctx, job.id, "job.finished")] == ["budget_exceeded"]


def test_a_budget_spent_elsewhere_refuses_the_call_before_it_is_forwarded(
    ctx: Context, repo: Path, proxy_url: str, openai_up: FakeOpenAIServer
) -> None:
    job, token = new_job(ctx, repo, budget=0.01)
    ctx.store.add_cost(Cost(job_id=job.id, agent="worker-1", role="worker", cost_usd=0.02))  # a step's own record

    refused = post(f"{proxy_url}/t/{token}/openai/v1/chat/completions", {"model": "gpt-4o", "messages": CHAT})

    assert refused.status == 429 and refused.json()["error"]["code"] == "budget_exceeded"
    assert openai_up.requests == []
    assert ctx.store.job(job.id).status == "budget_exceeded"


def test_calls_of_a_cancelled_job_are_refused(
    ctx: Context, repo: Path, proxy_url: str, anthropic_up: FakeAnthropicServer
) -> None:
    job, token = new_job(ctx, repo)
    cancel(ctx, job.id)
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": CHAT}

    refused = post(f"{proxy_url}/t/{token}/anthropic/v1/messages", body, {"x-api-key": "k"})

    assert refused.status == 402 and "cancelled" in refused.json()["error"]["message"]
    assert refused.headers["x-should-retry"] == "false"
    assert anthropic_up.requests == []
