"""Find and validate intent templates: the shipped ones, then a user's directory on top.

Errors name the file and the field path so a user can fix a template without
reading a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from godel.errors import NotFound, TemplateError
from godel.intents.schema import IntentKind
from godel.templates.schema import Template

SHIPPED_PACKAGE = "godel.intent_templates"
SUFFIXES = (".yaml", ".yml")

INTENT_TEMPLATES: dict[IntentKind, str] = {
    IntentKind.implement_feature: "feature-implementation",
    IntentKind.fix_bug: "bug-fix",
    IntentKind.refactor: "refactoring",
    IntentKind.test: "testing",
    IntentKind.security_audit: "security-audit",
    IntentKind.optimize_performance: "performance-optimization",
    IntentKind.review: "review",
    IntentKind.deploy: "deploy",
    IntentKind.document: "documentation",
}
"""The template each intent runs with; a user template of the same name replaces it."""


def _field_path(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def parse_template(text: str, source: str, stem: str) -> Template:
    """Validate one template's YAML text; ``source`` is the path shown in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TemplateError(f"{source}: invalid YAML: {where}{problem}") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{source}: expected a mapping of template fields, got {type(data).__name__}")
    try:
        template = Template.model_validate(data)
    except PydanticValidationError as exc:
        problems = [f"{_field_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        field = _field_path(exc.errors()[0]["loc"])
        raise TemplateError(f"{source}: " + "; ".join(problems), field=field) from None
    if template.name != stem:
        raise TemplateError(
            f"{source}: name: {template.name!r} must equal the file name {stem!r}",
            field="name",
        )
    return template


def _load_dir(entries: Iterable[Traversable], prefix: str) -> dict[str, Template]:
    found: dict[str, Template] = {}
    for entry in sorted(entries, key=lambda e: e.name):
        stem, dot, suffix = entry.name.rpartition(".")
        if not entry.is_file() or f"{dot}{suffix}" not in SUFFIXES:
            continue
        source = f"{prefix}/{entry.name}"
        if stem in found:
            raise TemplateError(f"{source}: a template named {stem!r} is already defined in this directory")
        found[stem] = parse_template(entry.read_text(encoding="utf-8"), source, stem)
    return found


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, Template]:
    # Shipped files never change while a process runs; a user's directory may, so it is not cached.
    return _load_dir(resources.files(SHIPPED_PACKAGE).iterdir(), "intent_templates")


def load_templates(extra_dir: Path | None = None) -> dict[str, Template]:
    """All templates by name; one in ``extra_dir`` replaces a shipped one of the same name."""
    templates = dict(_shipped())
    if extra_dir is not None:
        extra_dir = Path(extra_dir).expanduser()
        if not extra_dir.is_dir():
            raise TemplateError(
                f"{extra_dir}: templates directory does not exist",
                field="templates_dir",
            )
        templates.update(_load_dir(extra_dir.iterdir(), str(extra_dir)))
    return dict(sorted(templates.items()))


def get_template(name: str, extra_dir: Path | None = None) -> Template:
    """The template called ``name``; ``NotFound`` lists the names there are."""
    templates = load_templates(extra_dir)
    try:
        return templates[name]
    except KeyError:
        raise NotFound(
            f"no intent template named {name!r}; available: {', '.join(templates)}",
            field="template",
        ) from None


def template_for(intent: IntentKind, extra_dir: Path | None = None) -> Template:
    """The template an intent runs with (see ``INTENT_TEMPLATES``)."""
    intent = IntentKind(intent)
    template = get_template(INTENT_TEMPLATES[intent], extra_dir)
    if template.intent is not intent:
        # Only possible when a user override declares another intent under a canonical name.
        raise TemplateError(
            f"{template.name}: intent: is {template.intent.value!r} but this name is used for {intent.value!r}",
            field="intent",
        )
    return template
