"""Manifest and migration detection, requirement parsing and check preparation, on real git repositories."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from godel import dependencies as deps
from godel.errors import RepositoryError, ValidationError
from godel.git import git
from tests.conftest import make_repo

pytestmark = pytest.mark.unit


def commit(repo: Path, files: dict[str, str], message: str = "change") -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def write(repo: Path, name: str, text: str = "") -> None:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)


def tool(bin_dir: Path, name: str, body: str) -> Path:
    """A stand-in executable on a private PATH that records how it was called."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            "README.md": "# r\n",
            "requirements.txt": "",
            "package.json": "{}\n",
            "package-lock.json": "{}\n",
            "app/migrations/__init__.py": "",
            "app/migrations/0001_initial.py": "",
            "src/app.py": "",
        },
    )


def test_manifest_and_migration_kinds() -> None:
    assert deps.manifest_kind("requirements-dev.txt") == "python"
    assert deps.manifest_kind("requirements/test.txt") == "python"
    assert deps.manifest_kind("services/api/poetry.lock") == "python"
    assert deps.manifest_kind("web/pnpm-lock.yaml") == "node"
    assert deps.manifest_kind("go.sum") == "go"
    assert deps.manifest_kind("crates/x/Cargo.toml") == "rust"
    assert deps.manifest_kind("Gemfile.lock") == "ruby"
    assert deps.manifest_kind("node_modules/left-pad/package.json") is None
    assert deps.manifest_kind("notes.txt") is None
    assert deps.migration_kind("alembic/versions/1a2b_add.py") == "alembic"
    assert deps.migration_kind("godel/storage/migrations/versions/0002_x.py") == "alembic"
    assert deps.migration_kind("shop/migrations/0002_order.py") == "django"
    assert deps.migration_kind("shop/migrations/__init__.py") is None
    assert deps.migration_kind("db/migrate/20240101_add_users.rb") == "rails"
    assert deps.migration_kind("prisma/migrations/20240101_init/migration.sql") == "prisma"
    assert deps.migration_kind("prisma/migrations/migration_lock.toml") is None
    assert deps.detect_kinds(["README.md", "uv.lock", "package.json"]) == ["node", "python"]
    assert deps.detect_kinds(["README.md", "package-lock.json"]) == []


def test_changed_manifests_sees_commits_edits_and_new_files(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"requirements.txt": "six\n", "src/app.py": "x = 1\n"})
    write(repo, "package-lock.json", '{"lockfileVersion": 3}\n')  # edited, not committed
    write(repo, "go.sum", "")  # new, untracked
    write(repo, "crates/x/Cargo.lock", "")
    write(repo, "node_modules/dep/package.json", "{}")  # an installed package, not the project's
    assert deps.changed_manifests(repo, base) == [
        "crates/x/Cargo.lock",
        "go.sum",
        "package-lock.json",
        "requirements.txt",
    ]


def test_new_migrations_only_counts_added_files(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"app/migrations/0001_initial.py": "# edited\n", "app/migrations/0002_order.py": ""})
    write(repo, "alembic/versions/abc_add_table.py")
    write(repo, "db/migrate/20240101_add_users.rb")
    write(repo, "prisma/migrations/20240101_init/migration.sql")
    write(repo, "app/models.py")
    assert deps.new_migrations(repo, base) == [
        "alembic/versions/abc_add_table.py",
        "app/migrations/0002_order.py",
        "db/migrate/20240101_add_users.rb",
        "prisma/migrations/20240101_init/migration.sql",
    ]


def test_bad_worktree_or_base_names_the_field(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as bad_base:
        deps.changed_manifests(repo, "no-such-ref")
    assert bad_base.value.field == "base"
    with pytest.raises(RepositoryError) as bad_tree:
        deps.new_migrations(tmp_path / "missing", "HEAD")
    assert bad_tree.value.field == "worktree"


def test_manifest_requirements_reads_every_format(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        """
[project]
name = "shop"
dependencies = ["requests>=2", "shop[extra]"]
[project.optional-dependencies]
test = ["pytest"]
docs = ["sphinx"]
[dependency-groups]
dev = ["ruff", {include-group = "test"}]
[tool.poetry.dependencies]
python = "^3.11"
httpx = "^0.27"
local = {path = "../local"}
[tool.poetry.group.dev.dependencies]
black = {version = "^24"}
"""
    )
    (tmp_path / "poetry.lock").write_text('[[package]]\nname = "httpx"\nversion = "0.27.2"\n')
    (tmp_path / "setup.cfg").write_text(
        "[metadata]\nname = shop\n[options]\ninstall_requires =\n    click>=8\n    # a comment\n"
        "[options.extras_require]\ntesting = hypothesis\n"
    )
    (tmp_path / "Pipfile").write_text(
        '[packages]\nflask = "*"\nattrs = ">=23"\n[dev-packages]\nmypy = {version = "==1.10"}\n'
    )
    assert deps.manifest_requirements(tmp_path) == [
        "requests>=2",
        "pytest",
        "ruff",
        "httpx==0.27.2",
        "black",
        "click>=8",
        "hypothesis",
        "flask",
        "attrs>=23",
        "mypy==1.10",
    ]
    (tmp_path / "pyproject.toml").write_text("not [ toml")
    assert "requests>=2" not in deps.manifest_requirements(tmp_path)  # unreadable: skipped, not fatal


def test_prepare_checks_nothing_changed_runs_nothing(repo: Path) -> None:
    assert deps.prepare_checks(repo, git(repo, "rev-parse", "HEAD"), {}) == []


def test_prepare_checks_installs_node_into_a_private_tree(repo: Path, tmp_path: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    shared = tmp_path / "_deps" / "src" / "node_modules"
    (shared / "dep").mkdir(parents=True)
    (repo / "node_modules").symlink_to(shared)
    calls = tmp_path / "calls"
    tool(tmp_path / "bin", "npm", f'echo "npm $* in $(pwd)" >> {calls}; mkdir -p node_modules/new')
    commit(repo, {"package-lock.json": '{"lockfileVersion": 3}\n'})
    env = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}

    [result] = deps.prepare_checks(repo, base, env)

    assert result.ok and result.kind == "install" and result.tool == "npm", result
    assert "package-lock.json changed" in result.reason
    assert calls.read_text().strip() == f"npm ci --no-audit --no-fund in {repo}"
    assert not (repo / "node_modules").is_symlink() and (repo / "node_modules" / "new").is_dir()
    assert sorted(p.name for p in shared.iterdir()) == ["dep"]  # the job's shared tree is untouched


def test_prepare_checks_skips_pip_without_a_job_venv_and_tools_not_on_path(repo: Path, tmp_path: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"requirements.txt": "six\n", "go.mod": "module x\n"})
    results = deps.prepare_checks(repo, base, {"PATH": str(tmp_path / "empty")})
    assert [(r.tool, r.ok, r.skipped is not None) for r in results] == [("pip", True, True), ("go", True, True)]
    assert "no job venv" in (results[0].skipped or "")


def test_prepare_checks_uses_the_job_venv_once_per_manifest(repo: Path, tmp_path: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    venv = tmp_path / "_deps" / "venv"
    calls = tmp_path / "calls"
    # A venv stand-in whose python records the pip command line.
    tool(venv / "bin", "python", f'echo "$*" >> {calls}; mkdir -p litter.egg-info')
    commit(repo, {"requirements-dev.txt": "./wheels/x.whl\n"})
    env = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}

    first = deps.prepare_checks(repo, base, env)
    again = deps.prepare_checks(repo, base, env)

    assert [r.ok for r in first] == [True] and first[0].skipped is None
    assert calls.read_text().splitlines() == [
        "-m pip install --disable-pip-version-check --no-input -r requirements-dev.txt"
    ]
    assert again[0].skipped and "already installed" in again[0].skipped
    assert not (repo / "litter.egg-info").exists()  # install leftovers are not the Reviewer's to commit


def test_prepare_checks_applies_new_django_migrations(repo: Path, tmp_path: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    marker = tmp_path / "migrated"
    commit(
        repo,
        {
            "manage.py": f"import sys, pathlib\npathlib.Path({str(marker)!r}).write_text(' '.join(sys.argv[1:]))\n",
            "app/migrations/0002_order.py": "",
            "alembic/versions/abc.py": "",
        },
    )
    bin_dir = Path(sys.executable).parent
    results = deps.prepare_checks(repo, base, {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    by_tool = {r.tool: r for r in results}
    assert by_tool["django"].ok and by_tool["django"].kind == "migrate", by_tool["django"]
    assert marker.read_text() == "migrate --noinput"
    assert by_tool["alembic"].skipped == "no alembic.ini at the top of the worktree"
    assert deps.prepare_checks(repo, base, {}, migrate=False) == []


def test_run_step_kills_the_whole_process_group_on_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "child"
    script = f"sleep 30 & echo $! > {pid_file}; wait"
    result = deps.run_step("install", "sh", ["sh", "-c", script], cwd=tmp_path, env={}, timeout=0.5, reason="test")
    assert not result.ok and result.exit_code is None and "timed out" in result.output
    child = int(pid_file.read_text())
    # The grandchild died with its group (reap check: kill -0 fails, or it is a zombie).
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(child)], capture_output=True, text=True).stdout.strip()
    assert state in ("", "Z"), state
