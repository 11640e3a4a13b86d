"""The `command` runtime through real subprocesses: stdin, environment, final JSON, stops."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from godel.runtimes import AgentRequest, get_runtime
from godel.runtimes.command import final_json

pytestmark = pytest.mark.unit


def request(tmp_path: Path, **kw: object) -> AgentRequest:
    defaults: dict[str, object] = dict(
        job_id="j1", task_id="t1", agent="worker-1", role="worker", prompt="do the thing", worktree=tmp_path, timeout=10
    )
    defaults.update(kw)
    return AgentRequest(**defaults)  # type: ignore[arg-type]


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "agent.py"
    path.write_text(body)
    return f"{sys.executable} {path}"


def test_prompt_env_and_report(tmp_path: Path) -> None:
    cmd = script(
        tmp_path,
        (
            "import json, os, sys\n"
            "prompt = sys.stdin.read()\n"
            "open('out.txt', 'w').write(prompt + os.environ['GODEL_ROLE'] + os.environ['GODEL_TASK_ID'])\n"
            "print('working...')\n"
            "print(json.dumps({'summary': 'done', 'usage': {'input_tokens': 3, 'output_tokens': 4}, 'cost_usd': 0.5,"
            " 'approved': False}))\n"
        ),
    )
    result = get_runtime("command", {"agent_cmd": cmd}).run(request(tmp_path))
    assert result.ok and result.summary == "done" and result.cost_usd == 0.5
    assert result.usage.input_tokens == 3 and result.data == {"approved": False}
    assert (tmp_path / "out.txt").read_text() == "do the thingworkert1"


def test_non_zero_exit_fails_with_stderr(tmp_path: Path) -> None:
    cmd = script(tmp_path, "import sys\nprint('boom', file=sys.stderr)\nsys.exit(4)\n")
    result = get_runtime("command", {"agent_cmd": cmd}).run(request(tmp_path))
    assert not result.ok and result.exit_code == 4 and "boom" in result.summary


def test_bad_report_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    cmd = script(tmp_path, "print('{\"cost_usd\": -1}')\n")
    result = get_runtime("command", {"agent_cmd": cmd}).run(request(tmp_path))
    assert not result.ok and "bad final JSON" in result.summary


def test_timeout_and_stop_kill_the_process(tmp_path: Path) -> None:
    cmd = script(tmp_path, "import time\ntime.sleep(30)\n")
    runtime = get_runtime("command", {"agent_cmd": cmd})
    assert runtime.run(request(tmp_path, timeout=0.5)).data["stopped"] == "timed out"
    stopped = runtime.run(request(tmp_path, should_stop=lambda: "cancelled"))
    assert not stopped.ok and stopped.data["stopped"] == "cancelled"


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ('noise\n{"summary": "a"}\n', {"summary": "a"}),
        ('{"summary": "a"}\nmore noise\n', {"summary": "a"}),
        ("[1, 2]\n", None),
        ("", None),
    ],
)
def test_final_json(stdout: str, expected: object) -> None:
    assert final_json(stdout) == expected


def test_agents_do_not_see_godels_own_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GODEL_DATABASE_URL", "postgresql+psycopg://godel:secret@db/godel")
    monkeypatch.setenv("GODEL_PROXY_OPENAI_API_KEY", "sk-real")
    monkeypatch.setenv("SOME_TOOL_KEY", "theirs")
    cmd = script(tmp_path, (
        "import json, os\n"
        "print(json.dumps({'summary': 'env', 'seen': sorted(k for k in os.environ if k.startswith('GODEL_')),"
        " 'tool': os.environ.get('SOME_TOOL_KEY')}))\n"
    ))
    result = get_runtime("command", {"agent_cmd": cmd}).run(request(tmp_path))
    assert result.data["seen"] == ["GODEL_AGENT", "GODEL_JOB_ID", "GODEL_ROLE", "GODEL_TASK_ID", "GODEL_WORKTREE"]
    assert result.data["tool"] == "theirs"
