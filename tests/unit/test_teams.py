"""Team sizes follow the documented rules, and agent names are stable and branch-safe."""

from __future__ import annotations

import re

import pytest

from godel.errors import ValidationError
from godel.intents.schema import Complexity, IntentKind, ParsedIntent, Role
from godel.templates import MAX_WORKERS, agent_names, build_team

pytestmark = pytest.mark.unit

C, W, R, S, P, O = (  # noqa: E741
    Role.coordinator,
    Role.worker,
    Role.reviewer,
    Role.security_reviewer,
    Role.profiler,
    Role.optimizer,
)


def parsed(
    intent: IntentKind = IntentKind.fix_bug,
    complexity: Complexity = Complexity.low,
    requirements: tuple[str, ...] = (),
) -> ParsedIntent:
    return ParsedIntent(
        intent=intent,
        feature="thing",
        requirements=list(requirements),
        complexity=complexity,
        confidence=0.9,
    )


@pytest.mark.parametrize(
    "intent",
    [
        k
        for k in IntentKind
        if k
        not in (
            IntentKind.implement_feature,
            IntentKind.security_audit,
            IntentKind.optimize_performance,
        )
    ],
)
def test_low_complexity_is_one_worker(intent: IntentKind) -> None:
    assert build_team(parsed(intent)) == [W]


def test_low_feature_gets_full_team() -> None:
    assert build_team(parsed(IntentKind.implement_feature)) == [C, W, W, W, R]


@pytest.mark.parametrize("intent", [IntentKind.fix_bug, IntentKind.implement_feature, IntentKind.document])
def test_medium_is_coordinator_three_workers_reviewer(intent: IntentKind) -> None:
    assert build_team(parsed(intent, Complexity.medium)) == [C, W, W, W, R]


@pytest.mark.parametrize("intent", [IntentKind.fix_bug, IntentKind.implement_feature])
def test_high_is_coordinator_five_workers_two_reviewers(intent: IntentKind) -> None:
    assert build_team(parsed(intent, Complexity.high)) == [C, W, W, W, W, W, R, R]


@pytest.mark.parametrize(
    "requirement",
    [
        "authentication",
        "authorization",
        "csrf_protection",
        "xss_protection",
        "sql_injection_protection",
        "input_validation",
        "encryption",
    ],
)
def test_each_security_requirement_adds_security_reviewer(requirement: str) -> None:
    assert build_team(parsed(requirements=(requirement,))) == [W, S]


def test_low_plus_security_is_worker_and_security_reviewer() -> None:
    assert build_team(parsed(requirements=("authentication", "csrf_protection"))) == [
        W,
        S,
    ]


def test_security_audit_intent_adds_one_security_reviewer() -> None:
    assert build_team(parsed(IntentKind.security_audit)) == [W, S]
    assert build_team(parsed(IntentKind.security_audit, Complexity.medium, ("encryption",))) == [C, W, W, W, R, S]


def test_performance_requirement_adds_profiler_and_optimizer() -> None:
    assert build_team(parsed(requirements=("performance",))) == [W, P, O]


def test_optimize_performance_intent() -> None:
    assert build_team(parsed(IntentKind.optimize_performance)) == [W, P, O]
    assert build_team(parsed(IntentKind.optimize_performance, Complexity.medium)) == [
        C,
        W,
        W,
        W,
        P,
        O,
        R,
    ]


def test_high_plus_performance() -> None:
    assert build_team(parsed(IntentKind.refactor, Complexity.high, ("performance",))) == [
        C,
        W,
        W,
        W,
        W,
        W,
        P,
        O,
        R,
        R,
    ]


def test_high_plus_security_and_performance_orders_roles() -> None:
    team = build_team(parsed(IntentKind.implement_feature, Complexity.high, ("caching", "authorization")))
    assert team == [C, W, W, W, W, W, P, O, R, R, S]


def test_requirements_are_case_insensitive_and_unknown_ignored() -> None:
    assert build_team(parsed(requirements=("Authentication", "pagination"))) == [W, S]


def test_workers_override_replaces_count() -> None:
    assert build_team(parsed(IntentKind.fix_bug, Complexity.high), workers=2) == [
        C,
        W,
        W,
        R,
        R,
    ]
    assert build_team(parsed(IntentKind.implement_feature), workers=1) == [C, W, R]
    assert build_team(parsed(), workers=1) == [W]
    assert build_team(parsed(), workers=MAX_WORKERS).count(W) == MAX_WORKERS


def test_workers_override_on_low_task_adds_coordinator() -> None:
    assert build_team(parsed(requirements=("encryption",)), workers=3) == [
        C,
        W,
        W,
        W,
        S,
    ]


@pytest.mark.parametrize("bad", [0, -1, MAX_WORKERS + 1, 2.5, True, "3"])
def test_bad_workers_override(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        build_team(parsed(), workers=bad)  # type: ignore[arg-type]
    assert info.value.field == "workers"


def test_max_workers_caps_default() -> None:
    assert build_team(parsed(IntentKind.deploy, Complexity.high), max_workers=1) == [
        C,
        W,
        R,
        R,
    ]


def test_workers_over_max_workers_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        build_team(parsed(), workers=4, max_workers=2)
    assert info.value.field == "workers"


def test_bad_max_workers() -> None:
    with pytest.raises(ValidationError) as info:
        build_team(parsed(), max_workers=0)
    assert info.value.field == "max_workers"


# --- agent names -------------------------------------------------------------------


def test_agent_names_full_team() -> None:
    team = [C, W, W, W, W, W, P, O, R, R, S]
    assert agent_names(team) == [
        "coordinator",
        "worker-1",
        "worker-2",
        "worker-3",
        "worker-4",
        "worker-5",
        "profiler",
        "optimizer",
        "reviewer-1",
        "reviewer-2",
        "security-reviewer",
    ]


def test_agent_names_single_worker_is_numbered() -> None:
    assert agent_names([W]) == ["worker-1"]
    assert agent_names([C, W, R]) == ["coordinator", "worker-1", "reviewer-1"]


def test_agent_names_are_stable_unique_and_branch_safe() -> None:
    for complexity in Complexity:
        for intent in IntentKind:
            team = build_team(parsed(intent, complexity, ("authentication", "performance")))
            names = agent_names(team)
            assert names == agent_names(list(team))
            assert len(names) == len(set(names)) == len(team)
            assert all(re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", n) for n in names)


def test_agent_names_numbers_repeated_unnumbered_roles() -> None:
    assert agent_names([S, S]) == ["security-reviewer-1", "security-reviewer-2"]
