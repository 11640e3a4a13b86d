"""Choose how many agents of each role a parsed intent gets.

Small jobs get one worker because a coordinator and reviewer would cost more
than the change; larger ones get parallel workers and review, and security or
performance requirements bring in the specialist who checks them.
"""

from __future__ import annotations

from collections import Counter

from godel.errors import ValidationError
from godel.intents.schema import Complexity, IntentKind, ParsedIntent, Role
from godel.intents.vocabulary import PERFORMANCE_REQUIREMENTS, SECURITY_REQUIREMENTS

MAX_WORKERS = 32

_NUMBERED = frozenset({Role.worker, Role.reviewer})
"""Roles whose agents are always numbered, so "worker-1" exists even in a one-worker team."""


def _check_count(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WORKERS:
        raise ValidationError(
            f"must be a whole number from 1 to {MAX_WORKERS}, got {value!r}",
            field=field,
        )
    return value


def build_team(parsed: ParsedIntent, *, workers: int | None = None, max_workers: int | None = None) -> list[Role]:
    """One role per agent: coordinator, workers, profiler/optimizer, reviewers, security reviewer.

    ``workers`` replaces the default worker count; ``max_workers`` (a template's
    limit) caps the default and refuses a larger explicit ``workers``.
    """
    if max_workers is not None:
        _check_count(max_workers, "max_workers")
    requirements = {r.lower() for r in parsed.requirements}

    if parsed.complexity is Complexity.high:
        coordinators, count, reviewers = 1, 5, 2
    elif parsed.complexity is Complexity.medium or parsed.intent is IntentKind.implement_feature:
        coordinators, count, reviewers = 1, 3, 1
    else:
        coordinators, count, reviewers = 0, 1, 0

    if max_workers is not None:
        count = min(count, max_workers)
    if workers is not None:
        count = _check_count(workers, "workers")
        if max_workers is not None and count > max_workers:
            raise ValidationError(
                f"this template allows at most {max_workers} workers, got {count}",
                field="workers",
            )
        # Parallel workers need someone to split the work between them.
        coordinators = max(coordinators, int(count > 1))

    team = [Role.coordinator] * coordinators + [Role.worker] * count
    if parsed.intent is IntentKind.optimize_performance or requirements & PERFORMANCE_REQUIREMENTS:
        team += [Role.profiler, Role.optimizer]
    team += [Role.reviewer] * reviewers
    if parsed.intent is IntentKind.security_audit or requirements & SECURITY_REQUIREMENTS:
        team.append(Role.security_reviewer)
    return team


def agent_names(team: list[Role]) -> list[str]:
    """Stable, unique, git-branch-safe names: "coordinator", "worker-1", "security-reviewer"."""
    totals = Counter(map(Role, team))
    seen: Counter[Role] = Counter()
    names = []
    for role in map(Role, team):
        seen[role] += 1
        base = role.value.replace("_", "-")
        numbered = role in _NUMBERED or totals[role] > 1
        names.append(f"{base}-{seen[role]}" if numbered else base)
    return names
