"""Intent templates and team building: what a job's agents are told and how many there are."""

from godel.intents.vocabulary import PERFORMANCE_REQUIREMENTS, SECURITY_REQUIREMENTS
from godel.templates.loader import (
    INTENT_TEMPLATES,
    get_template,
    load_templates,
    parse_template,
    template_for,
)
from godel.templates.schema import (
    DEFAULT_PROMPTS,
    PROMPT_FIELDS,
    RoleSettings,
    Subtask,
    Template,
    render_prompt,
)
from godel.templates.teams import MAX_WORKERS, agent_names, build_team

__all__ = [
    "DEFAULT_PROMPTS",
    "INTENT_TEMPLATES",
    "MAX_WORKERS",
    "PERFORMANCE_REQUIREMENTS",
    "PROMPT_FIELDS",
    "SECURITY_REQUIREMENTS",
    "RoleSettings",
    "Subtask",
    "Template",
    "agent_names",
    "build_team",
    "get_template",
    "load_templates",
    "parse_template",
    "render_prompt",
    "template_for",
]
