"""Shipped templates load, broken ones fail with file and field named, and the CLI renders them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from godel.cli.templates import templates as templates_cli
from godel.config import get_settings
from godel.errors import NotFound, TemplateError
from godel.intents.schema import IntentKind, Role
from godel.templates import (
    DEFAULT_PROMPTS,
    INTENT_TEMPLATES,
    Template,
    get_template,
    load_templates,
    render_prompt,
    template_for,
)

pytestmark = pytest.mark.unit

SHIPPED = {
    "feature-implementation",
    "bug-fix",
    "refactoring",
    "testing",
    "security-audit",
    "performance-optimization",
    "review",
    "deploy",
    "documentation",
}


def _valid(name: str = "custom", **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": name,
        "intent": "fix_bug",
        "description": "A test template.",
        "subtasks": [{"title": f"Step {i}", "description": f"Do step {i}."} for i in range(3)],
        "prompts": {"worker": "Do {subtask_title} for {feature} in job {job_id}."},
    }
    data.update(changes)
    return data


def _write(directory: Path, name: str, data: object) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def _error(tmp_path: Path) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        load_templates(tmp_path)
    return info.value


# --- shipped templates -------------------------------------------------------


def test_all_nine_shipped_templates_load() -> None:
    templates = load_templates()
    assert set(templates) == SHIPPED
    assert {t.intent for t in templates.values()} == set(IntentKind)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_template_is_complete(name: str) -> None:
    template = get_template(name)
    assert template.name == name
    assert len(template.subtasks) >= 3
    assert {Role.coordinator, Role.worker, Role.reviewer} <= set(template.prompts)
    for role in Role:
        prompt = render_prompt(
            template,
            role,
            intent_text="do it",
            feature="thing",
            requirements=["input_validation"],
            subtask_title="Step",
            subtask_description="Details",
            job_id="job-1",
        )
        assert prompt and "{" not in prompt.replace("{{", "")


def test_only_deploy_is_destructive() -> None:
    assert [t.name for t in load_templates().values() if t.destructive] == ["deploy"]


@pytest.mark.parametrize("name", ["security-audit", "feature-implementation"])
def test_security_templates_have_checklists(name: str) -> None:
    checklist = " ".join(get_template(name).security_checklist).lower()
    for topic in ("csrf", "parameterised", "escaped", "logged", "authorization"):
        assert topic in checklist


def test_template_for_every_intent() -> None:
    for intent in IntentKind:
        template = template_for(intent)
        assert template.intent is intent
        assert template.name == INTENT_TEMPLATES[intent]


def test_shipped_templates_are_cached() -> None:
    assert load_templates()["bug-fix"] is load_templates()["bug-fix"]


def test_get_template_unknown_lists_names() -> None:
    with pytest.raises(NotFound) as info:
        get_template("nope")
    assert "nope" in str(info.value) and "bug-fix" in str(info.value)


# --- render_prompt -------------------------------------------------------------


def test_render_prompt_fills_fields_and_defaults() -> None:
    template = Template.model_validate(_valid())
    text = render_prompt(template, "worker", subtask_title="Fix login", feature="auth", job_id="j9")
    assert text == "Do Fix login for auth in job j9."
    fallback = render_prompt(template, Role.reviewer, intent_text="fix it", requirements=[])
    assert "fix it" in fallback and "Requirements: none" in fallback
    assert DEFAULT_PROMPTS[Role.reviewer].split("\n")[0].startswith("Job")


def test_render_prompt_appends_checklist_and_checks() -> None:
    template = Template.model_validate(_valid(security_checklist=["CSRF tokens on forms"], checks=["pytest -q"]))
    assert render_prompt(template, Role.security_reviewer).endswith("- CSRF tokens on forms")
    assert render_prompt(template, Role.reviewer).endswith("- pytest -q")
    assert "CSRF" not in render_prompt(template, Role.worker)


def test_render_prompt_keeps_literal_braces() -> None:
    template = Template.model_validate(_valid(prompts={"worker": "Return {{json}} for {feature}"}))
    assert render_prompt(template, Role.worker, feature="x") == "Return {json} for x"


def test_render_prompt_rejects_unknown_field() -> None:
    template = Template.model_validate(_valid())
    with pytest.raises(TypeError, match="bogus"):
        render_prompt(template, Role.worker, bogus=1)


# --- broken templates in an extra dir ----------------------------------------


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "custom", "name: custom\nsubtasks: [unclosed\n")
    error = _error(tmp_path)
    assert str(path) in error.message and "invalid YAML" in error.message and "line" in error.message


def test_not_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "custom", "- just\n- a list\n")
    assert str(path) in _error(tmp_path).message


def test_missing_field_names_field_path(tmp_path: Path) -> None:
    data = _valid()
    data["subtasks"] = [
        {"description": "no title"},
        {"title": "b", "description": "c"},
        {"title": "d", "description": "e"},
    ]
    path = _write(tmp_path, "custom", data)
    error = _error(tmp_path)
    assert error.message.startswith(f"{path}: subtasks.0.title: Field required")
    assert error.field == "subtasks.0.title"


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "custom", _valid(promts={}))
    error = _error(tmp_path)
    assert str(path) in error.message and "promts" in error.message and "Extra inputs" in error.message


def test_unknown_nested_key_is_rejected(tmp_path: Path) -> None:
    _write(tmp_path, "custom", _valid(roles={"worker": {"runtime": "demo", "modle": "x"}}))
    assert _error(tmp_path).field == "roles.worker.modle"


def test_unknown_prompt_field_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "custom", _valid(prompts={"reviewer": "Check {feature} and {branch}"}))
    error = _error(tmp_path)
    assert str(path) in error.message and "prompts.reviewer" in error.message and "{branch}" in error.message


@pytest.mark.parametrize("prompt", ["Unclosed {feature", "{feature.upper}", "{}", "{feature!z}"])
def test_malformed_prompt_is_rejected(tmp_path: Path, prompt: str) -> None:
    _write(tmp_path, "custom", _valid(prompts={"worker": prompt}))
    assert _error(tmp_path).field == "prompts.worker"


def test_unknown_role_in_prompts(tmp_path: Path) -> None:
    _write(tmp_path, "custom", _valid(prompts={"janitor": "hi"}))
    assert "prompts.janitor" in _error(tmp_path).message


def test_wrong_intent_value(tmp_path: Path) -> None:
    path = _write(tmp_path, "custom", _valid(intent="fix_bugs"))
    error = _error(tmp_path)
    assert str(path) in error.message and error.field == "intent" and "fix_bug" in error.message


def test_too_few_subtasks(tmp_path: Path) -> None:
    _write(tmp_path, "custom", _valid(subtasks=[{"title": "a", "description": "b"}]))
    assert _error(tmp_path).field == "subtasks"


def test_name_must_match_file_stem(tmp_path: Path) -> None:
    path = _write(tmp_path, "custom", _valid(name="other"))
    error = _error(tmp_path)
    assert str(path) in error.message and error.field == "name"


def test_missing_extra_dir(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as info:
        load_templates(tmp_path / "absent")
    assert info.value.field == "templates_dir"


# --- overrides -------------------------------------------------------------------


def test_extra_dir_overrides_by_name_and_adds(tmp_path: Path) -> None:
    _write(tmp_path, "bug-fix", _valid(name="bug-fix", description="Our own bug process."))
    _write(tmp_path, "custom", _valid())
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    templates = load_templates(tmp_path)
    assert set(templates) == SHIPPED | {"custom"}
    assert templates["bug-fix"].description == "Our own bug process."
    assert template_for(IntentKind.fix_bug, tmp_path).description == "Our own bug process."
    # The override must not leak into the cached shipped set.
    assert load_templates()["bug-fix"].description != "Our own bug process."


def test_override_with_other_intent_is_refused_by_template_for(tmp_path: Path) -> None:
    _write(tmp_path, "bug-fix", _valid(name="bug-fix", intent="deploy"))
    with pytest.raises(TemplateError) as info:
        template_for(IntentKind.fix_bug, tmp_path)
    assert info.value.field == "intent"


# --- CLI -----------------------------------------------------------------------------


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.delenv("GODEL_TEMPLATES_DIR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_cli_list_table(runner: CliRunner) -> None:
    result = runner.invoke(templates_cli, ["list"])
    assert result.exit_code == 0, result.output
    for column in ("name", "intent", "destructive", "subtasks", "description"):
        assert column in result.output
    for name in SHIPPED:
        assert name in result.output


def test_cli_list_json(runner: CliRunner) -> None:
    result = runner.invoke(templates_cli, ["list", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["name"] for r in rows} == SHIPPED
    deploy = next(r for r in rows if r["name"] == "deploy")
    assert deploy == {
        "name": "deploy",
        "intent": "deploy",
        "destructive": True,
        "subtasks": len(get_template("deploy").subtasks),
        "description": get_template("deploy").description,
    }


def test_cli_list_jsonl(runner: CliRunner) -> None:
    result = runner.invoke(templates_cli, ["list", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == len(SHIPPED)
    assert {json.loads(line)["name"] for line in lines} == SHIPPED


def test_cli_list_includes_extra_dir(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "custom", _valid())
    monkeypatch.setenv("GODEL_TEMPLATES_DIR", str(tmp_path))
    get_settings.cache_clear()
    result = runner.invoke(templates_cli, ["list", "--format", "json"])
    assert "custom" in {r["name"] for r in json.loads(result.output)}


def test_cli_show_yaml_round_trips(runner: CliRunner) -> None:
    result = runner.invoke(templates_cli, ["show", "feature-implementation"])
    assert result.exit_code == 0, result.output
    assert "  worker: |" in result.output  # prompts print as readable blocks
    assert Template.model_validate(yaml.safe_load(result.output)) == get_template("feature-implementation")


def test_cli_show_json(runner: CliRunner) -> None:
    result = runner.invoke(templates_cli, ["show", "deploy", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["name"] == "deploy" and data["destructive"] is True
    assert Template.model_validate(data) == get_template("deploy")


def test_cli_show_unknown_name_fails(runner: CliRunner) -> None:
    result = runner.invoke(templates_cli, ["show", "nope"])
    assert result.exit_code != 0
    assert isinstance(result.exception, NotFound)
    assert "bug-fix" in str(result.exception)
