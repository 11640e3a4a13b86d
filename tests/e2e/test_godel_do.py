"""The installed ``godel`` command, end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_repo

pytestmark = pytest.mark.e2e

GODEL = shutil.which("godel", path=str(Path(sys.executable).parent)) or "godel"


@pytest.fixture(scope="module")
def env(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh GODEL_HOME on the embedded default database; `godel do` starts its own workers."""
    home = tmp_path_factory.mktemp("godel-home")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GODEL_")}
    environ.update(GODEL_HOME=str(home), GODEL_REDIS_URL=redis_url, GODEL_CONFIG=str(home / "absent.yaml"))
    yield environ
    subprocess.run([GODEL, "down"], env=environ, capture_output=True, timeout=60)


def godel(
    env: dict[str, str], *args: str, cwd: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GODEL, *args], env=env, cwd=cwd, capture_output=True, text=True, input=stdin, timeout=180)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_do_runs_a_team_and_reports_json(env: dict[str, str], tmp_path: Path, fake_agent: str) -> None:
    repo = make_repo(tmp_path / "repo")
    result = godel(
        env,
        "do",
        "Add JWT authentication with rate limiting",
        "--runtime",
        "command",
        "--agent-cmd",
        fake_agent,
        "--json",
        "--wait",
        cwd=repo,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "succeeded"
    assert report["branch"] == f"godel/{report['job_id']}"
    assert {a["role"] for a in report["agents"]} >= {"coordinator", "worker", "reviewer", "security_reviewer"}
    assert all(a["state"] == "succeeded" for a in report["agents"])
    assert report["cost_usd"] == pytest.approx(0.01 * len(report["agents"]))
    assert "starting the local stack" in result.stderr
    # Branches and commits in the repository; the user's branch is untouched.
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert not (repo / "agent_output").exists()
    tree = git(repo, "ls-tree", "-r", "--name-only", report["branch"])
    assert "agent_output/worker-3.txt" in tree
    assert git(repo, "branch", "--list", f"godel/{report['job_id']}/*") == ""
    # The store has it, events included.
    shown = json.loads(godel(env, "show", report["job_id"], "--events", "--format", "json").stdout)
    types = [e["type"] for e in shown["events"]]
    assert types[0] == "job.submitted" and types[-1] == "job.finished"
    listed = [json.loads(line) for line in godel(env, "jobs", "--format", "jsonl").stdout.splitlines()]
    assert report["job_id"] in {row["job_id"] for row in listed}
    costs = json.loads(godel(env, "costs", "--by", "role", "--job", report["job_id"], "--format", "json").stdout)
    assert {row["role"] for row in costs} >= {"coordinator", "worker", "reviewer"}
    assert sum(row["cost_usd"] for row in costs) == pytest.approx(report["cost_usd"])
    # And rollback removes what the job created.
    assert godel(env, "rollback", report["job_id"]).returncode == 0
    assert git(repo, "branch", "--list", "godel/*") == ""


def test_failed_job_exits_non_zero(env: dict[str, str], git_repo: Path, fake_agent: str) -> None:
    result = godel(
        env,
        "do",
        "fix the typo in the readme",
        "--runtime",
        "command",
        "--agent-cmd",
        f"FAKE_AGENT=fail {fake_agent}",
        "--json",
        "--wait",
        cwd=git_repo,
    )
    assert result.returncode == 10
    assert json.loads(result.stdout)["status"] == "failed"


def test_demo_runtime_with_live_progress(env: dict[str, str], tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "shop",
        {
            "shop.py": "def f():\n    return 1\n",
            "tests/test_shop.py": "from shop import f\n\ndef test_f():\n    assert f() == 1\n",
        },
    )
    result = godel(env, "do", "--runtime", "demo", "--repo", str(repo), "Write tests for the shop module")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "succeeded" in result.stdout
    branch = next(line.split()[1] for line in result.stdout.splitlines() if line.startswith("branch:"))
    review = git(repo, "show", f"{branch}:.godel/{branch.split('/')[1]}/reviewer-1.md")
    assert "pytest" in review and "passed" in review


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["do", "   ", "--runtime", "demo"], 2, "text"),
        (["do", "add a login page", "--runtime", "nope"], 3, "unknown runtime"),
        (["do", "add a login page"], 3, "no agent runtime is configured"),
        (["do", "add a login page", "--runtime", "command"], 3, "agent-cmd"),
        (["do", "add a login page", "--runtime", "demo", "--timeout", "soon"], 2, "timeout"),
        (["do", "deploy to production", "--runtime", "demo"], 2, "--yes"),
        (["parse", ""], 2, "intent"),
    ],
)
def test_bad_input_is_named_and_fails(
    env: dict[str, str], git_repo: Path, args: list[str], code: int, message: str
) -> None:
    result = godel(env, *args, cwd=git_repo)
    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stderr


def test_not_a_git_repository(env: dict[str, str], tmp_path: Path) -> None:
    result = godel(env, "do", "add a login page", "--runtime", "demo", "--repo", str(tmp_path))
    assert result.returncode == 2
    assert "not a git repository" in result.stderr


def test_broken_template_names_file_and_field(env: dict[str, str], git_repo: Path, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "bug-fix.yaml").write_text("name: bug-fix\nintent: fix_bug\ndescription: x\nsubtasks: nope\n")
    result = godel(
        {**env, "GODEL_TEMPLATES_DIR": str(templates)},
        "do",
        "fix the crash on login",
        "--runtime",
        "demo",
        "--dry-run",
        cwd=git_repo,
    )
    assert result.returncode == 2
    assert "bug-fix.yaml" in result.stderr and "subtasks" in result.stderr


def test_unreachable_redis(env: dict[str, str], git_repo: Path) -> None:
    result = godel(
        {**env, "GODEL_REDIS_URL": "redis://127.0.0.1:1/0"},
        "do",
        "fix the crash on login",
        "--runtime",
        "demo",
        cwd=git_repo,
    )
    assert result.returncode == 6
    assert "redis://127.0.0.1:1/0" in result.stderr


def test_parse_reads_stdin_lines(env: dict[str, str]) -> None:
    result = godel(env, "parse", "-", stdin="Add JWT authentication with rate limiting\nfix the login crash\n")
    assert result.returncode == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["intent"] for r in rows] == ["implement_feature", "fix_bug"]
    assert set(rows[0]) == {"intent", "feature", "requirements", "complexity", "confidence", "team", "template"}
