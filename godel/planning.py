"""The Coordinator's plan: read from a model's reply, validated, dealt to the makers.

A model-backed Coordinator must return a JSON plan (a list of subtasks, or an
object with ``subtasks``); an invalid one is retried once with the error, then
the job fails with the reason. Runtimes that are not models (``demo``,
``command``) may return a plan; when they do not, the template's static
decomposition stands.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from godel.runtimes import AgentResult

MAX_SUBTASKS = 50
PLAN_OPTIONAL_RUNTIMES = frozenset({"demo", "command"})
"""Runtimes that are not models: their Coordinator may leave the static plan in place."""
_JSON_BLOCK = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


class PlannedSubtask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1)
    files: list[str] = Field(default_factory=list)
    acceptance: list[str] = Field(default_factory=list, description="Checks that prove the subtask done.")


class Plan(BaseModel):
    subtasks: list[PlannedSubtask] = Field(min_length=1, max_length=MAX_SUBTASKS)


class PlanError(ValueError):
    """The Coordinator's reply holds no valid plan; the message says what is wrong."""


def _candidates(result: AgentResult) -> list[Any]:
    if "plan" in result.data:
        return [result.data["plan"]]
    if "subtasks" in result.data:
        return [{"subtasks": result.data["subtasks"]}]
    found: list[Any] = []
    for text in (result.summary, result.output):
        for chunk in [*_JSON_BLOCK.findall(text or ""), text or ""]:
            chunk = chunk.strip()
            start = min((i for i in (chunk.find("["), chunk.find("{")) if i >= 0), default=-1)
            if start < 0:
                continue
            try:
                value = json.JSONDecoder().raw_decode(chunk[start:])[0]
            except json.JSONDecodeError:
                continue
            # Other JSON in a reply (a usage report, say) is not a plan.
            if isinstance(value, list) or (isinstance(value, dict) and {"subtasks", "plan"} & set(value)):
                found.append(value)
    return found


def read_plan(result: AgentResult) -> Plan | None:
    """The plan in a Coordinator's result; None when it offers none; PlanError when it is invalid."""
    candidates = _candidates(result)
    if not candidates:
        return None
    errors = []
    for value in candidates:
        data = value if isinstance(value, dict) else {"subtasks": value}
        if isinstance(data, dict) and "plan" in data and "subtasks" not in data:
            data = {"subtasks": data["plan"]}
        try:
            return Plan.model_validate(data)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            errors.append(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    raise PlanError("; ".join(errors[:3]))


def assign(subtasks: list[dict[str, Any]], makers: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Deal subtasks round-robin; makers left without one cross-check the others' work."""
    assignments: dict[str, list[dict[str, Any]]] = {name: [] for name in makers}
    for index, subtask in enumerate(subtasks):
        assignments[makers[index % len(makers)]].append(subtask)
    for name in makers:
        if not assignments[name]:
            assignments[name].append(
                {"title": "Cross-check", "description": "Review and complete the other subtasks' work.", "files": []}
            )
    return assignments
