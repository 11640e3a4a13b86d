"""`cli:<name>` runtimes: each shipped profile against a fake of its tool, user profiles, broken ones."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from godel.config import get_settings
from godel.errors import ConfigError, RuntimeNotConfigured
from godel.runtimes import AgentRequest, describe_runtimes, get_runtime
from godel.runtimes.cli_profiles import CliRuntime, load_profiles, parse_number, resolve

pytestmark = pytest.mark.unit

FAKE_BIN = Path(__file__).parent.parent / "fixtures" / "bin"
PROMPT = "add a greeting file please"


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A fresh GODEL_HOME and the fake tools first on PATH."""
    path = tmp_path / "home"
    (path / "profiles").mkdir(parents=True)
    monkeypatch.setenv("GODEL_HOME", str(path))
    monkeypatch.setenv("GODEL_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    for name in ("FAKE_CLI_MODE", "FAKE_CLI_SLEEP", "FAKE_CLI_REPLY"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    path = tmp_path / "wt"
    path.mkdir()
    return path


def request(worktree: Path, **kw: Any) -> AgentRequest:
    values: dict[str, Any] = dict(
        job_id="j1", task_id="t1", agent="worker-1", role="worker", prompt=PROMPT, worktree=worktree, timeout=30
    )
    values.update(kw)
    return AgentRequest(**values)


# tool, options, summary, input tokens, output tokens, cost, model, provider
CASES = [
    # Claude Code reports its own cost; cached prompt tokens count as input
    (
        "claude",
        {},
        "Created claude_output.txt with the prompt.",
        5 + 100 + 1000,
        50,
        0.0421,
        "claude-sonnet-4-5-20250929",
        "anthropic",
    ),
    # Codex reports no cost: priced from the table as openai/gpt-5
    (
        "codex",
        {"model": "gpt-5"},
        "Wrote codex_output.txt.",
        24763,
        122,
        (24763 * 1.25 + 122 * 10.0) / 1e6,
        "gpt-5",
        "openai",
    ),
    # Gemini keys its stats by model; thinking tokens are output
    (
        "gemini",
        {"model": "gemini-2.5-flash"},
        "I wrote gemini_output.txt.",
        12000,
        1000,
        (12000 * 0.30 + 1000 * 2.50) / 1e6,
        "gemini-2.5-flash",
        "google",
    ),
    # aider prints text; tokens of both calls add up, "2.3k" is 2300, the session cost is the last one
    ("aider", {}, "Fixed the lint error in aider_output.txt", 2300 + 1200, 215 + 85, 0.0117, "gpt-4o", None),
    # pi's cost and usage arrive per turn and are summed
    ("pi", {}, "Done: pi_output.txt holds the prompt.", 40 + 60 + 2000, 50, 0.005, "claude-sonnet-4-5", "anthropic"),
]


@pytest.mark.parametrize(("tool", "options", "summary", "tokens_in", "tokens_out", "cost", "model", "provider"), CASES)
def test_shipped_profile_runs_its_tool(
    home: Path,
    worktree: Path,
    tool: str,
    options: dict[str, Any],
    summary: str,
    tokens_in: int,
    tokens_out: int,
    cost: float,
    model: str,
    provider: str | None,
) -> None:
    runtime = get_runtime(f"cli:{tool}", options)
    result = runtime.run(request(worktree))
    assert result.ok, result.summary + result.output
    assert result.summary == summary and result.exit_code == 0
    assert (result.usage.input_tokens, result.usage.output_tokens) == (tokens_in, tokens_out)
    assert result.cost_usd == pytest.approx(cost)
    assert (result.model, result.provider) == (model, provider)
    assert (worktree / f"{tool}_output.txt").read_text() == PROMPT  # the prompt arrived whole, stdin or argument
    assert "cost_unknown" not in result.data


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        ("claude", "invalid x-api-key"),
        ("codex", "401 Unauthorized"),
        ("gemini", "API key not valid"),
        ("aider", "litellm.AuthenticationError"),  # aider exits 0 on API errors; the output tells
        ("pi", "401 invalid x-api-key"),
    ],
)
def test_tool_errors_fail_the_agent(
    home: Path, worktree: Path, monkeypatch: pytest.MonkeyPatch, tool: str, message: str
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "error")
    result = get_runtime(f"cli:{tool}", {}).run(request(worktree))
    assert not result.ok and message in result.summary and message in result.data["error"]
    assert not (worktree / f"{tool}_output.txt").exists()


def test_model_option_reaches_the_tool_and_the_reviewer_verdict_the_data(
    home: Path, worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_REPLY", 'Missing tests.\n{"approved": false, "notes": "add tests"}')
    result = get_runtime("cli:claude", {"model": "claude-opus-4-1"}).run(request(worktree, role="reviewer"))
    assert result.model == "claude-opus-4-1" and result.data == {"approved": False, "notes": "add tests"}


def test_codex_unpriced_without_a_model_and_says_so(home: Path, worktree: Path) -> None:
    result = get_runtime("cli:codex", {}).run(request(worktree))
    assert result.ok and result.cost_usd == 0.0 and result.data["cost_unknown"] is True


def test_timeout_stops_the_tool(home: Path, worktree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CLI_SLEEP", "30")
    result = get_runtime("cli:claude", {}).run(request(worktree, timeout=0.5))
    assert not result.ok and result.data["stopped"] == "timed out" and result.summary == "stopped: timed out"


def test_missing_binary_is_unavailable(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RuntimeNotConfigured) as info:
        get_runtime("cli:claude", {})
    assert "binary 'claude' not on PATH" in str(info.value)


def test_unknown_profile_lists_the_known_ones(home: Path) -> None:
    with pytest.raises(RuntimeNotConfigured) as info:
        get_runtime("cli:nope", {})
    assert "cli:aider" in str(info.value) and "cli:pi" in str(info.value)
    with pytest.raises(RuntimeNotConfigured) as info:
        get_runtime("nope", {})
    assert "openai" in str(info.value) and "cli:claude" in str(info.value)


TEXT_TOOL = """\
import sys
prompt = sys.stdin.read()
open("mine.txt", "w").write(prompt + " " + sys.argv[1])
print("thinking...")
print("used 1.5k tokens in, 20 out, $0.25")
print("all done")
"""


def test_user_profile_runs_a_new_tool(home: Path, worktree: Path, tmp_path: Path) -> None:
    (tmp_path / "mytool.py").write_text(TEXT_TOOL)
    (home / "profiles" / "mine.yaml").write_text(f"""
description: my own agent
binary: {sys.executable}
args: ["{tmp_path / "mytool.py"}", "{{role}}-{{agent}}"]
prompt_via: stdin
env: {{MY_AGENT_HOME: "$GODEL_HOME"}}
output: text
extract:
  input_tokens: {{regex: 'used ([\\d.]+k?) tokens in'}}
  output_tokens: {{regex: '(\\d+) out'}}
  cost_usd: {{regex: '\\$([\\d.]+)'}}
""")
    result = get_runtime("cli:mine", {}).run(request(worktree))
    assert result.ok and result.summary == "all done"
    assert (result.usage.input_tokens, result.usage.output_tokens, result.cost_usd) == (1500, 20, 0.25)
    assert (worktree / "mine.txt").read_text() == f"{PROMPT} worker-worker-1"


def test_user_profile_overrides_a_shipped_one(home: Path) -> None:
    (home / "profiles" / "claude.yaml").write_text(
        "binary: claude\nargs: [-p, --output-format, json, --model, opus]\noutput: json\n"
        "extract: {summary: result}\ndescription: my claude\n"
    )
    profile = load_profiles()["claude"]
    assert profile.description == "my claude" and "--permission-mode" not in profile.args
    assert {"aider", "codex", "gemini", "pi"} <= set(load_profiles())


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("binary: x\nargs: [--msg, '{prompt}']\nprompt_via: arg\nfrobnicate: true\n", "frobnicate"),
        ("binary: x\nprompt_via: carrier-pigeon\n", "prompt_via"),
        ("binary: x\nprompt_via: arg\n", "prompt_via"),  # no {prompt} in args
        ("binary: x\nargs: ['{prompt}']\n", "prompt_via"),  # stdin is the default
        ("binary: x\nargs: ['{promt}']\n", "args"),
        ("binary: x\nargs: ['--m={model_args}']\n", "args"),
        ("binary: x\noutput: json\nextract: {summary: {regex: 'x'}}\n", "extract"),
        ("binary: x\nmodel_arg: [--model]\n", "model_arg"),
        ("binary: x\noutput: text\nextract: {cost_usd: {regex: '(unclosed'}}\n", "extract.cost_usd.regex"),
        ("binary: x\nextract: {summary: {pick: middle, regex: x}}\n", "extract.summary.pick"),
        ("args: [a]\n", "binary"),
        ("binary: [not: valid: yaml\n", "profile"),
    ],
)
def test_broken_profile_names_file_and_field(home: Path, text: str, field: str) -> None:
    path = home / "profiles" / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        get_runtime("cli:broken", {})
    assert str(path) in str(info.value) and info.value.field == field
    assert get_runtime("cli:claude", {}).name == "cli:claude"  # the other profiles still work
    rows = {row["name"]: row for row in describe_runtimes({})}
    assert rows["cli:broken"]["available"] is False and str(path) in rows["cli:broken"]["reason"]


def test_argv_fills_placeholders_once(home: Path, worktree: Path) -> None:
    runtime = get_runtime("cli:codex", {"model": "gpt-5"})
    assert isinstance(runtime, CliRuntime)
    assert runtime.argv(request(worktree)) == [
        "exec",
        "--json",
        "--full-auto",
        "--skip-git-repo-check",
        "--model",
        "gpt-5",
        "-",
    ]
    gemini = get_runtime("cli:gemini", {})
    assert isinstance(gemini, CliRuntime)
    argv = gemini.argv(request(worktree, prompt="keep {model} and {role} as typed"))
    assert argv[-2:] == ["-p", "keep {model} and {role} as typed"]  # no model: no --model


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("a.b", [1]),
        ("list.*.t", ["x", "y"]),
        ("list.-1.t", ["y"]),
        ("m.*.n", [2, 3]),
        ("m.@keys", ["k1", "k2"]),
        ("a.missing", []),
    ],
)
def test_resolve(path: str, found: list[Any]) -> None:
    doc = {"a": {"b": 1}, "list": [{"t": "x"}, {"t": "y"}], "m": {"k1": {"n": 2}, "k2": {"n": 3}}}
    assert resolve(doc, path) == found


@pytest.mark.parametrize(
    ("text", "number"), [(12, 12.0), ("1,234", 1234.0), ("2.3k", 2300.0), ("1.2M", 1.2e6), ("$0.5", 0.5), (True, None)]
)
def test_parse_number(text: object, number: float | None) -> None:
    assert parse_number(text) == number
