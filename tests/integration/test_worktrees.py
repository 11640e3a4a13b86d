"""Worktrees under load: shared dependency caches, concurrent jobs on one repository, listing and pruning.

Nothing here downloads: Python seeding installs a wheel built by the test
(pip runs with PIP_NO_INDEX), Node seeding copies the main checkout's
node_modules or runs ``npm ci --offline`` on a ``file:`` dependency.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from godel import worktrees as core
from godel.cli.worktrees import worktrees as worktrees_command
from godel.context import build_context
from godel.depcache import DEPS_DIR, SeedStatus
from godel.git import branches, git
from godel.storage.models import Agent, Job
from godel.worktrees import Worktrees, agent_branch, job_branch
from tests.conftest import make_repo

pytestmark = pytest.mark.integration

AGENTS = ["coordinator", "worker-1", "worker-2"]


def worktrees_for(repo: Path, home: Path) -> Worktrees:
    return Worktrees(repo, home / "worktrees", home / "locks")


def build_wheel(directory: Path, name: str = "localpkg", value: str = "42") -> Path:
    """A minimal pure-Python wheel: pip installs it without a build backend or an index."""
    files = {f"{name}/__init__.py": f"VALUE = {value}\n"}
    info = f"{name}-0.1.dist-info"
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n"
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{name}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("npm_config_offline", "true")


def create_all(worktrees: Worktrees, job_id: str, start: str) -> list[Path]:
    """The job's agents start at once, as on a worker with several threads."""
    with ThreadPoolExecutor(len(AGENTS)) as pool:
        return list(pool.map(lambda name: worktrees.create(job_id, name, start), AGENTS))


@pytest.mark.usefixtures("offline")
def test_python_job_gets_one_venv_seeded_once(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    build_wheel(repo / "wheels")
    make_repo(
        repo,
        {
            "requirements.txt": "./wheels/localpkg-0.1-py3-none-any.whl\n",
            "requirements-dev.txt": "# nothing yet\n",
            "src/shop/__init__.py": "NAME = 'from the worktree'\n",
        },
    )
    worktrees = worktrees_for(repo, tmp_path / "home")
    start = git(repo, "rev-parse", "HEAD")

    paths = create_all(worktrees, "job1", start)

    status = worktrees.dependencies("job1").status()
    assert status is not None and status.ok, status
    assert status.kinds == ["python"] and status.commit == start
    assert [s.tool for s in status.steps] == ["git", "venv", "pip", "pip"]
    env = worktrees.agent_env("job1", paths[1])
    assert env["VIRTUAL_ENV"] == str(tmp_path / "home" / "worktrees" / "job1" / DEPS_DIR / "venv")
    assert env["PATH"].startswith(env["VIRTUAL_ENV"] + "/bin" + os.pathsep)
    probe = "import localpkg, shop, sys; print(localpkg.VALUE, shop.__file__, sys.prefix)"
    out = subprocess.run(
        ["python", "-c", probe], cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["42", str(paths[1] / "src" / "shop" / "__init__.py"), env["VIRTUAL_ENV"]]

    worktrees.cleanup("job1")
    assert not (tmp_path / "home" / "worktrees" / "job1").exists()
    assert worktrees.agent_env("job1") == {}
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


@pytest.mark.usefixtures("offline")
def test_a_failed_install_is_recorded_not_fatal(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"requirements.txt": "./wheels/missing-0.1-py3-none-any.whl\n"})
    worktrees = worktrees_for(repo, tmp_path / "home")

    path = worktrees.create("job2", "worker-1", git(repo, "rev-parse", "HEAD"))

    status = worktrees.dependencies("job2").status()
    assert path.is_dir() and status is not None and not status.ok
    failed = [s for s in status.steps if not s.ok]
    assert [s.tool for s in failed] == ["pip"] and "missing-0.1" in failed[0].output
    assert "VIRTUAL_ENV" in worktrees.agent_env("job2")  # the venv itself is usable


def node_repo(path: Path) -> Path:
    (path / "localdep").mkdir(parents=True)
    (path / "localdep" / "package.json").write_text('{"name": "localdep", "version": "1.0.0"}\n')
    (path / "localdep" / "index.js").write_text("module.exports = 42;\n")
    package = {"name": "app", "version": "1.0.0", "dependencies": {"localdep": "file:./localdep"}}
    lock = {
        "name": "app",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            "": {"name": "app", "version": "1.0.0", "dependencies": {"localdep": "file:./localdep"}},
            "localdep": {"version": "1.0.0"},
            "node_modules/localdep": {"resolved": "localdep", "link": True},
        },
    }
    return make_repo(path, {"package.json": json.dumps(package), "package-lock.json": json.dumps(lock)})


@pytest.mark.skipif(not shutil.which("npm") or not shutil.which("node"), reason="needs npm and node")
@pytest.mark.usefixtures("offline")
def test_node_job_installs_once_and_links_every_worktree(tmp_path: Path) -> None:
    repo = node_repo(tmp_path / "repo")  # no node_modules in the main checkout: npm ci runs once
    worktrees = worktrees_for(repo, tmp_path / "home")
    start = git(repo, "rev-parse", "HEAD")

    paths = create_all(worktrees, "job3", start)

    status = worktrees.dependencies("job3").status()
    assert status is not None and status.ok, status
    assert [s.command.split()[1:3] for s in status.steps if s.tool == "npm"] == [["ci", "--no-audit"]]
    shared = tmp_path / "home" / "worktrees" / "job3" / DEPS_DIR / "src" / "node_modules"
    for path in paths:
        assert (path / "node_modules").resolve() == shared.resolve()
        probe = subprocess.run(["node", "-p", "require('localdep')"], cwd=path, capture_output=True, text=True)
        assert probe.stdout.strip() == "42", probe.stderr
    # The repository does not ignore node_modules; the agent's commit still leaves the link out.
    (paths[1] / "feature.js").write_text("module.exports = 1;\n")
    sha = worktrees.commit_all(paths[1], "feature")
    tree = git(repo, "ls-tree", "-r", "--name-only", sha or "HEAD").splitlines()
    assert sha and sorted(tree) == [
        "feature.js",
        "localdep/index.js",
        "localdep/package.json",
        "package-lock.json",
        "package.json",
    ]


# -- many jobs at once ------------------------------------------------------

JOBS = 6
FATES = ["publish", "cleanup", "rollback"]
"""Succeeded (published), failed or cancelled (worktrees removed, branches kept), rolled back."""


def run_job(repo: str, home: str, job_id: str, fate: str, start_at: float) -> dict[str, Any]:
    """One job's whole worktree life in its own process, its agents on threads (a prefork worker)."""
    worktrees = worktrees_for(Path(repo), Path(home))
    base = git(repo, "rev-parse", "HEAD")
    time.sleep(max(0.0, start_at - time.time()))  # every process starts together

    def agent(name: str) -> dict[str, Any]:
        path = worktrees.create(job_id, name, base)
        commits = []
        for round_ in range(2):
            (path / f"{job_id}-{name}-{round_}.txt").write_text(f"{job_id} {name} {round_}\n")
            commits.append(worktrees.commit_all(path, f"{job_id} {name} {round_}"))
        link = path / "node_modules"
        return {"commits": commits, "link": str(link.resolve()) if link.is_symlink() else None}

    with ThreadPoolExecutor(len(AGENTS)) as pool:
        agents = dict(zip(AGENTS, pool.map(agent, AGENTS), strict=True))
    status = worktrees.dependencies(job_id).status()
    merged = worktrees.merge(job_id, base, AGENTS)
    if fate == "publish":
        worktrees.publish(job_id, merged.sha)
    elif fate == "cleanup":
        worktrees.cleanup(job_id)
    else:
        worktrees.rollback(job_id)
    return {
        "agents": agents,
        "merged": merged.merged,
        "conflicts": merged.conflicts,
        "sha": merged.sha,
        "status": status.model_dump(mode="json") if status else None,
    }


def test_concurrent_jobs_on_one_repository_stay_consistent(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "# shared\n", "package.json": "{}\n"})
    (repo / "node_modules" / "dep").mkdir(parents=True)  # untracked and not ignored
    (repo / "node_modules" / "dep" / "index.js").write_text("module.exports = 1;\n")
    git(repo, "pack-refs", "--all")  # deletions then rewrite packed-refs: another shared file
    base = git(repo, "rev-parse", "HEAD")
    home = tmp_path / "home"
    ids = [f"job{i}" for i in range(JOBS)]
    start_at = time.time() + 2.0
    with ProcessPoolExecutor(JOBS, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {
            job_id: pool.submit(run_job, str(repo), str(home), job_id, FATES[i % 3], start_at)
            for i, job_id in enumerate(ids)
        }
        results = {job_id: future.result(timeout=120) for job_id, future in futures.items()}

    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr
    assert not [line for line in fsck.stderr.splitlines() if not line.startswith("dangling ")], fsck.stderr
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not (repo / ".git" / "worktrees").exists() or not list((repo / ".git" / "worktrees").iterdir())
    assert not list((repo / ".git").rglob("*.lock"))
    assert not [p for p in (home / "worktrees").iterdir()], "worktrees or caches left behind"
    assert git(repo, "status", "--porcelain") == "?? node_modules/"  # the user's checkout is untouched
    assert git(repo, "rev-parse", "HEAD") == base

    for i, job_id in enumerate(ids):
        result, fate = results[job_id], FATES[i % 3]
        assert result["conflicts"] == {} and len(result["merged"]) == len(AGENTS), result
        own = sorted(f"{job_id}-{name}-{r}.txt" for name in AGENTS for r in range(2))
        # Seeded once per job, before any of its agents went on: all saw one snapshot of it.
        status = SeedStatus.model_validate(result["status"])
        assert status.kinds == ["node"] and status.ok and status.node_modules, status
        assert {a["link"] for a in result["agents"].values()} == {str(Path(status.node_modules).resolve())}
        assert f"/{job_id}/{DEPS_DIR}/" in status.node_modules
        agent_branches = branches(repo, f"godel/{job_id}/")
        if fate == "publish":
            assert agent_branches == []
            tree = git(repo, "ls-tree", "-r", "--name-only", job_branch(job_id)).splitlines()
            assert sorted(tree) == sorted(["README.md", "package.json", *own])
            log = git(repo, "log", "--format=%s", f"{base}..{job_branch(job_id)}").splitlines()
            assert len(log) == len(AGENTS) * 3  # two commits and one merge per agent
            assert git(repo, "rev-parse", job_branch(job_id)) == result["sha"]
        elif fate == "cleanup":
            assert agent_branches == sorted(agent_branch(job_id, name) for name in AGENTS)
            for name in AGENTS:
                branch = agent_branch(job_id, name)
                assert git(repo, "rev-list", "--count", f"{base}..{branch}") == "2"
                assert git(repo, "rev-parse", branch) == result["agents"][name]["commits"][-1]
                files = git(repo, "ls-tree", "-r", "--name-only", branch).splitlines()
                assert sorted(files) == sorted(
                    ["README.md", "package.json", f"{job_id}-{name}-0.txt", f"{job_id}-{name}-1.txt"]
                )
        else:
            assert agent_branches == [] and not branches(repo, job_branch(job_id))


# -- godel worktrees -------------------------------------------------------


def test_list_and_prune_worktrees(godel_env: dict[str, str], tmp_path: Path) -> None:
    ctx = build_context()
    repo = make_repo(tmp_path / "repo")
    base = git(repo, "rev-parse", "HEAD")
    worktrees = core.Worktrees.for_settings(repo, ctx.settings)
    for job_id, status in (("listrunning1", "running"), ("listdone0001", "failed")):
        job = Job(
            id=job_id,
            text="t",
            intent={},
            template="bug-fix",
            status=status,
            repo_path=str(repo),
            base_ref=base,
            base_branch="main",
            branch=job_branch(job_id),
            runtime="command",
        )
        ctx.store.add_job(job, [Agent(name="worker-1", role="worker", state="running", runtime="command")])
        path = worktrees.create(job_id, "worker-1", base)
        (path / "notes.txt").write_text("x" * 100_000)
    worktrees.create("notindb00001", "worker-1", base)

    rows = {(r["job_id"], r["agent"]): r for r in core.list_active(ctx.settings, ctx.store)}

    running = rows[("listrunning1", "worker-1")]
    assert running["state"] == "active" and running["ended"] is False and running["role"] == "worker"
    assert running["branch"] == agent_branch("listrunning1", "worker-1")
    assert Path(running["repo"]).resolve() == repo.resolve()
    assert 100_000 <= running["size_bytes"] < 1_000_000 and running["age_seconds"] < 60
    assert rows[("listdone0001", "worker-1")]["state"] == "cleanup pending"
    assert rows[("notindb00001", "worker-1")]["state"] == "unknown job"

    result = CliRunner().invoke(worktrees_command, ["--prune", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [(r["job_id"], r["agent"]) for r in json.loads(result.output)] == [("listdone0001", "worker-1")]
    listed = CliRunner().invoke(worktrees_command, ["--format", "jsonl"])
    remaining = sorted(json.loads(line)["job_id"] for line in listed.output.splitlines())
    assert remaining == ["listrunning1", "notindb00001"]
    assert branches(repo, "godel/listdone0001/") == [agent_branch("listdone0001", "worker-1")]  # branches stay
