"""Find and run a repository's own checks (its test suite) for the Reviewer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

CHECK_TIMEOUT = 15 * 60
"""Seconds one check command may take."""
OUTPUT_TAIL = 3000


class CheckResult(BaseModel):
    command: str
    passed: bool
    exit_code: int | None
    output: str = ""


def detect(repo: Path) -> list[str]:
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
        found.append(
            f"{sys.executable} -m pytest -q -x" if _has_pytest() else f"{sys.executable} -m unittest discover -q"
        )
    return found


def _has_python_tests(repo: Path) -> bool:
    return any(repo.glob("test_*.py")) or any(repo.glob("tests/**/test_*.py")) or any(repo.glob("*/tests/test_*.py"))


def _has_pytest() -> bool:
    return subprocess.run([sys.executable, "-c", "import pytest"], capture_output=True).returncode == 0


def run(commands: list[str], cwd: Path, timeout: float = CHECK_TIMEOUT) -> list[CheckResult]:
    results = []
    for command in commands:
        try:
            proc = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=timeout)
            output = (proc.stdout + proc.stderr)[-OUTPUT_TAIL:]
            results.append(
                CheckResult(command=command, passed=proc.returncode == 0, exit_code=proc.returncode, output=output)
            )
        except subprocess.TimeoutExpired:
            results.append(
                CheckResult(command=command, passed=False, exit_code=None, output=f"timed out after {timeout}s")
            )
    return results
