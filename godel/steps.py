"""One agent's turn, independent of Celery.

Steps never raise for an agent's failure: they record it, end the job, and
return, so the rest of the canvas runs as no-ops on a finished job. A step
redelivered after a worker died starts its agent over in a fresh worktree.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from godel import budget, checks, proxy
from godel.canvas import MAKERS, REVIEWERS
from godel.context import Context
from godel.dependencies import prepare_checks
from godel.errors import GodelError
from godel.events import Event, EventType
from godel.git import branch_exists, git
from godel.intents.schema import Role
from godel.lifecycle import end_job, stop_reason
from godel.planning import PLAN_OPTIONAL_RUNTIMES, PlanError, assign, read_plan
from godel.runtimes import AgentRequest, AgentResult, get_runtime
from godel.storage.models import Agent, Cost, Job, Message, Session, utcnow
from godel.storage.store import TERMINAL
from godel.templates import Template, get_template, render_prompt
from godel.worktrees import agent_branch

PLAN_RETRIES = 1
"""Extra attempts a Coordinator gets after returning an invalid plan."""


def remaining_seconds(job: Job) -> float:
    if job.deadline is None:
        return float(job.options.get("timeout", 3600))
    return (job.deadline - utcnow()).total_seconds()


def halt(ctx: Context, job: Job) -> str | None:
    """End or skip a step whose job is finished, stopping, out of time or out of budget."""
    if job.status in TERMINAL:
        return job.status
    if reason := stop_reason(ctx, job.id):
        return reason
    if remaining_seconds(job) <= 0:
        end_job(ctx, job.id, "timed_out", error=f"timed out after {job.options.get('timeout')}s")
        return "timed_out"
    if reason := budget.exceeded(ctx, job):
        end_job(ctx, job.id, "budget_exceeded", error=reason)
        return "budget_exceeded"
    return None


def superseded(job: Job, round_: int) -> bool:
    """A task of an earlier round, left in a canvas that a revision round replaced."""
    return round_ != int(job.options.get("round", 0))


def run_agent(ctx: Context, job_id: str, name: str, task_id: str, round_: int = 0) -> dict[str, Any]:
    """One agent's whole turn: worktree, prompt, runtime, commit, records, events."""
    job = ctx.store.find_job(job_id)
    if job is None:  # a message for a job this database never had (another Godel on the broker)
        return {"agent": name, "skipped": "unknown job"}
    if superseded(job, round_):
        ctx.store.upsert_task(task_id, job_id, state="SUCCESS", result={"skipped": "superseded"})
        return {"agent": name, "skipped": "superseded"}
    agent = next(a for a in job.agents if a.name == name)
    if halted := halt(ctx, job):
        return {"agent": name, "skipped": halted}
    if ctx.store.start_job(job_id):
        ctx.emit(Event(job_id=job_id, type=EventType.job_started, state="running"))
    now = utcnow()
    ctx.store.update_agent(job_id, name, state="running", started_at=now, finished_at=None, error=None)
    ctx.store.upsert_task(task_id, job_id, state="STARTED", started_at=now, agent=name)
    ctx.emit(Event(job_id=job_id, type=EventType.agent_started, agent=name, role=agent.role, state="running"))
    try:
        outcome = Turn(ctx, job, agent, task_id).play()
    except GodelError as exc:
        outcome = {"agent": name, "ok": False, "summary": str(exc)}
    except Exception as exc:  # a bug must still end the job visibly
        outcome = {"agent": name, "ok": False, "summary": f"{type(exc).__name__}: {exc}"}
    outcome["round"] = job.options.get("round", 0)
    _record_outcome(ctx, job, agent, task_id, outcome)
    return outcome


class Turn:
    """The state of one agent's turn, so each phase is a small method."""

    def __init__(self, ctx: Context, job: Job, agent: Agent, task_id: str) -> None:
        self.ctx, self.job, self.agent, self.task_id = ctx, job, agent, task_id
        self.role = Role(agent.role)
        self.template = get_template(job.template, ctx.settings.templates_dir)
        self.worktrees = ctx.worktrees(job.repo_path)

    def play(self) -> dict[str, Any]:
        path = self.worktrees.create(self.job.id, self.agent.name, self._start_point())
        self.ctx.store.update_agent(
            self.job.id, self.agent.name, worktree=str(path), branch=agent_branch(self.job.id, self.agent.name)
        )
        self.env = self.worktrees.agent_env(self.job.id, path)
        options = self._options()
        prompt = self._prompt(options)
        check_results: list[checks.CheckResult] = []
        if self.role in REVIEWERS:
            check_results = self._prepare(path, options) + self._run_checks(path, options)
            prompt += _review_context(check_results)
        runtime_name = self._runtime_name()
        result = self._run(runtime_name, prompt, path, options)
        if self.role is Role.coordinator:
            result = self._plan(runtime_name, prompt, path, options, result)
        commit = self.worktrees.commit_all(
            path, f"godel({self.agent.name}): {(result.summary or self.role.value)[:72]}"
        )
        outcome: dict[str, Any] = {
            "agent": self.agent.name,
            "ok": result.ok,
            "summary": result.summary,
            "commit": commit,
            "stopped": result.data.get("stopped"),
            "cost_usd": result.cost_usd,
        }
        if self.role in REVIEWERS:
            outcome.update(_verdict(result, check_results))
        return outcome

    # inputs ---------------------------------------------------------------

    def _start_point(self) -> str:
        job, name = self.job, self.agent.name
        if self.role in REVIEWERS:
            return str((job.review or {}).get("candidate") or job.base_ref)
        revise_from = job.options.get("revise_from", {}).get(name)
        if revise_from:
            return str(revise_from)
        if (
            self.role in MAKERS
            and job.options.get("round")
            and branch_exists(self.worktrees.repo, agent_branch(job.id, name))
        ):
            return agent_branch(job.id, name)  # a revision builds on the agent's own work
        return str((job.plan or {}).get("commit") or job.base_ref)

    def _runtime_name(self) -> str:
        return runtime_for(self.job, self.template, self.role)

    def _options(self) -> dict[str, Any]:
        job = self.job
        role_settings = self.template.roles.get(self.role)
        subtasks = (job.plan or {}).get("assignments", {}).get(self.agent.name, [])
        return {
            **job.options,
            "model": job.options.get("model") or (role_settings.model if role_settings else None),
            "intent_text": job.text,
            "plan": job.plan,
            "subtasks": subtasks,
        }

    def _prompt(self, options: dict[str, Any]) -> str:
        subtasks = options["subtasks"]
        prompt = render_prompt(
            self.template,
            self.role,
            intent_text=self.job.text,
            feature=self.job.intent.get("feature", ""),
            requirements=", ".join(self.job.intent.get("requirements", [])) or "none",
            subtask_title="; ".join(s["title"] for s in subtasks),
            subtask_description="\n".join(f"- {s['title']}: {s['description']}" for s in subtasks),
            job_id=self.job.id,
        )
        feedback = self.job.options.get("feedback", {}).get(self.agent.name)
        if feedback and self.role in MAKERS:
            prompt += f"\n\nRevision requested. Address this feedback:\n{feedback}"
        if self.role in MAKERS and self.job.options.get("strategy") == "careful":
            prompt += "\n\nWork in small, reviewable steps and add tests for every change."
        return prompt

    def _prepare(self, path: Any, options: dict[str, Any]) -> list[checks.CheckResult]:
        """Install what changed manifests need and apply new migrations before the checks."""
        seeded = self.worktrees.dependencies(self.job.id).status()
        steps = prepare_checks(
            path,
            seeded.commit if seeded else self.job.base_ref,
            self.env,
            timeout=max(1.0, remaining_seconds(self.job)),
        )
        options["dependency_steps"] = [s.model_dump() for s in steps]
        if steps:
            self._progress(f"prepared: {', '.join(s.command for s in steps)}")
        # A failed install means the lock file is out of step with the manifest: that is a finding.
        return [
            checks.CheckResult(command=s.command, passed=s.ok, exit_code=s.exit_code, output=s.output)
            for s in steps
            if not s.skipped
        ]

    def _run_checks(self, path: Any, options: dict[str, Any]) -> list[checks.CheckResult]:
        commands = list(self.template.checks) or checks.detect(path, self.env)
        if self.role is Role.security_reviewer:
            commands += checks.security_tools(path)
        coverage = self.job.options.get("coverage")
        self._progress(f"running {len(commands)} check(s)")
        timeout = max(1.0, remaining_seconds(self.job))
        results = checks.run(commands, path, timeout=timeout, env=self.env)
        if coverage is not None and self.role is Role.reviewer:
            results.append(checks.coverage(path, float(coverage), timeout=timeout, env=self.env))
        options["checks"] = [c.model_dump() for c in results]
        return results

    # running --------------------------------------------------------------

    def _progress(self, message: str) -> None:
        self.ctx.emit(
            Event(
                job_id=self.job.id,
                type=EventType.agent_progress,
                agent=self.agent.name,
                role=self.agent.role,
                message=message,
            )
        )

    def _run(self, runtime_name: str, prompt: str, path: Any, options: dict[str, Any]) -> AgentResult:
        # With GODEL_PROXY_URL set, the runtime gets base URLs carrying a token for this turn.
        routed = proxy.runtime_options(
            self.ctx, proxy.load_proxy_settings(), self.job, self.agent.name, self.role.value
        )
        options = {**options, **routed}
        request = AgentRequest(
            job_id=self.job.id,
            task_id=self.task_id,
            agent=self.agent.name,
            role=self.role.value,
            prompt=prompt,
            worktree=path,
            timeout=max(1.0, remaining_seconds(self.job)),
            options=options,
            should_stop=lambda: stop_reason(self.ctx, self.job.id),
            progress=self._progress,
        )
        metered = 0
        try:
            result = get_runtime(runtime_name, options).run(request)
        finally:
            if routed:
                metered = proxy.retire(self.ctx, routed["proxy"]["token"])
        if metered:
            # the proxy recorded each call's cost as it ended; the runtime's own total would count it twice
            result.data[proxy.METERED_BY] = "proxy"
        _record_usage(self.ctx, self.job, self.agent, runtime_name, prompt, result)
        return result

    def _plan(
        self, runtime_name: str, prompt: str, path: Any, options: dict[str, Any], result: AgentResult
    ) -> AgentResult:
        """Validate the Coordinator's plan, asking once more when it is invalid."""
        for attempt in range(PLAN_RETRIES + 1):
            if not result.ok:
                return result
            try:
                plan = read_plan(result)
                if plan is None and runtime_name not in PLAN_OPTIONAL_RUNTIMES:
                    raise PlanError("the reply holds no JSON plan")
            except PlanError as exc:
                if attempt == PLAN_RETRIES:
                    return result.model_copy(update={"ok": False, "summary": f"invalid plan: {exc}"})
                self._progress(f"invalid plan ({exc}); asking again")
                retry = f"{prompt}\n\nYour previous plan was invalid: {exc}\nReply with only the JSON plan."
                result = self._run(runtime_name, retry, path, options)
                continue
            if plan is not None:
                self._store_plan([s.model_dump() for s in plan.subtasks], source=runtime_name)
            return result
        return result

    def _store_plan(self, subtasks: list[dict[str, Any]], *, source: str) -> None:
        makers = [a.name for a in self.job.agents if Role(a.role) in MAKERS]
        plan = {
            **(self.job.plan or {}),
            "source": source,
            "subtasks": subtasks,
            "assignments": assign(subtasks, makers),
        }
        self.ctx.store.update_job(self.job.id, plan=plan)
        self.job.plan = plan
        self.ctx.emit(
            Event(
                job_id=self.job.id,
                type=EventType.plan_ready,
                agent=self.agent.name,
                message=f"{len(subtasks)} subtasks",
                data={"source": source, "subtasks": len(subtasks)},
            )
        )


def runtime_for(job: Job, template: Template, role: Role) -> str:
    """``godel do --runtime`` wins; else the template's choice for the role; else the job's."""
    if job.options.get("runtime_override"):
        return job.runtime
    role_settings = template.roles.get(role)
    return (role_settings.runtime if role_settings else None) or job.runtime


def _verdict(result: AgentResult, check_results: list[checks.CheckResult]) -> dict[str, Any]:
    approved = result.ok and result.data.get("approved") is not False and all(c.passed for c in check_results)
    return {
        "checks": [c.model_dump() for c in check_results],
        "approved": approved,
        "notes": result.data.get("notes") or result.summary,
        "workers": result.data.get("workers"),  # the agents a rejection names, if the reviewer said
        # A rejection is a verdict, not a failure; only a stopped reviewer fails.
        "ok": not (not result.ok and result.data.get("stopped")),
    }


def _review_context(results: list[checks.CheckResult]) -> str:
    lines = ["", "", "Checks Godel ran on the merged result:"]
    lines += [f"- {r.command}: {'passed' if r.passed else 'FAILED'}\n{r.output[-800:]}" for r in results] or [
        "- none found"
    ]
    return "\n".join(lines)


def _record_usage(ctx: Context, job: Job, agent: Agent, runtime: str, prompt: str, result: AgentResult) -> None:
    session = Session(id=uuid.uuid4().hex[:16], job_id=job.id, agent=agent.name, runtime=runtime, model=result.model)
    ctx.store.add_session(
        session,
        [
            Message(role="user", content=prompt),
            Message(
                role="assistant",
                content=result.output or result.summary,
                input_tokens=result.usage.input_tokens,
                output_tokens=result.usage.output_tokens,
                tool_calls=result.data.get("tool_calls"),
            ),
        ],
    )
    if result.data.get(proxy.METERED_BY) == "proxy":
        return
    if not (result.cost_usd or result.usage.input_tokens or result.usage.output_tokens):
        return
    cost = Cost(
        job_id=job.id,
        agent=agent.name,
        role=agent.role,
        provider=result.provider,
        model=result.model,
        input_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
        cost_usd=result.cost_usd,
    )
    budget.charge(ctx, cost, job)


def _record_outcome(ctx: Context, job: Job, agent: Agent, task_id: str, outcome: dict[str, Any]) -> None:
    stopped = outcome.get("stopped")
    state = "succeeded" if outcome.get("ok") else (str(stopped) if stopped else "failed")
    finished = utcnow()
    ctx.store.update_agent(
        job.id,
        agent.name,
        state=state,
        finished_at=finished,
        summary=outcome.get("summary"),
        error=None if outcome.get("ok") else outcome.get("summary"),
    )
    ctx.store.upsert_task(
        task_id, job.id, state="SUCCESS" if outcome.get("ok") else "FAILURE", finished_at=finished, result=outcome
    )
    ctx.emit(
        Event(
            job_id=job.id,
            type=EventType.agent_finished,
            agent=agent.name,
            role=agent.role,
            state=state,
            message=outcome.get("summary"),
            data={k: v for k, v in outcome.items() if k != "checks"},
        )
    )
    if stopped:
        end_job(ctx, job.id, "timed_out" if stopped in ("timed out", "timed_out") else str(stopped))
    elif not outcome.get("ok"):
        end_job(ctx, job.id, "failed", error=f"{agent.name} failed: {outcome.get('summary')}")


def tracked(
    ctx: Context, job_id: str, task_id: str, step: Callable[[Context, str], dict[str, Any]], round_: int = 0
) -> dict[str, Any]:
    """Run a bookkeeping step with its task row kept current; a crash fails the job."""
    job = ctx.store.find_job(job_id)
    if job is None:
        return {"skipped": "unknown job"}
    if superseded(job, round_):
        ctx.store.upsert_task(task_id, job_id, state="SUCCESS", result={"skipped": "superseded"})
        return {"skipped": "superseded"}
    ctx.store.upsert_task(task_id, job_id, state="STARTED", started_at=utcnow())
    try:
        result = step(ctx, job_id)
    except Exception as exc:
        ctx.store.upsert_task(task_id, job_id, state="FAILURE", finished_at=utcnow(), error=str(exc))
        end_job(ctx, job_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    ctx.store.upsert_task(task_id, job_id, state="SUCCESS", finished_at=utcnow(), result=result)
    return result


def changed_files(job: Job, sha: str) -> list[str]:
    return [f for f in git(job.repo_path, "diff", "--name-only", job.base_ref, sha).splitlines() if f]
