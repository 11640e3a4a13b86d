"""The ``command`` runtime: any executable plays the agent.

The prompt arrives on stdin, the role and ids in the environment, and the
worktree is the working directory. A final stdout line holding a JSON object
(``summary``, ``usage``, ``cost_usd`` and anything else) is what Godel records.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any

from pydantic import ValidationError

from godel.errors import RuntimeNotConfigured
from godel.runtimes.base import AgentRequest, AgentResult, untrusted_environ

OUTPUT_TAIL = 4000
"""Characters of an agent's output kept with its result."""
POLL_SECONDS = 0.5
"""How often a running agent is checked for cancellation and timeout."""


def final_json(stdout: str) -> dict[str, Any] | None:
    """The last stdout line that parses as a JSON object, if any."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def result_from(stdout: str, stderr: str, exit_code: int) -> AgentResult:
    report = final_json(stdout) or {}
    known = {k: report.pop(k) for k in ("summary", "usage", "cost_usd", "provider", "model") if k in report}
    tail = (stdout + ("\n" + stderr if stderr.strip() else ""))[-OUTPUT_TAIL:]
    try:
        result = AgentResult(ok=exit_code == 0, exit_code=exit_code, output=tail, data=report, **known)
    except ValidationError as exc:
        return AgentResult(
            ok=False, exit_code=exit_code, output=tail, summary=f"bad final JSON line: {exc.errors()[0]['msg']}"
        )
    if not result.summary:
        lines = [ln for ln in stdout.strip().splitlines() if ln.strip() and not ln.strip().startswith("{")]
        result.summary = lines[-1][:500] if lines else ("" if exit_code == 0 else stderr.strip()[-500:])
    return result


def run_process(argv: list[str], request: AgentRequest, *, stdin_text: str, env: dict[str, str]) -> AgentResult:
    """Run ``argv`` in the worktree, stopping it on cancel or timeout; shared by CLI runtimes."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            argv,
            cwd=request.worktree,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            env={**untrusted_environ(), **env, **request.env()},
            text=True,
            start_new_session=True,  # so a stop kills the agent's children too
        )
        try:
            assert proc.stdin is not None
            proc.stdin.write(stdin_text)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + request.timeout
        reason = None
        while proc.poll() is None:
            reason = request.should_stop() or ("timed out" if time.monotonic() > deadline else None)
            if reason:
                _kill(proc)
                break
            time.sleep(POLL_SECONDS)
        out.seek(0)
        err.seek(0)
        result = result_from(out.read(), err.read(), proc.wait())
    if reason:
        result.ok = False
        result.data["stopped"] = reason
        result.summary = f"stopped: {reason}"
    return result


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


PROXY_URLS = ("openai_base_url", "anthropic_base_url")
"""Proxy options a command agent gets as GODEL_PROXY_OPENAI_BASE_URL and GODEL_PROXY_ANTHROPIC_BASE_URL."""


class CommandRuntime:
    name = "command"

    def __init__(self, command: str | None) -> None:
        self.command = command

    def unavailable(self) -> str | None:
        if not self.command:
            return "no command: pass --agent-cmd CMD or set GODEL_AGENT_CMD"
        return None

    def check(self) -> None:
        """Fail before enqueuing when the command cannot be found."""
        if reason := self.unavailable():
            raise RuntimeNotConfigured(reason, field="agent_cmd")

    def run(self, request: AgentRequest) -> AgentResult:
        self.check()
        assert self.command
        shell = shutil.which("sh") or "/bin/sh"
        # Opt-in for the agent: send model calls here and the proxy meters them (and its own
        # reported cost is then skipped); OPENAI_BASE_URL is not overridden behind its back.
        routed = request.options.get("proxy") or {}
        env = {f"GODEL_PROXY_{key.upper()}": str(routed[key]) for key in PROXY_URLS if routed.get(key)}
        return run_process([shell, "-c", self.command], request, stdin_text=request.prompt, env=env)
