"""``--strategy careful|fast``: the same intent, more or less process around it.

careful: an extra Reviewer, one subtask per Worker (smaller pieces), and the
job pauses for approval before merging. fast: no Coordinator (the template's
plan is used as is) and at most one general Reviewer; a Security Reviewer the
intent called for is kept, since speed is no reason to skip it.
"""

from __future__ import annotations

from typing import Literal

from godel.intents.schema import Role
from godel.templates import MAX_WORKERS, Template

Strategy = Literal["careful", "fast"]


def apply(team: list[Role], strategy: Strategy | None, template: Template, *, workers_fixed: bool) -> list[Role]:
    if strategy == "careful":
        team = list(team)
        if not workers_fixed:
            extra = min(len(template.subtasks), template.max_workers or MAX_WORKERS) - team.count(Role.worker)
            team[team.index(Role.worker) + 1 : team.index(Role.worker) + 1] = [Role.worker] * max(0, extra)
        if Role.coordinator not in team:
            team.insert(0, Role.coordinator)
        position = max((i for i, r in enumerate(team) if r is Role.reviewer), default=len(team) - 1) + 1
        team.insert(position, Role.reviewer)
        return team
    if strategy == "fast":
        team = [r for r in team if r is not Role.coordinator]
        reviewers = [i for i, r in enumerate(team) if r is Role.reviewer]
        return [r for i, r in enumerate(team) if i not in reviewers[1:]]
    return team
