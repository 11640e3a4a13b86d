"""Agent runtimes, looked up by name.

A runtime is one module with one class; adding one means adding a module and
a line to ``RUNTIMES``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from godel.errors import RuntimeNotConfigured
from godel.runtimes.base import AgentRequest, AgentResult, Runtime, Usage
from godel.runtimes.command import CommandRuntime
from godel.runtimes.demo import DemoRuntime

RUNTIMES: dict[str, Callable[[dict[str, Any]], Runtime]] = {
    "command": lambda opts: CommandRuntime(opts.get("agent_cmd")),
    "demo": lambda opts: DemoRuntime(),
}

HOW_TO_CONFIGURE = (
    "no agent runtime is configured. Choose one:\n"
    "  godel do --runtime command --agent-cmd 'your-agent --flags' \"...\"   any executable\n"
    '  godel do --runtime demo "..."                                       offline demo, no model\n'
    "or set GODEL_RUNTIME (and GODEL_AGENT_CMD) in the environment or godel.yaml."
)


def get_runtime(name: str | None, options: dict[str, Any]) -> Runtime:
    """The runtime called ``name``, checked to be usable; errors say how to fix it."""
    if not name:
        raise RuntimeNotConfigured(HOW_TO_CONFIGURE, field="runtime")
    factory = RUNTIMES.get(name)
    if factory is None:
        raise RuntimeNotConfigured(f"unknown runtime {name!r}; known: {', '.join(sorted(RUNTIMES))}", field="runtime")
    runtime = factory(options)
    if reason := runtime.unavailable():
        raise RuntimeNotConfigured(f"runtime {name!r} cannot run: {reason}", field="runtime")
    return runtime


__all__ = ["RUNTIMES", "AgentRequest", "AgentResult", "Runtime", "Usage", "get_runtime"]
