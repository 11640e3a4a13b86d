"""The shape of an intent template, checked strictly so a typo in YAML fails at load time.

A template tells a team how to carry out one kind of intent: the static
decomposition the Coordinator falls back on when no model is configured, the
prompt each role receives, the commands the Reviewer may run and the checklist
the Security Reviewer works through.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from godel.intents.schema import IntentKind, Role

PROMPT_FIELDS = frozenset(
    {
        "intent_text",
        "feature",
        "requirements",
        "subtask_title",
        "subtask_description",
        "job_id",
        "role",
    }
)
"""The only ``{placeholders}`` a prompt may use; literal braces are written ``{{`` and ``}}``."""


def _placeholders(text: str) -> Iterator[str]:
    # Recurse into format specs so "{feature:{width}}" cannot smuggle in an unknown field.
    for _, name, spec, _ in string.Formatter().parse(text):
        if name is not None:
            yield name
        if spec:
            yield from _placeholders(spec)


def _check_prompt(text: str) -> str:
    try:
        names = list(_placeholders(text))
    except ValueError as exc:
        raise PydanticCustomError(
            "prompt_format",
            f"not a valid format string ({exc}); write literal braces as {{{{ }}}}",
        ) from None
    for name in names:
        # Attribute and index access ("{feature.x}", "{requirements[0]}") is refused too:
        # values are plain strings and a template must not reach into objects.
        if name not in PROMPT_FIELDS:
            allowed = ", ".join(sorted(PROMPT_FIELDS))
            raise PydanticCustomError("prompt_field", f"unknown prompt field {{{name}}}; allowed: {allowed}")
    try:
        # A trial render catches what parse() lets through, e.g. "{feature!z}" or "{feature:d}".
        text.format(**dict.fromkeys(PROMPT_FIELDS, ""))
    except (ValueError, TypeError) as exc:
        raise PydanticCustomError("prompt_format", f"cannot be rendered: {exc}") from None
    return text


PromptText = Annotated[str, Field(min_length=1), AfterValidator(_check_prompt)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Subtask(_Strict):
    """One piece of work a Worker can do on its own branch."""

    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    files: list[str] = Field(
        default_factory=list,
        description="Paths or globs the subtask is likely to touch.",
    )


class RoleSettings(_Strict):
    """Per-role runtime choice, e.g. a cheaper model for workers than for reviewers."""

    runtime: str | None = None
    model: str | None = None


class Template(_Strict):
    """One intent template, as read from ``intent_templates/<name>.yaml``."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Equals the file stem.")
    intent: IntentKind
    description: str = Field(min_length=1)
    destructive: bool = Field(False, description="Godel asks for confirmation before running it.")
    subtasks: list[Subtask] = Field(min_length=3)
    prompts: dict[Role, PromptText] = Field(default_factory=dict)
    checks: list[str] = Field(default_factory=list, description="Reviewer commands; empty: auto-detect.")
    security_checklist: list[str] = Field(default_factory=list)
    roles: dict[Role, RoleSettings] = Field(default_factory=dict)
    max_workers: int | None = Field(None, ge=1, le=32)


_GOAL = "Job {job_id}. You are the {role}.\nGoal: {intent_text}\nFeature: {feature}\nRequirements: {requirements}\n\n"

DEFAULT_PROMPTS: dict[Role, str] = {
    Role.coordinator: _GOAL + "Split the goal into independent subtasks that separate workers can do on their own "
    "branches without touching the same files. Reply with only a JSON array of objects with "
    'the keys "title", "description" and "files".',
    Role.worker: _GOAL + "Your subtask: {subtask_title}\n{subtask_description}\n\n"
    "Make only the changes this subtask needs, follow the code's existing style, add or update "
    "tests, run them, and commit with a message that says why.",
    Role.reviewer: _GOAL + "Review the combined changes against the goal: correctness, tests, readability and "
    "anything left unfinished. End with one line: VERDICT: approve or VERDICT: changes_requested.",
    Role.security_reviewer: _GOAL
    + "Review the changes for security problems: injection, broken access control, leaked "
    "secrets, unsafe deserialisation, missing input validation. Cite file and line for each "
    "finding. End with one line: VERDICT: approve or VERDICT: changes_requested.",
    Role.profiler: _GOAL + "Measure before anyone changes code: find or write a repeatable benchmark for the slow "
    "path, profile it, and report the top hotspots with numbers and the exact command used.",
    Role.optimizer: _GOAL + "Using the profiler's findings, make the smallest changes that remove the biggest "
    "hotspots without changing behaviour. Re-run the same benchmark and report before/after.",
}


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(str(v) for v in value)
    return str(getattr(value, "value", value))


def render_prompt(template: Template, role: Role | str, **fields: Any) -> str:
    """The prompt ``role`` receives; fields not given render empty, lists comma-joined.

    The Security Reviewer's prompt ends with the template's checklist and the
    Reviewer's with its checks, so template authors need not repeat them.
    """
    role = Role(role)
    unknown = set(fields) - PROMPT_FIELDS
    if unknown:
        raise TypeError(f"render_prompt() got unknown fields: {', '.join(sorted(unknown))}")
    values = {name: _as_text(fields.get(name)) for name in PROMPT_FIELDS}
    values["requirements"] = values["requirements"] or "none"
    values["role"] = values["role"] or role.value.replace("_", " ")
    text = template.prompts.get(role, DEFAULT_PROMPTS[role]).format(**values).rstrip()
    if role is Role.security_reviewer and template.security_checklist:
        text += "\n\nChecklist:\n" + "\n".join(f"- {item}" for item in template.security_checklist)
    if role is Role.reviewer and template.checks:
        text += "\n\nRun these checks:\n" + "\n".join(f"- {cmd}" for cmd in template.checks)
    return text
