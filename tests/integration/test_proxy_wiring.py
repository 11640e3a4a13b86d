"""The metering proxy wired in: ``godel serve`` with the proxy, a real worker, the ``openai`` and
``cli:claude`` runtimes sent through it, each call metered once and the tools' own cost skipped."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from godel.context import build_context
from tests.fixtures import fake_anthropic_server as anthropic
from tests.fixtures import fake_openai_server as openai
from tests.fixtures.fake_anthropic_server import FakeAnthropicServer
from tests.fixtures.fake_openai_server import FakeOpenAIServer
from tests.integration.test_api_serve import ApiServer, running_server

pytestmark = pytest.mark.integration

# A stand-in for Claude Code: one call to ANTHROPIC_BASE_URL, then claude -p's JSON with a cost of its own.
CLAUDE = textwrap.dedent(
    """\
    import json, os, sys, urllib.request
    sys.stdin.read()
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": os.environ.get("ANTHROPIC_API_KEY", ""), "content-type": "application/json"}
    url = os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages"
    answer = json.load(urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode(), headers)))
    usage = {k: answer["usage"][k] for k in ("input_tokens", "output_tokens")}
    print(json.dumps({"result": "done", "is_error": False, "total_cost_usd": 9.99, "usage": usage,
                      "modelUsage": {answer["model"]: {}}}))
    """
)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[FakeOpenAIServer, FakeAnthropicServer]]:
    up_openai = FakeOpenAIServer([openai.answer("done", usage=(1000, 100)) for _ in range(10)])
    up_anthropic = FakeAnthropicServer([anthropic.message("done", usage=(500, 50)) for _ in range(10)])
    with up_openai, up_anthropic:
        yield up_openai, up_anthropic


@pytest.fixture(scope="module")
def server(
    godel_env: dict[str, str],
    upstreams: tuple[FakeOpenAIServer, FakeAnthropicServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiServer]:
    """The API with the proxy; the worker started after it finds GODEL_PROXY_URL in os.environ."""
    up_openai, up_anthropic = upstreams
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "claude").write_text(f"#!{sys.executable}\n" + CLAUDE)
    (bin_dir / "claude").chmod(0o755)
    saved = dict(os.environ)
    os.environ.update(
        GODEL_PROXY_OPENAI_API_KEY="sk-proxy",
        GODEL_PROXY_ANTHROPIC_API_KEY="sk-ant-proxy",
        GODEL_OPENAI_MODEL="gpt-4o",
        GODEL_OPENAI_BASE_URL=up_openai.base_url,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
    )
    env = {**godel_env, **{k: v for k, v in os.environ.items() if k.startswith(("GODEL_PROXY_", "GODEL_OPENAI_"))}}
    upstream = {
        "GODEL_PROXY_OPENAI_UPSTREAM": up_openai.base_url,
        "GODEL_PROXY_ANTHROPIC_UPSTREAM": up_anthropic.base_url,
    }
    try:
        with running_server(env, **upstream) as running:
            os.environ["GODEL_PROXY_URL"] = running.url + "/proxy"
            yield running
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize("runtime", ["openai", "cli:claude"])
def test_a_job_through_the_proxy_is_metered_once_per_call(
    server: ApiServer,
    celery_worker: object,
    git_repo: Path,
    upstreams: tuple[FakeOpenAIServer, FakeAnthropicServer],
    runtime: str,
) -> None:
    upstream = upstreams[0] if runtime == "openai" else upstreams[1]
    seen = len(upstream.requests)
    body = {"text": "fix the typo in the README", "repo": str(git_repo), "runtime": runtime, "timeout": "5m"}

    created = server.post("/api/v1/jobs", json=body)
    assert created.status_code == 201, created.text
    done = server.wait_job(created.json()["job_id"])

    assert done["status"] == "succeeded", done
    ctx = build_context()
    costs = ctx.store.costs(done["job_id"])
    calls = upstream.requests[seen:]
    assert calls and len(costs) == len(calls)  # one record per call, none from the runtime's own report
    key = "authorization" if runtime == "openai" else "x-api-key"
    assert {c["headers"][key] for c in calls} == {"Bearer sk-proxy" if runtime == "openai" else "sk-ant-proxy"}
    assert sum(c.cost_usd for c in costs) < 1  # the stand-in's self-reported $9.99 was skipped
    events = [e.data for e in ctx.store.events(done["job_id"]) if e.type == "cost.recorded"]
    assert {e["data"]["source"] for e in events} == {"proxy"}
