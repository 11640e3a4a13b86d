"""From text to a runnable intent: parse, pick the template, build the team."""

from __future__ import annotations

from pathlib import Path

from godel.intents.parser import parse_text
from godel.intents.schema import Intent
from godel.templates import build_team, get_template, template_for


def analyse(
    text: str, *, workers: int | None = None, template: str | None = None, extra_dir: Path | None = None
) -> Intent:
    parsed = parse_text(text)
    chosen = get_template(template, extra_dir) if template else template_for(parsed.intent, extra_dir)
    team = build_team(parsed, workers=workers, max_workers=chosen.max_workers)
    return Intent(**parsed.model_dump(), team=team, template=chosen.name)
