"""--strategy team shapes, and the Reviewer's coverage and security-tool checks on real repos."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from godel import checks, strategy
from godel.intents.schema import Role
from godel.templates import get_template

pytestmark = pytest.mark.unit

C, W, R, S = Role.coordinator, Role.worker, Role.reviewer, Role.security_reviewer
FEATURE = get_template("feature-implementation")


def test_careful_adds_a_reviewer_and_a_worker_per_subtask() -> None:
    team = strategy.apply([C, W, W, W, R, S], "careful", FEATURE, workers_fixed=False)
    assert team.count(W) == len(FEATURE.subtasks)
    assert team.count(R) == 2 and team[0] is C and team[-1] is S


def test_careful_keeps_an_explicit_worker_count() -> None:
    assert strategy.apply([W], "careful", FEATURE, workers_fixed=True) == [C, W, R]


def test_fast_drops_coordinator_and_extra_reviewers_but_not_security() -> None:
    assert strategy.apply([C, W, W, W, W, W, R, R, S], "fast", FEATURE, workers_fixed=False) == [W] * 5 + [R, S]


def test_no_strategy_changes_nothing() -> None:
    assert strategy.apply([C, W, R], None, FEATURE, workers_fixed=False) == [C, W, R]


@pytest.fixture
def tested_repo(tmp_path: Path) -> Path:
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a + b\n\n\ndef unused(x):\n    return x * 2\n")
    (tmp_path / "test_calc.py").write_text("from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n")
    return tmp_path


def test_coverage_check_passes_and_fails_on_the_real_figure(tested_repo: Path) -> None:
    low = checks.coverage(tested_repo, 50)
    assert low.passed, low.output
    high = checks.coverage(tested_repo, 99.5)
    assert not high.passed and "total coverage" in high.output
    assert not (tested_repo / ".godel-coverage").exists()


def test_detect_finds_python_tests(tested_repo: Path) -> None:
    assert checks.detect(tested_repo) == [f"{sys.executable} -m pytest -q -x"]
    results = checks.run(checks.detect(tested_repo), tested_repo)
    assert [r.passed for r in results] == [True]


def test_detect_prefers_make_test(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("test:\n\ttrue\n")
    assert checks.detect(tmp_path) == ["make test"]


def test_security_tools_need_a_local_semgrep_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bandit", "semgrep"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "app.py").write_text("print(1)\n")
    assert [c.split()[0] for c in checks.security_tools(repo)] == ["bandit"]
    (repo / ".semgrep.yml").write_text("rules: []\n")
    assert [c.split()[0] for c in checks.security_tools(repo)] == ["bandit", "semgrep"]


def test_runtime_per_role_unless_overridden() -> None:
    from godel.steps import runtime_for
    from godel.storage.models import Job
    from godel.templates import RoleSettings

    template = FEATURE.model_copy(update={"roles": {R: RoleSettings(runtime="cli:claude", model="opus")}})
    job = Job(runtime="command", options={"runtime_override": False})
    assert runtime_for(job, template, R) == "cli:claude"
    assert runtime_for(job, template, W) == "command"
    job.options = {"runtime_override": True}
    assert runtime_for(job, template, R) == "command"
