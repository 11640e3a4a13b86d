"""The dependencies of the repository agents work on: detection, a shared cache per job, check preparation.

Every agent of a job starts from the same commit, so installing that commit's
dependencies once per job (``DependencyCache``) spares each agent a full
install. An agent that changes a manifest or adds a migration leaves that
cache behind its tree, and the Reviewer's checks would then fail for the wrong
reason: ``prepare_checks`` installs and migrates in its worktree first and
reports each command it ran (or why it did not), for the review to show.
"""

from __future__ import annotations

import configparser
import fcntl
import hashlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from godel.errors import RepositoryError, ValidationError
from godel.git import git

log = logging.getLogger(__name__)

INSTALL_TIMEOUT = 10 * 60
"""Seconds ``prepare_checks`` may spend in all, unless the caller gives less."""
SEED_TIMEOUT = 15 * 60
"""Seconds seeding a job's cache may take in all; the job's first agent waits for it."""
OUTPUT_TAIL = 4000
"""Characters of a command's output kept in its result."""

DEPS_DIR = "_deps"
LOCK_NAME = ".lock"
STATUS_NAME = "status.json"
"""Written last, atomically: its presence is the cache's "ready" marker."""

PYTHON_MANIFESTS = frozenset(
    {"pyproject.toml", "setup.cfg", "setup.py", "Pipfile", "Pipfile.lock", "poetry.lock", "uv.lock"}
)
NODE_LOCKS = {"package-lock.json": "npm", "npm-shrinkwrap.json": "npm", "yarn.lock": "yarn", "pnpm-lock.yaml": "pnpm"}
OTHER_MANIFESTS = {
    "go.mod": "go",
    "go.sum": "go",
    "Cargo.toml": "rust",
    "Cargo.lock": "rust",
    "Gemfile": "ruby",
    "Gemfile.lock": "ruby",
}
OTHER_INSTALLS = {"go": ["go", "mod", "download"], "rust": ["cargo", "fetch"], "ruby": ["bundle", "install"]}
VENDORED = frozenset({"node_modules", "vendor", ".venv", "venv", "site-packages", ".git"})
"""Directories whose manifests belong to installed packages, not to the project."""
DEV_GROUPS = frozenset({"dev", "test", "tests", "testing"})
"""Optional dependency groups installed too: the Reviewer runs the tests."""

_REQUIREMENTS = re.compile(r"^requirements.*\.txt$")
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
MIGRATIONS = {
    "alembic": re.compile(r"(^|/)(alembic|migrations)/versions/[^/]+\.py$"),
    "django": re.compile(r"(^|/)migrations/[^/]+\.py$"),
    "rails": re.compile(r"(^|/)db/migrate/[^/]+\.rb$"),
    "prisma": re.compile(r"(^|/)prisma/migrations/[^/]+/migration\.sql$"),
}
"""Where frameworks keep migrations; alembic first, its ``versions/`` sits under ``migrations/``."""

Kind = Literal["seed", "install", "migrate"]


class StepResult(BaseModel):
    """One install, migration or seeding command: what ran, why, and how it went."""

    kind: Kind
    tool: str
    command: str = ""
    reason: str
    ok: bool
    skipped: str | None = None
    """Why the command did not run (tool missing, nothing to do); a skip is not a failure."""
    exit_code: int | None = None
    seconds: float = 0.0
    output: str = ""


def skipped(kind: Kind, tool: str, reason: str, why: str) -> StepResult:
    return StepResult(kind=kind, tool=tool, reason=reason, ok=True, skipped=why)


def run_step(
    kind: Kind, tool: str, argv: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float, reason: str
) -> StepResult:
    """Run ``argv`` with its output captured; on timeout its whole process group is killed."""
    started = time.monotonic()

    def result(ok: bool, exit_code: int | None, output: str) -> StepResult:
        return StepResult(
            kind=kind,
            tool=tool,
            command=shlex.join(argv),
            reason=reason,
            ok=ok,
            exit_code=exit_code,
            seconds=round(time.monotonic() - started, 3),
            output=output[-OUTPUT_TAIL:],
        )

    if timeout <= 0:
        return result(False, None, "no time left to run it")
    try:
        # A session of its own: npm and pip start children that must die with them on timeout.
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        return result(False, None, str(exc))
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return result(False, None, f"{output or ''}\ntimed out after {timeout:.0f}s")
    return result(proc.returncode == 0, proc.returncode, output)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across threads and processes of this machine (flock; released if the holder dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- detection -------------------------------------------------------------


def manifest_kind(path: str) -> str | None:
    """The ecosystem (python, node, go, rust, ruby) of the manifest or lock file at repo-relative ``path``."""
    parts = PurePosixPath(path).parts
    if not parts or VENDORED.intersection(parts[:-1]):
        return None
    name = parts[-1]
    if _REQUIREMENTS.match(name) or (len(parts) > 1 and parts[-2] == "requirements" and name.endswith(".txt")):
        return "python"
    if name in PYTHON_MANIFESTS:
        return "python"
    if name == "package.json" or name in NODE_LOCKS:
        return "node"
    return OTHER_MANIFESTS.get(name)


def migration_kind(path: str) -> str | None:
    """The framework (alembic, django, rails, prisma) a migration file at ``path`` belongs to."""
    parts = PurePosixPath(path).parts
    if not parts or parts[-1] == "__init__.py" or VENDORED.intersection(parts[:-1]):
        return None
    return next((kind for kind, pattern in MIGRATIONS.items() if pattern.search(path)), None)


def detect_kinds(names: Iterable[str]) -> list[str]:
    """The caches worth seeding, from the file names at the top of a tree (python, node)."""
    kinds = set()
    for name in names:
        if manifest_kind(name) == "python":
            kinds.add("python")
        elif name == "package.json":
            kinds.add("node")
    return sorted(kinds)


def _check_worktree(worktree: Path, base: str) -> None:
    if not worktree.is_dir():
        raise RepositoryError(f"{worktree} is not a directory", field="worktree")
    if not git(worktree, "rev-parse", "--git-dir", check=False):
        raise RepositoryError(f"{worktree} is not a git worktree", field="worktree")
    if not git(worktree, "rev-parse", "--verify", "-q", f"{base}^{{commit}}", check=False):
        raise ValidationError(f"{base!r} is not a commit of {worktree}", field="base")


def _changed_paths(worktree: Path, base: str, *, added_only: bool = False) -> list[str]:
    """Paths that differ from ``base``, committed or not, plus untracked files: agents may not commit."""
    _check_worktree(worktree, base)
    # Read-only: no optional index refresh, so this never takes index.lock from a running agent.
    diff = ["--no-optional-locks", "diff", "--name-only", "--no-renames", "-z"]
    if added_only:
        diff.append("--diff-filter=A")
    tracked = git(worktree, *diff, base, "--").split("\0")
    untracked = git(worktree, *_UNTRACKED, *_BUT_NODE_MODULES).split("\0")
    return sorted({p for p in (*tracked, *untracked) if p})


def changed_manifests(worktree: Path, base: str) -> list[str]:
    """Manifest and lock files (Python, Node, Go, Rust, Ruby) the agent changed, added or deleted since ``base``."""
    return [p for p in _changed_paths(Path(worktree), base) if manifest_kind(p)]


def new_migrations(worktree: Path, base: str) -> list[str]:
    """Migration files added since ``base`` (Alembic, Django, Rails, Prisma)."""
    return [p for p in _changed_paths(Path(worktree), base, added_only=True) if migration_kind(p)]


# -- Python requirements ---------------------------------------------------


def _toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return {}


def _table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _dev_groups(groups: Mapping[str, Any]) -> list[str]:
    return [req for name, items in groups.items() if name in DEV_GROUPS for req in _strings(items)]


def _name(requirement: str) -> str:
    match = _NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def _poetry(poetry: Mapping[str, Any], pins: Mapping[str, str]) -> list[str]:
    # Poetry's constraints (^1.2, ~3) are not pip syntax: pin from poetry.lock, else take the name alone.
    tables = [_table(poetry, "dependencies"), _table(poetry, "dev-dependencies")]
    groups = _table(poetry, "group")
    tables += [_table(_table(groups, name), "dependencies") for name in sorted(DEV_GROUPS)]
    found = []
    for table in tables:
        for name, spec in table.items():
            if name.lower() == "python" or (isinstance(spec, dict) and "version" not in spec):
                continue  # the interpreter, or a path, git or url dependency
            pin = pins.get(_name(name))
            found.append(f"{name}=={pin}" if pin else name)
    return found


def _lock_pins(path: Path) -> dict[str, str]:
    packages = _toml(path).get("package")
    if not isinstance(packages, list):
        return {}
    return {
        _name(p["name"]): p["version"]
        for p in packages
        if isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("version"), str)
    }


def _setup_cfg(path: Path) -> tuple[list[str], str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except (configparser.Error, UnicodeDecodeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return [], ""
    lines = parser.get("options", "install_requires", fallback="").splitlines()
    for group in sorted(DEV_GROUPS):
        lines += parser.get("options.extras_require", group, fallback="").splitlines()
    found = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return found, parser.get("metadata", "name", fallback="")


def _pipfile(data: Mapping[str, Any]) -> list[str]:
    found = []
    for section in ("packages", "dev-packages"):
        for name, spec in _table(data, section).items():
            version = spec.get("version") if isinstance(spec, dict) else spec
            if isinstance(version, str):  # path, git and url entries have none
                found.append(name if version.strip() == "*" else f"{name}{version.strip()}")
    return found


def manifest_requirements(root: Path) -> list[str]:
    """Requirements declared in pyproject.toml (PEP 621, PEP 735, Poetry), setup.cfg and Pipfile.

    The project itself is left out: agents import it from their own worktree
    (see ``DependencyCache.env``), never from the shared venv.
    """
    pyproject = _toml(root / "pyproject.toml")
    project = _table(pyproject, "project")
    poetry = _table(_table(pyproject, "tool"), "poetry")
    found = _strings(project.get("dependencies"))
    found += _dev_groups(_table(project, "optional-dependencies"))
    found += _dev_groups(_table(pyproject, "dependency-groups"))
    found += _poetry(poetry, _lock_pins(root / "poetry.lock"))
    cfg, cfg_name = _setup_cfg(root / "setup.cfg")
    found += cfg
    found += _pipfile(_toml(root / "Pipfile"))
    own = {_name(str(n)) for n in (project.get("name"), poetry.get("name"), cfg_name) if n}
    return list(dict.fromkeys(r for r in found if _name(r) and _name(r) not in own))


def python_installs(
    root: Path, python: str, requirement_files: Iterable[str] | None = None
) -> list[tuple[list[str], str]]:
    """The pip commands (argv, reason) that install ``root``'s requirements with ``python``.

    ``requirement_files`` (repo-relative) defaults to every ``requirements*.txt``
    at the top; they run with ``root`` as the working directory, so relative
    paths in them (``-e ./lib``, ``./wheels/x.whl``) resolve as they do for people.
    """
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    if requirement_files is None:
        requirement_files = sorted(p.name for p in root.glob("requirements*.txt") if p.is_file())
    commands = [([*pip, "-r", name], f"{name} lists requirements") for name in requirement_files]
    declared = manifest_requirements(root)
    if declared:
        sources = [n for n in ("pyproject.toml", "setup.cfg", "Pipfile") if (root / n).is_file()]
        commands.append(([*pip, *declared], f"dependencies declared in {', '.join(sources)}"))
    return commands


def node_install(root: Path, path: str | None, *, need_lock: bool) -> tuple[str, list[str] | None, str] | None:
    """(tool, argv or None when the tool is not on ``path``, reason) installing ``root``'s node_modules.

    With a lock file the install is the frozen one (npm ci, --frozen-lockfile):
    it reproduces the lock or fails, which is what a review should see.
    """
    for lock, tool in NODE_LOCKS.items():
        if (root / lock).is_file():
            exe = shutil.which(tool, path=path)
            if exe is None:
                return tool, None, f"{lock} present"
            frozen = ["ci", "--no-audit", "--no-fund"] if tool == "npm" else ["install", "--frozen-lockfile"]
            return tool, [exe, *frozen], f"{lock} present"
    if need_lock or not (root / "package.json").is_file():
        return None
    exe = shutil.which("npm", path=path)
    return "npm", [exe, "install", "--no-audit", "--no-fund"] if exe else None, "package.json without a lock file"


def copy_tree(source: Path, target: Path, *, kind: Kind, reason: str, timeout: float) -> StepResult:
    """A copy-on-write copy where the filesystem can (btrfs, XFS, APFS clones), a full one elsewhere."""
    reflink = ["--reflink=auto"] if sys.platform.startswith("linux") else []
    return run_step(
        kind,
        "cp",
        ["cp", "-R", *reflink, str(source), str(target)],
        cwd=target.parent,
        env={},
        timeout=timeout,
        reason=reason,
    )


# -- the job's shared cache ------------------------------------------------


class SeedStatus(BaseModel):
    """What seeding a job's cache did; stored as ``_deps/status.json``."""

    commit: str
    kinds: list[str] = Field(default_factory=list)
    venv: str | None = None
    node_modules: str | None = None
    steps: list[StepResult] = Field(default_factory=list)
    seeded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)


def _remaining(deadline: float) -> float:
    return deadline - time.monotonic()


@dataclass
class DependencyCache:
    """One job's shared dependencies in ``GODEL_HOME/worktrees/<job>/_deps``, seeded once.

    ``src`` is an export of the job's start commit: installs run there so
    relative paths in manifests (``-e ./lib``, ``file:./pkg``) resolve, and
    editable installs point into a tree no agent edits and cleanup removes.
    Python gets one venv (``venv``) exposed through ``env()``. Node gets
    ``src/node_modules``, symlinked into each agent's worktree by ``attach()``.
    """

    dir: Path
    repo: Path
    timeout: float = SEED_TIMEOUT

    @property
    def src(self) -> Path:
        return self.dir / "src"

    @property
    def venv(self) -> Path:
        return self.dir / "venv"

    @property
    def lock(self) -> Path:
        return self.dir / LOCK_NAME

    def status(self) -> SeedStatus | None:
        """The finished seeding's record, or None while nobody has finished seeding."""
        try:
            return SeedStatus.model_validate_json((self.dir / STATUS_NAME).read_text())
        except FileNotFoundError:
            return None
        except (OSError, PydanticValidationError) as exc:
            log.warning("reseeding %s: unreadable status: %s", self.dir, exc)
            return None

    def ensure(self, start: str) -> SeedStatus:
        """The cache for ``start``: the first caller seeds it, concurrent callers wait and reuse it."""
        if (status := self.status()) is not None:
            return status
        self.dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.lock):
            if (status := self.status()) is not None:
                return status  # another agent seeded while this one waited
            status = self._seed(start)
            tmp = self.dir / f".{STATUS_NAME}.{os.getpid()}"
            tmp.write_text(status.model_dump_json(indent=2))
            tmp.replace(self.dir / STATUS_NAME)
        return status

    def _seed(self, start: str) -> SeedStatus:
        started = time.monotonic()
        deadline = started + self.timeout
        for leftover in (self.src, self.venv):  # a seeder that died half-way
            shutil.rmtree(leftover, ignore_errors=True)
        commit = git(self.repo, "rev-parse", "--verify", f"{start}^{{commit}}")  # start may name a branch
        status = SeedStatus(
            commit=commit, kinds=detect_kinds(git(self.repo, "ls-tree", "--name-only", commit).splitlines())
        )
        if status.kinds:
            export = self._export(commit, deadline)
            status.steps.append(export)
            if export.ok and "python" in status.kinds:
                self._seed_python(status, deadline)
            if export.ok and "node" in status.kinds:
                self._seed_node(status, deadline)
        status.seconds = round(time.monotonic() - started, 3)
        if not status.ok:
            failed = next(s for s in status.steps if not s.ok)
            log.warning("dependency cache %s: %s failed: %s", self.dir, failed.command, failed.output[-300:])
        return status

    def _export(self, start: str, deadline: float) -> StepResult:
        # A private index file: reads objects only, so no repo lock and no effect on anyone's checkout.
        env = {"GIT_INDEX_FILE": str(self.dir / "export.index"), "GIT_LFS_SKIP_SMUDGE": "1"}
        reason = "export the start commit for installs"
        read = run_step(
            "seed",
            "git",
            ["git", "read-tree", start],
            cwd=self.repo,
            env=env,
            timeout=_remaining(deadline),
            reason=reason,
        )
        if not read.ok:
            return read
        self.src.mkdir(parents=True)
        checkout = ["git", "checkout-index", "-a", "-f", f"--prefix={self.src}/"]
        result = run_step("seed", "git", checkout, cwd=self.repo, env=env, timeout=_remaining(deadline), reason=reason)
        (self.dir / "export.index").unlink(missing_ok=True)
        return result

    def _seed_python(self, status: SeedStatus, deadline: float) -> None:
        # --without-pip takes milliseconds; pip then comes from the base interpreter's site-packages.
        create = [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(self.venv)]
        step = run_step(
            "seed", "venv", create, cwd=self.dir, env={}, timeout=_remaining(deadline), reason="one venv for the job"
        )
        status.steps.append(step)
        if not step.ok:
            return
        status.venv = str(self.venv)
        python = str(self.venv / "bin" / "python")
        _inherit_site_packages(python)
        env = {"VIRTUAL_ENV": str(self.venv), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        if subprocess.run([python, "-c", "import pip"], capture_output=True).returncode:
            ensure = [python, "-m", "ensurepip", "--default-pip"]
            step = run_step(
                "seed", "pip", ensure, cwd=self.dir, env=env, timeout=_remaining(deadline), reason="the base has no pip"
            )
            status.steps.append(step)
            if not step.ok:
                return
        for argv, reason in python_installs(self.src, python):
            status.steps.append(
                run_step("seed", "pip", argv, cwd=self.src, env=env, timeout=_remaining(deadline), reason=reason)
            )

    def _seed_node(self, status: SeedStatus, deadline: float) -> None:
        target = self.src / "node_modules"
        if target.exists():
            return  # the repository commits its node_modules: every worktree has them already
        main = self.repo / "node_modules"
        if main.is_dir():
            reason = "snapshot of the main checkout's node_modules"
            step = copy_tree(main, target, kind="seed", reason=reason, timeout=_remaining(deadline))
        else:
            planned = node_install(self.src, os.environ.get("PATH"), need_lock=True)
            if planned is None:
                return  # without a lock file an install is not reproducible: agents install their own
            tool, argv, reason = planned
            if argv is None:
                status.steps.append(skipped("seed", tool, reason, f"{tool} is not on PATH"))
                return
            step = run_step("seed", tool, argv, cwd=self.src, env={}, timeout=_remaining(deadline), reason=reason)
        status.steps.append(step)
        if step.ok and target.is_dir():
            status.node_modules = str(target)

    def attach(self, worktree: Path) -> None:
        """Give ``worktree`` the shared node_modules as a symlink.

        A symlink rather than a copy: it costs nothing per agent, where
        ``cp --reflink=auto`` is a full copy on ext4 and most filesystems.
        The shared tree is read-only by convention; ``prepare_checks`` swaps
        the link for a private copy before installing into a worktree, and
        ``Worktrees.commit_all`` never commits an untracked node_modules.
        """
        status = self.status()
        link = Path(worktree) / "node_modules"
        if status and status.node_modules and not link.exists() and not link.is_symlink():
            link.symlink_to(status.node_modules, target_is_directory=True)

    def env(self, worktree: Path | None = None) -> dict[str, str]:
        """Variables that put an agent in the job's venv, to lay over ``os.environ``; {} without one.

        PATH is complete (the venv's bin, then this process's PATH). PYTHONPATH
        puts the agent's own worktree (and its ``src/``) first, so the project
        is imported from the agent's tree even when a requirements file
        installed it into the shared venv.
        """
        status = self.status()
        if status is None or not status.venv or not (Path(status.venv) / "bin" / "python").exists():
            return {}
        bin_dir = Path(status.venv) / "bin"
        env = {"VIRTUAL_ENV": status.venv, "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", os.defpath)])}
        if worktree is not None:
            worktree = Path(worktree)
            paths = [str(worktree / "src")] if (worktree / "src").is_dir() else []
            paths.append(str(worktree))
            if os.environ.get("PYTHONPATH"):
                paths.append(os.environ["PYTHONPATH"])
            env["PYTHONPATH"] = os.pathsep.join(paths)
        return env


# -- before the Reviewer's checks ------------------------------------------


def prepare_checks(
    worktree: Path, base: str, env: Mapping[str, str], *, timeout: float = INSTALL_TIMEOUT, migrate: bool = True
) -> list[StepResult]:
    """Install what the manifests changed since ``base`` need, apply new migrations; one result per command.

    ``env`` is the agent's environment overlay (``Worktrees.agent_env``): pip
    installs go only into the venv its VIRTUAL_ENV names, never into whatever
    Python is on PATH. ``timeout`` bounds the whole preparation. Files the
    commands leave in the worktree that git would commit (egg-info, caches)
    are removed, so the Reviewer's commit carries only the Reviewer's work.
    """
    worktree = Path(worktree)
    changed = changed_manifests(worktree, base)
    migrations = new_migrations(worktree, base) if migrate else []
    if not changed and not migrations:
        return []
    prep = _Preparation(worktree, env, time.monotonic() + timeout)
    before = _untracked(worktree)
    by_kind = _group(changed, manifest_kind)
    results: list[StepResult] = []
    if "python" in by_kind:
        results += prep.python(by_kind["python"])
    if "node" in by_kind:
        results.append(prep.node(by_kind["node"]))
    for kind in sorted(OTHER_INSTALLS.keys() & by_kind.keys()):
        results += prep.other(kind, by_kind[kind])
    for kind, files in sorted(_group(migrations, migration_kind).items()):
        results.append(prep.migrate(kind, files))
    _remove_litter(worktree, before)
    return results


def _group(paths: list[str], kind_of: Callable[[str], str | None]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(str(kind_of(path)), []).append(path)
    return groups


@dataclass
class _Preparation:
    worktree: Path
    env: Mapping[str, str]
    deadline: float

    @property
    def path(self) -> str | None:
        return self.env.get("PATH", os.environ.get("PATH"))

    def run(self, kind: Kind, tool: str, argv: list[str], reason: str, cwd: Path | None = None) -> StepResult:
        timeout = _remaining(self.deadline)
        return run_step(kind, tool, argv, cwd=cwd or self.worktree, env=self.env, timeout=timeout, reason=reason)

    def python(self, changed: list[str]) -> list[StepResult]:
        reason = f"{', '.join(changed)} changed"
        venv = self.env.get("VIRTUAL_ENV")
        if not venv:
            return [skipped("install", "pip", reason, "no job venv (the dependency cache is off or was not seeded)")]
        present = [p for p in changed if (self.worktree / p).is_file()]
        files = [p for p in present if p.endswith(".txt")]
        commands = python_installs(self.worktree, str(Path(venv) / "bin" / "python"), files)
        if not any(PurePosixPath(p).name in PYTHON_MANIFESTS for p in present):
            commands = commands[: len(files)]  # only requirements files changed
        if not commands:
            return [skipped("install", "pip", reason, "nothing left to install")]
        # Reviewers of one job share its venv: install once per manifest content, one at a time.
        digest = hashlib.sha256()
        for path in present:
            digest.update(path.encode() + b"\0" + (self.worktree / path).read_bytes() + b"\0")
        marker = Path(venv).parent / "installed" / digest.hexdigest()[:24]
        with file_lock(Path(venv).parent / LOCK_NAME):
            if marker.exists():
                return [skipped("install", "pip", reason, "already installed into the job's venv for these files")]
            results = [self.run("install", "pip", argv, why) for argv, why in commands]
            if all(r.ok for r in results):
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
        return results

    def node(self, changed: list[str]) -> StepResult:
        reason = f"{', '.join(changed)} changed"
        planned = node_install(self.worktree, self.path, need_lock=False)
        if planned is None:
            return skipped("install", "npm", reason, "no package.json at the top of the worktree")
        tool, argv, why = planned
        if argv is None:
            return skipped("install", tool, reason, f"{tool} is not on PATH")
        link = self.worktree / "node_modules"
        if link.is_symlink():
            # Never install through the link into the job's shared tree: this agent gets its own.
            shared = link.resolve()
            link.unlink()
            if argv[1:2] != ["ci"] and shared.is_dir():  # npm ci empties node_modules first: nothing to copy
                copied = copy_tree(
                    shared, link, kind="install", reason="private node_modules", timeout=_remaining(self.deadline)
                )
                if not copied.ok:
                    return copied
        return self.run("install", tool, argv, f"{reason}; {why}")

    def other(self, kind: str, changed: list[str]) -> list[StepResult]:
        tool, *args = OTHER_INSTALLS[kind]
        exe = shutil.which(tool, path=self.path)
        results = []
        for directory, files in sorted(_group(changed, lambda p: str(PurePosixPath(p).parent)).items()):
            reason = f"{', '.join(files)} changed"
            if exe is None:
                results.append(skipped("install", tool, reason, f"{tool} is not on PATH"))
            elif (self.worktree / directory).is_dir():
                results.append(self.run("install", tool, [exe, *args], reason, cwd=self.worktree / directory))
        return results

    def migrate(self, kind: str, files: list[str]) -> StepResult:
        reason = f"new migration(s): {', '.join(files)}"
        venv = self.env.get("VIRTUAL_ENV")
        python = str(Path(venv) / "bin" / "python") if venv else shutil.which("python3", path=self.path)
        if kind == "alembic":
            if not (self.worktree / "alembic.ini").is_file():
                return skipped("migrate", kind, reason, "no alembic.ini at the top of the worktree")
            # The job venv's alembic, not one earlier on PATH (Godel's own, say) beside other packages.
            exe = shutil.which("alembic", path=self.path)
            argv = [python, "-m", "alembic"] if venv and python else [exe] if exe else None
            if argv is None:
                return skipped("migrate", kind, reason, "alembic is not on PATH")
            return self.run("migrate", kind, [*argv, "upgrade", "head"], reason)
        if kind == "django":
            if not (self.worktree / "manage.py").is_file():
                return skipped("migrate", kind, reason, "no manage.py at the top of the worktree")
            if python is None:
                return skipped("migrate", kind, reason, "python3 is not on PATH")
            return self.run("migrate", kind, [python, "manage.py", "migrate", "--noinput"], reason)
        return skipped("migrate", kind, reason, f"Godel does not apply {kind} migrations")


_UNTRACKED = ("--no-optional-locks", "ls-files", "-z", "--others", "--exclude-standard")
_BUT_NODE_MODULES = ("--", ".", ":(exclude)node_modules")


def _untracked(worktree: Path) -> set[str]:
    return {p for p in git(worktree, *_UNTRACKED, "--directory", *_BUT_NODE_MODULES).split("\0") if p}


def _remove_litter(worktree: Path, before: set[str]) -> None:
    for relative in sorted(_untracked(worktree) - before):
        path = worktree / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _inherit_site_packages(python: str) -> None:
    """Let the job's venv see Godel's own packages (pytest, coverage) after its own.

    ``--system-site-packages`` reaches the base interpreter only; when Godel
    itself runs in a venv, the tools the Reviewer needs live there. A ``.pth``
    line appends that directory, so the project's own installs still win.
    """
    own = sysconfig.get_paths()["purelib"]
    target = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True)
    if target.returncode == 0 and target.stdout.strip() and target.stdout.strip() != own:
        Path(target.stdout.strip(), "godel-host.pth").write_text(own + "\n")
