"""The structured intent: what ``godel parse`` prints and every job stores."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class IntentKind(str, Enum):
    """What the user wants done; each kind maps to one intent template."""

    implement_feature = "implement_feature"
    fix_bug = "fix_bug"
    refactor = "refactor"
    test = "test"
    review = "review"
    security_audit = "security_audit"
    optimize_performance = "optimize_performance"
    deploy = "deploy"
    document = "document"


class Complexity(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"


class Role(str, Enum):
    """An agent's part in a team; each role is a Celery task on its own queue."""

    coordinator = "coordinator"
    worker = "worker"
    reviewer = "reviewer"
    security_reviewer = "security_reviewer"
    profiler = "profiler"
    optimizer = "optimizer"


class ParsedIntent(BaseModel):
    """What the rule-based parser reads from the text alone."""

    model_config = ConfigDict(frozen=True)

    intent: IntentKind
    feature: str = Field(description="Short name of the thing to build, fix or examine.")
    requirements: list[str] = Field(default_factory=list, description="Terms of the vocabulary.")
    complexity: Complexity
    confidence: float = Field(ge=0.0, le=1.0)


class Intent(ParsedIntent):
    """A parsed intent with the team and template chosen for it."""

    team: list[Role] = Field(description="One entry per agent, coordinator first.")
    template: str
