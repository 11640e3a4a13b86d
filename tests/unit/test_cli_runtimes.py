"""`godel runtimes`: every runtime listed with whether it can run here and why not."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from godel.cli.runtimes import runtimes
from godel.config import get_settings

pytestmark = pytest.mark.unit

FAKE_BIN = Path(__file__).parent.parent / "fixtures" / "bin"
SHIPPED = {"cli:aider", "cli:claude", "cli:codex", "cli:gemini", "cli:pi"}


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for key in list(os.environ):
        if key.startswith("GODEL_OPENAI_") or key in ("GODEL_AGENT_CMD", "GODEL_RUNTIME"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GODEL_HOME", str(tmp_path))
    monkeypatch.setenv("GODEL_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def listing(*args: str) -> dict[str, dict[str, Any]]:
    get_settings.cache_clear()  # as a new `godel runtimes` process would read the environment afresh
    result = CliRunner().invoke(runtimes, ["--format", "json", *args])
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.output)}


def test_lists_every_runtime_with_reasons(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(home / "no-tools-here"))
    rows = listing()
    assert set(rows) == {"command", "demo", "openai"} | SHIPPED
    assert rows["demo"] == {
        "name": "demo",
        "available": True,
        "reason": None,
        "description": rows["demo"]["description"],
    }
    assert rows["command"]["available"] is False and "GODEL_AGENT_CMD" in rows["command"]["reason"]
    assert rows["openai"]["available"] is False and "GODEL_OPENAI_BASE_URL" in rows["openai"]["reason"]
    assert rows["cli:claude"]["reason"] == "binary 'claude' not on PATH"
    assert rows["cli:aider"]["description"].startswith("Aider")


def test_available_when_configured(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GODEL_OPENAI_BASE_URL", "https://api.openai.com/v1")
    monkeypatch.setenv("GODEL_OPENAI_MODEL", "gpt-4.1")
    rows = listing("--agent-cmd", "my-agent")
    assert all(rows[name]["available"] for name in SHIPPED | {"command", "demo"})
    assert rows["openai"]["reason"].startswith("no API key")
    monkeypatch.setenv("GODEL_OPENAI_API_KEY", "sk-test")
    assert listing()["openai"]["available"] is True


def test_no_model_is_a_reason_and_model_option_fixes_it(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GODEL_OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    assert listing()["openai"]["reason"].startswith("no model")
    assert listing("--model", "llama3.1")["openai"]["available"] is True


def test_user_and_broken_profiles(home: Path) -> None:
    (home / "profiles").mkdir()
    (home / "profiles" / "mine.yaml").write_text("binary: sh\ndescription: mine\n")
    (home / "profiles" / "broken.yaml").write_text("binary: sh\nouput: json\n")
    rows = listing()
    assert rows["cli:mine"]["available"] is True and rows["cli:mine"]["description"] == "mine"
    assert rows["cli:broken"]["available"] is False and "ouput" in rows["cli:broken"]["reason"]


def test_table_and_jsonl(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    table = CliRunner().invoke(runtimes, [])
    assert table.exit_code == 0, table.output
    demo = next(line for line in table.output.splitlines() if " demo " in line)
    assert "yes" in demo and "no base URL" in table.output and "cli:gemini" in table.output
    lines = CliRunner().invoke(runtimes, ["--format", "jsonl"]).output.splitlines()
    assert len(lines) == 3 + len(SHIPPED) and json.loads(lines[0])["name"] == "command"
