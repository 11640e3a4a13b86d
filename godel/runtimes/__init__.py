"""Agent runtimes, looked up by name.

A runtime is one module with one class; adding one means adding a module and
a line to ``RUNTIMES``. Names with a family prefix (``cli:<profile>``) are
resolved by that family, so a new agent CLI needs only a YAML profile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from godel.errors import ConfigError, GodelError, RuntimeNotConfigured
from godel.runtimes.base import AgentRequest, AgentResult, Runtime, Usage
from godel.runtimes.cli_profiles import PREFIX as CLI_PREFIX
from godel.runtimes.cli_profiles import CliRuntime, cli_runtime, load_profiles
from godel.runtimes.command import CommandRuntime
from godel.runtimes.demo import DemoRuntime
from godel.runtimes.openai import OpenAIRuntime

RUNTIMES: dict[str, Callable[[dict[str, Any]], Runtime]] = {
    "command": lambda opts: CommandRuntime(opts.get("agent_cmd")),
    "demo": lambda opts: DemoRuntime(),
    "openai": lambda opts: OpenAIRuntime(opts),
}

FAMILIES: dict[str, Callable[[str, dict[str, Any]], Runtime]] = {
    CLI_PREFIX: cli_runtime,
}
"""Name prefixes whose members are found at lookup time (profiles can be added without code)."""

DESCRIPTIONS = {
    "command": "any executable (--agent-cmd or GODEL_AGENT_CMD)",
    "demo": "offline demo, calls no model",
    "openai": "OpenAI-compatible chat-completions server (GODEL_OPENAI_*)",
}

HOW_TO_CONFIGURE = (
    "no agent runtime is configured. Choose one:\n"
    "  godel do --runtime command --agent-cmd 'your-agent --flags' \"...\"   any executable\n"
    '  godel do --runtime cli:claude "..."                                 an agent CLI (godel runtimes lists them)\n'
    '  godel do --runtime openai "..."                                     an OpenAI-compatible server\n'
    '  godel do --runtime demo "..."                                       offline demo, no model\n'
    "or set GODEL_RUNTIME (and GODEL_AGENT_CMD) in the environment or godel.yaml."
)


def _build(name: str, options: dict[str, Any]) -> Runtime:
    factory = RUNTIMES.get(name)
    if factory is not None:
        return factory(options)
    for prefix, family in FAMILIES.items():
        if name.startswith(prefix):
            return family(name, options)
    profiles = ", ".join(CLI_PREFIX + p for p in sorted(load_profiles(errors={})))
    known = ", ".join(sorted(RUNTIMES)) + (f", {profiles}" if profiles else "")
    raise RuntimeNotConfigured(f"unknown runtime {name!r}; known: {known}", field="runtime")


def get_runtime(name: str | None, options: dict[str, Any]) -> Runtime:
    """The runtime called ``name``, checked to be usable; errors say how to fix it."""
    if not name:
        raise RuntimeNotConfigured(HOW_TO_CONFIGURE, field="runtime")
    runtime = _build(name, options)
    if reason := runtime.unavailable():
        raise RuntimeNotConfigured(f"runtime {name!r} cannot run: {reason}", field="runtime")
    return runtime


def _row(name: str, reason: str | None, description: str | None) -> dict[str, Any]:
    return {"name": name, "available": reason is None, "reason": reason, "description": description}


def describe_runtimes(options: dict[str, Any]) -> list[dict[str, Any]]:
    """Every runtime with whether it can run here and why not, for ``godel runtimes``.

    A broken profile is listed with its error instead of hiding the others.
    """
    rows: list[dict[str, Any]] = []
    for name, factory in RUNTIMES.items():
        try:
            reason = factory(options).unavailable()
        except GodelError as exc:
            reason = str(exc)
        rows.append(_row(name, reason, DESCRIPTIONS.get(name)))
    errors: dict[str, ConfigError] = {}
    profiles = load_profiles(errors=errors)
    for name in sorted(set(profiles) | set(errors)):
        if name in errors:
            rows.append(_row(CLI_PREFIX + name, str(errors[name]), None))
        else:
            profile = profiles[name]
            rows.append(_row(CLI_PREFIX + name, CliRuntime(profile, options).unavailable(), profile.description))
    return rows


__all__ = [
    "FAMILIES",
    "RUNTIMES",
    "AgentRequest",
    "AgentResult",
    "Runtime",
    "Usage",
    "describe_runtimes",
    "get_runtime",
]
