"""The `openai` runtime against a real local chat-completions server: tool loop, retries, errors, limits."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from godel.config import get_settings
from godel.errors import ConfigError, RuntimeNotConfigured, ValidationError
from godel.runtimes import AgentRequest, get_runtime
from godel.runtimes.cli_profiles import report_from_text
from godel.runtimes.command import OUTPUT_TAIL
from godel.runtimes.openai import OpenAIRuntime, OpenAISettings, Workspace
from tests.fixtures.fake_openai_server import FakeOpenAIServer, Reply, answer, error, tool_calls

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BASE_URL", "API_KEY", "MODEL", "PROVIDER", "REQUEST_TIMEOUT", "MAX_RETRIES", "BACKOFF_SECONDS"):
        monkeypatch.delenv(f"GODEL_OPENAI_{name}", raising=False)


def request(worktree: Path, **kw: Any) -> AgentRequest:
    values: dict[str, Any] = dict(
        job_id="j1",
        task_id="t1",
        agent="worker-1",
        role="worker",
        prompt="add hello.txt",
        worktree=worktree,
        timeout=30,
    )
    values.update(kw)
    return AgentRequest(**values)


def runtime(server: FakeOpenAIServer, options: dict[str, Any] | None = None, **settings: Any) -> OpenAIRuntime:
    values: dict[str, Any] = dict(base_url=server.base_url, api_key="sk-test", model="gpt-4o", backoff_seconds=0.01)
    values.update(settings)
    return OpenAIRuntime(options or {}, settings=OpenAISettings(**values))


def tool_results(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]


def test_tool_loop_writes_files_and_records_usage_and_cost(tmp_path: Path) -> None:
    final = 'Added hello.txt.\n```json\n{"approved": true, "notes": "looks fine"}\n```'
    script = [
        tool_calls(("write_file", {"path": "src/hello.txt", "content": "hello\n"}), usage=(100, 20)),
        tool_calls(
            ("read_file", {"path": "src/hello.txt"}),
            ("list_files", {}),
            ("run_command", {"command": "cat src/hello.txt && echo $GODEL_ROLE"}),
            usage=(200, 30),
        ),
        answer(final, usage=(300, 50)),
    ]
    with FakeOpenAIServer(script) as server:
        result = runtime(server).run(request(tmp_path))
    assert result.ok, result.summary
    assert (tmp_path / "src" / "hello.txt").read_text() == "hello\n"
    assert result.summary == final and result.data == {"approved": True, "notes": "looks fine"}
    assert (result.usage.input_tokens, result.usage.output_tokens) == (600, 100)
    assert result.model == "gpt-4o-2024-08-06"  # the server's exact name, priced as gpt-4o
    assert result.cost_usd == pytest.approx((600 * 2.50 + 100 * 10.00) / 1_000_000)
    first, second, third = (r["body"] for r in server.requests)
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-test"
    assert first["model"] == "gpt-4o" and {t["function"]["name"] for t in first["tools"]} == {
        "read_file",
        "write_file",
        "list_files",
        "run_command",
    }
    assert first["messages"][-1] == {"role": "user", "content": "add hello.txt"}
    assert tool_results(second) == ["wrote 6 bytes to src/hello.txt"]
    read, listing, command = tool_results(third)[1:]  # the conversation so far is resent
    assert read == "hello\n" and listing == "src/hello.txt" and command == "exit code 0\nhello\nworker\n"


def test_rate_limit_honours_retry_after(tmp_path: Path) -> None:
    script = [error(429, "slow down", {"Retry-After": "1"}), answer("done")]
    with FakeOpenAIServer(script) as server:
        started = time.monotonic()
        result = runtime(server, backoff_seconds=0).run(request(tmp_path))
        waited = time.monotonic() - started
    assert result.ok and result.summary == "done" and len(server.requests) == 2
    assert waited >= 0.9


def test_server_error_is_retried(tmp_path: Path) -> None:
    with FakeOpenAIServer([error(500, "upstream exploded"), error(503, "busy"), answer("done")]) as server:
        result = runtime(server).run(request(tmp_path))
    assert result.ok and len(server.requests) == 3


def test_retries_give_up_with_the_reason(tmp_path: Path) -> None:
    with FakeOpenAIServer([error(429, "quota", {"Retry-After": "0"})] * 3) as server:
        result = runtime(server, max_retries=2).run(request(tmp_path))
    assert not result.ok and "rate limited (HTTP 429): quota" in result.summary
    assert "gave up after 3 attempts" in result.summary and len(server.requests) == 3


def test_rejected_key_fails_at_once_naming_the_key(tmp_path: Path) -> None:
    with FakeOpenAIServer([error(401, "Incorrect API key provided", kind="invalid_request_error")]) as server:
        result = runtime(server).run(request(tmp_path))
    assert not result.ok and len(server.requests) == 1
    assert "HTTP 401" in result.summary and "GODEL_OPENAI_API_KEY" in result.summary
    assert "Incorrect API key provided" in result.summary


def test_other_client_errors_are_final(tmp_path: Path) -> None:
    with FakeOpenAIServer([error(404, "The model `gpt-9` does not exist")]) as server:
        result = runtime(server, model="gpt-9").run(request(tmp_path))
    assert not result.ok and "HTTP 404" in result.summary and "gpt-9" in result.summary


def test_slow_server_times_out(tmp_path: Path) -> None:
    with FakeOpenAIServer([Reply(body={}, delay=3)]) as server:
        started = time.monotonic()
        result = runtime(server, request_timeout=0.3).run(request(tmp_path))
    assert not result.ok and "timed out" in result.summary
    assert time.monotonic() - started < 2.5  # the runtime gave up; it did not wait for the reply


def test_unreachable_server_is_reported(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        url = server.base_url
    result = OpenAIRuntime({}, OpenAISettings(base_url=url, model="gpt-4o")).run(request(tmp_path))
    assert not result.ok and result.summary.startswith("cannot reach")


def test_tools_stay_inside_the_worktree(tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / ".git").write_text("gitdir: /elsewhere\n")
    (worktree / "link").symlink_to(tmp_path)
    script = [
        tool_calls(
            ("write_file", {"path": "../escape.txt", "content": "x"}),
            ("write_file", {"path": str(tmp_path / "abs.txt"), "content": "x"}),
            ("write_file", {"path": "link/through-symlink.txt", "content": "x"}),
            ("write_file", {"path": ".git/hooks/pre-commit", "content": "x"}),
            ("read_file", {"path": "/etc/passwd"}),
            ("list_files", {"path": ".."}),
            ("run_command", {"command": ""}),
            ("delete_everything", {}),
        ),
        answer("VERDICT: changes_requested"),
    ]
    with FakeOpenAIServer(script) as server:
        result = runtime(server).run(request(worktree))
    assert result.ok and result.data == {"approved": False}
    outputs = tool_results(server.requests[1]["body"])
    assert all(o.startswith("error: ") for o in outputs), outputs
    assert "outside the worktree" in outputs[0] and "absolute" in outputs[1] and ".git" in outputs[3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wt"]
    assert (worktree / ".git").read_text() == "gitdir: /elsewhere\n"


def test_run_command_has_a_timeout_and_an_output_cap(tmp_path: Path) -> None:
    tools = Workspace(request(tmp_path))
    assert tools.call("run_command", {"command": "echo out; echo err >&2; exit 3"}) == "exit code 3\nout\n\nerr\n"
    slow = tools.call("run_command", json.dumps({"command": "sleep 10", "timeout_seconds": 0.3}))
    assert slow.startswith("stopped: timed out after 0.3s")
    loud = tools.call("run_command", {"command": "python3 -c \"print('x' * 100000)\""})
    assert loud.startswith("exit code 0") and len(loud) <= OUTPUT_TAIL + 20
    assert tools.call("run_command", "{not json") == "error: arguments are not valid JSON"


def test_step_limit(tmp_path: Path) -> None:
    script = [tool_calls(("list_files", {})), tool_calls(("list_files", {}))]
    with FakeOpenAIServer(script) as server:
        result = runtime(server, {"max_steps": 2}).run(request(tmp_path))
    assert not result.ok and "step limit reached: 2" in result.summary and len(server.requests) == 2
    assert result.usage.input_tokens == 200  # usage so far is still recorded


def test_stop_is_respected_between_steps(tmp_path: Path) -> None:
    calls: list[str] = []

    def should_stop() -> str | None:
        return "cancelled" if calls else None

    script = [tool_calls(("write_file", {"path": "a.txt", "content": "a"})), answer("never reached")]
    with FakeOpenAIServer(script) as server:
        result = runtime(server).run(request(tmp_path, should_stop=should_stop, progress=calls.append))
    assert not result.ok and result.data["stopped"] == "cancelled" and len(server.requests) == 1
    assert calls == ["step 1: write_file"] and (tmp_path / "a.txt").exists()


def test_unknown_model_costs_zero_and_says_so(tmp_path: Path) -> None:
    with FakeOpenAIServer([answer("hi", model="my-finetune")]) as server:
        result = runtime(server, model="my-finetune").run(request(tmp_path))
    assert result.ok and result.cost_usd == 0.0 and result.data["cost_unknown"] is True


def test_free_provider_prices_at_zero(tmp_path: Path) -> None:
    with FakeOpenAIServer([answer("hi", model="qwen2.5-coder:32b")]) as server:
        result = runtime(server, model="qwen2.5-coder:32b", provider="ollama").run(request(tmp_path))
    assert result.cost_usd == 0.0 and "cost_unknown" not in result.data and result.provider == "ollama"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with FakeOpenAIServer([answer("from env")]) as server:
        monkeypatch.setenv("GODEL_OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("GODEL_OPENAI_API_KEY", "sk-env")
        monkeypatch.setenv("GODEL_OPENAI_MODEL", "gpt-4.1-mini")
        result = get_runtime("openai", {"model": "gpt-4.1"}).run(request(tmp_path))
    assert result.summary == "from env"
    assert server.requests[0]["body"]["model"] == "gpt-4.1"  # the job's option wins over the default
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-env"
    monkeypatch.setenv("GODEL_OPENAI_MAX_RETRIES", "many")
    get_settings.cache_clear()  # settings are read once per process; this is a new one
    with pytest.raises(ConfigError) as info:
        get_runtime("openai", {})
    assert "GODEL_OPENAI_MAX_RETRIES" in str(info.value)


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({}, "no base URL"),
        ({"base_url": "https://api.openai.com/v1"}, "no model"),
        ({"base_url": "https://api.openai.com/v1", "model": "gpt-4o"}, "no API key"),
        ({"base_url": "http://127.0.0.1:11434/v1", "model": "llama3"}, None),
    ],
)
def test_unavailable_says_what_is_missing(settings: dict[str, Any], reason: str | None) -> None:
    found = OpenAIRuntime({}, OpenAISettings(**settings)).unavailable()
    assert found == reason if reason is None else found is not None and found.startswith(reason)


def test_get_runtime_refuses_an_unconfigured_openai() -> None:
    with pytest.raises(RuntimeNotConfigured) as info:
        get_runtime("openai", {})
    assert "GODEL_OPENAI_BASE_URL" in str(info.value)


@pytest.mark.parametrize("steps", ["lots", 0])
def test_bad_max_steps_names_the_option(steps: object) -> None:
    with pytest.raises(ValidationError) as info:
        OpenAIRuntime({"max_steps": steps}, OpenAISettings())
    assert info.value.field == "max_steps"


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ('Done.\n{"approved": false, "notes": "add tests"}', {"approved": False, "notes": "add tests"}),
        (
            'Here: {"approved": true, "notes": {"style": "ok"}} and {"x": 1}',
            {"approved": True, "notes": {"style": "ok"}},
        ),
        ("Looks good.\nVERDICT: approve", {"approved": True}),
        ('{"approved": "false", "notes": "no"}', {"approved": False, "notes": "no"}),
        ("**VERDICT: changes_requested**", {"approved": False}),
        (
            '[{"title": "API", "description": "routes", "notes": "n"}]',
            {"subtasks": [{"title": "API", "description": "routes", "notes": "n"}]},
        ),
        ("use dict[str, int] and {braces} freely", {}),
        ("", {}),
    ],
)
def test_report_from_text(text: str, data: dict[str, Any]) -> None:
    assert report_from_text(text) == data
