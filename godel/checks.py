"""Find and run a repository's own checks (its test suite) for the Reviewer."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from godel.runtimes.base import untrusted_environ

CHECK_TIMEOUT = 15 * 60
"""Seconds one check command may take."""
OUTPUT_TAIL = 3000


class CheckResult(BaseModel):
    command: str
    passed: bool
    exit_code: int | None
    output: str = ""


def _python(env: dict[str, str] | None) -> str:
    """The job's venv Python when it has one (its dependencies are there), else Godel's."""
    venv = (env or {}).get("VIRTUAL_ENV")
    return f"{venv}/bin/python" if venv and Path(venv, "bin", "python").exists() else sys.executable


def detect(repo: Path, env: dict[str, str] | None = None) -> list[str]:
    """Commands that run this repository's tests, by the files it has."""
    found: list[str] = []
    makefile = repo / "Makefile"
    if makefile.is_file() and any(
        line.startswith("test:") for line in makefile.read_text(errors="ignore").splitlines()
    ):
        return ["make test"]
    if (repo / "package.json").is_file():
        try:
            scripts = json.loads((repo / "package.json").read_text()).get("scripts", {})
        except (json.JSONDecodeError, AttributeError):
            scripts = {}
        if "test" in scripts and shutil.which("npm"):
            found.append("npm test")
    if (repo / "go.mod").is_file() and shutil.which("go"):
        found.append("go test ./...")
    if (repo / "Cargo.toml").is_file() and shutil.which("cargo"):
        found.append("cargo test")
    if _has_python_tests(repo):
        python = _python(env)
        found.append(f"{python} -m pytest -q -x" if _has_pytest(python) else f"{python} -m unittest discover -q")
    return found


def _has_python_tests(repo: Path) -> bool:
    return any(repo.glob("test_*.py")) or any(repo.glob("tests/**/test_*.py")) or any(repo.glob("*/tests/test_*.py"))


@functools.lru_cache(maxsize=16)
def _has_pytest(python: str) -> bool:
    return subprocess.run([python, "-c", "import pytest"], capture_output=True).returncode == 0


def security_tools(repo: Path) -> list[str]:
    """Static security scanners that are installed and apply: bandit for Python, semgrep with a local config.

    semgrep only runs with the repository's own rules file: its registry rules
    need the network, and a review must not depend on it.
    """
    found = []
    if shutil.which("bandit") and any(repo.rglob("*.py")):
        found.append("bandit -q -r . -ll -x ./.git,./node_modules,./.venv")
    config = next((p for p in (repo / ".semgrep.yml", repo / ".semgrep.yaml", repo / ".semgrep") if p.exists()), None)
    if shutil.which("semgrep") and config:
        found.append(f"semgrep --error --quiet --config {config.name} .")
    return found


def coverage(
    repo: Path, minimum: float, timeout: float = CHECK_TIMEOUT, env: dict[str, str] | None = None
) -> CheckResult:
    """Run the Python tests under coverage and compare the total with ``minimum`` percent."""
    label = f"coverage >= {minimum:g}%"
    data = repo / ".godel-coverage"
    env_cmd = [_python(env), "-m", "coverage"]
    full_env = {**untrusted_environ(), **(env or {})}
    try:
        subprocess.run(
            [*env_cmd, "run", f"--data-file={data}", "-m", "pytest", "-q"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
        )
        report = subprocess.run(
            [*env_cmd, "report", f"--data-file={data}", "--format=total"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=60,
            env=full_env,
        )
    except subprocess.TimeoutExpired:
        return CheckResult(command=label, passed=False, exit_code=None, output=f"timed out after {timeout}s")
    finally:
        data.unlink(missing_ok=True)
    try:
        total = float(report.stdout.strip())
    except ValueError:
        return CheckResult(
            command=label,
            passed=False,
            exit_code=report.returncode,
            output=f"no coverage figure: {(report.stdout + report.stderr)[-OUTPUT_TAIL:]}",
        )
    return CheckResult(command=label, passed=total >= minimum, exit_code=0, output=f"total coverage {total:g}%")


def run(
    commands: list[str], cwd: Path, timeout: float = CHECK_TIMEOUT, env: dict[str, str] | None = None
) -> list[CheckResult]:
    results = []
    for command in commands:
        try:
            proc = subprocess.run(
                command,
                shell=True,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**untrusted_environ(), **(env or {})},
            )
            output = (proc.stdout + proc.stderr)[-OUTPUT_TAIL:]
            results.append(
                CheckResult(command=command, passed=proc.returncode == 0, exit_code=proc.returncode, output=output)
            )
        except subprocess.TimeoutExpired:
            results.append(
                CheckResult(command=command, passed=False, exit_code=None, output=f"timed out after {timeout}s")
            )
    return results
