"""What every agent runtime receives and returns."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field


@dataclass
class AgentRequest:
    """One step of one agent: the prompt, the worktree it may change, its limits."""

    job_id: str
    task_id: str
    agent: str
    role: str
    prompt: str
    worktree: Path
    timeout: float
    options: dict[str, Any] = field(default_factory=dict)
    should_stop: Callable[[], str | None] = lambda: None
    """Returns a reason (cancelled, timed out) when the step must stop now."""
    progress: Callable[[str], None] = lambda message: None
    extra_env: dict[str, str] = field(default_factory=dict)
    """Laid over the process environment: the job's dependency venv, a metering proxy's URL."""

    def env(self) -> dict[str, str]:
        return {
            **self.extra_env,
            "GODEL_ROLE": self.role,
            "GODEL_JOB_ID": self.job_id,
            "GODEL_TASK_ID": self.task_id,
            "GODEL_AGENT": self.agent,
            "GODEL_WORKTREE": str(self.worktree),
        }


def untrusted_environ() -> dict[str, str]:
    """The worker's environment minus Godel's own ``GODEL_*`` settings, for agents and repo checks.

    Agents and a repository's test suite run code Godel did not write; the
    broker and database URLs (with their passwords) and Godel's keys are not
    theirs to read. What an agent needs from Godel is added back explicitly.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith("GODEL_")}


class Usage(BaseModel):
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)


class AgentResult(BaseModel):
    """What an agent reports; extra keys of its final JSON land in ``data``."""

    ok: bool = True
    summary: str = ""
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = Field(0.0, ge=0)
    provider: str | None = None
    model: str | None = None
    exit_code: int | None = None
    output: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class Runtime(Protocol):
    """An agent implementation. ``unavailable()`` says why it cannot run here, or None."""

    name: str

    def unavailable(self) -> str | None: ...

    def run(self, request: AgentRequest) -> AgentResult: ...
