"""The dependencies of the repository agents work on: detection, and check preparation.

An agent that changes a manifest or adds a migration leaves the job's shared
cache (``godel.depcache``) behind its tree, and the Reviewer's checks would then
fail for the wrong reason: ``prepare_checks`` installs and migrates in its
worktree first and reports each command it ran (or why it did not), for the
review to show.
"""

from __future__ import annotations

import configparser
import hashlib
import logging
import os
import re
import shutil
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from godel.depsteps import LOCK_NAME as LOCK_NAME
from godel.depsteps import OUTPUT_TAIL as OUTPUT_TAIL
from godel.depsteps import Kind as Kind
from godel.depsteps import StepResult as StepResult
from godel.depsteps import copy_tree as copy_tree
from godel.depsteps import file_lock as file_lock
from godel.depsteps import remaining
from godel.depsteps import run_step as run_step
from godel.depsteps import skipped as skipped
from godel.errors import RepositoryError, ValidationError
from godel.git import git

log = logging.getLogger(__name__)

INSTALL_TIMEOUT = 10 * 60
"""Seconds ``prepare_checks`` may spend in all, unless the caller gives less."""

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
        timeout = remaining(self.deadline)
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
                    shared, link, kind="install", reason="private node_modules", timeout=remaining(self.deadline)
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
