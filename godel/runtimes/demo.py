"""The ``demo`` runtime: an offline stand-in for a model, labelled as such.

It calls no model. It does deterministic work you can inspect on the job's
branch: the Coordinator writes the plan, each Worker writes notes for its
subtasks, and Reviewers record the result of the repository's own checks,
which the review step really ran. ``make demo`` uses it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from godel.runtimes.base import AgentRequest, AgentResult

STEP_SECONDS = 1.0
"""Pause per step, so live progress is visible to a person watching."""
BANNER = "Written by Godel's offline demo runtime: no model was called."


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _subtask_lines(subtasks: list[dict[str, Any]]) -> str:
    return "\n".join(f"- **{s.get('title', '')}**: {s.get('description', '')}" for s in subtasks) or "- (none)"


class DemoRuntime:
    name = "demo"

    def unavailable(self) -> str | None:
        return None

    def run(self, request: AgentRequest) -> AgentResult:
        time.sleep(STEP_SECONDS)
        if reason := request.should_stop():
            return AgentResult(ok=False, summary=f"stopped: {reason}", data={"stopped": reason})
        notes = Path(request.worktree) / ".godel" / request.job_id
        opts = request.options
        if request.role == "coordinator":
            plan = opts.get("plan", {})
            lines = [
                f"- {agent}: {', '.join(s.get('title', '') for s in subtasks)}"
                for agent, subtasks in plan.get("assignments", {}).items()
            ]
            _write(
                notes / "plan.md", f"# Plan\n\n{BANNER}\n\n{opts.get('intent_text', '')}\n\n" + "\n".join(lines) + "\n"
            )
            summary = f"planned {sum(len(v) for v in plan.get('assignments', {}).values())} subtasks"
        elif request.role in ("reviewer", "security_reviewer"):
            checks = opts.get("checks", [])
            failed = [c for c in checks if not c.get("passed")]
            body = "\n".join(f"- `{c['command']}`: {'passed' if c.get('passed') else 'FAILED'}" for c in checks)
            _write(
                notes / f"{request.agent}.md",
                f"# Review\n\n{BANNER}\n\n{body or '- no checks found in this repository'}\n",
            )
            verdict = "approved" if not failed else f"rejected: {len(failed)} check(s) failed"
            return AgentResult(summary=verdict, data={"approved": not failed}, provider="demo", model="demo")
        else:
            subtasks = opts.get("subtasks", [])
            _write(notes / f"{request.agent}.md", f"# {request.agent}\n\n{BANNER}\n\n{_subtask_lines(subtasks)}\n")
            summary = f"wrote notes for {len(subtasks)} subtask(s)"
        request.progress(summary)
        return AgentResult(summary=summary, provider="demo", model="demo")
