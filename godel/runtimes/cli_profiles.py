"""The ``cli:<name>`` runtimes: external coding-agent CLIs described in YAML.

A profile says how to run a tool non-interactively (binary, arguments, where
the prompt goes) and where its output keeps the final text, the tokens and the
cost, so supporting another tool is a YAML file rather than code. Profiles ship
in ``godel/runtimes/profiles``; ``profiles/*.yaml`` under ``GODEL_HOME`` add
more, and one with the same name replaces the shipped one.

Paths into JSON output are dotted (``usage.input_tokens``); ``*`` fans out over
an object's values or a list's items and ``@keys`` yields an object's keys.
Numbers found are summed, texts joined. For ``jsonl`` output ``where`` picks
the events to read and ``pick`` whether the last, first or all of them count;
for ``text`` output a ``regex`` replaces the path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from godel import pricing
from godel.config import get_settings
from godel.errors import ConfigError, RuntimeNotConfigured
from godel.runtimes.base import AgentRequest, AgentResult, Usage
from godel.runtimes.command import OUTPUT_TAIL, run_process

PREFIX = "cli:"
PLACEHOLDERS = frozenset({"prompt", "model", "worktree", "role", "agent", "job_id", "task_id"})
PROXY_PLACEHOLDERS = frozenset({"openai_base_url", "anthropic_base_url", "openai_api_key", "anthropic_api_key"})
"""What ``proxy_env`` values may hold: the metering proxy's per-turn URLs and placeholder keys."""
MODEL_ARGS = "{model_args}"
"""An ``args`` item that ``model_arg`` replaces; without it ``model_arg`` goes last."""
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

CAPTURE_VAR = "GODEL_CLI_STDOUT"
# run_process keeps only the tail of a tool's output, but the tokens and the
# final text can sit anywhere in it; the tool's stdout goes to a file instead.
# `exec` keeps the tool the process run_process stops on cancel and timeout.
_REDIRECT = 'f="$GODEL_CLI_STDOUT"; unset GODEL_CLI_STDOUT; exec "$0" "$@" >"$f"'

Scalar = str | int | float | bool


class Extract(BaseModel):
    """Where one value sits in a tool's output; a bare string is a ``path``."""

    model_config = ConfigDict(extra="forbid")

    path: list[str] = Field(default_factory=list, description="Dotted JSON paths; their values are combined.")
    regex: str | None = Field(None, description="Text output: group 1 (or the whole match) of each match.")
    where: dict[str, Scalar | list[Scalar]] = Field(
        default_factory=dict, description="JSONL: read only events whose paths hold one of these values."
    )
    pick: Literal["last", "first", "all"] = Field("last", description="Which matching events or matches count.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, (str, list)):
            value = {"path": value}
        if isinstance(value, dict) and isinstance(value.get("path"), str):
            value = {**value, "path": [value["path"]]}
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value


class Extraction(BaseModel):
    """The ``extract`` block: one ``Extract`` per value Godel records."""

    model_config = ConfigDict(extra="forbid")

    summary: Extract | None = None
    input_tokens: Extract | None = None
    output_tokens: Extract | None = None
    cost_usd: Extract | None = None
    model: Extract | None = None
    provider: Extract | None = None
    error: Extract | None = Field(None, description="A non-empty value here fails the agent.")

    def items(self) -> Iterator[tuple[str, Extract]]:
        for name in type(self).model_fields:
            spec = getattr(self, name)
            if spec is not None:
                yield name, spec


class Profile(BaseModel):
    """One agent CLI: how to call it and how to read what it printed."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Runtime name is cli:<name>.")
    description: str = ""
    binary: str = Field(min_length=1, description="Executable, looked up on PATH.")
    args: list[str] = Field(default_factory=list, description="Arguments; {prompt}, {model}, ... are filled in.")
    prompt_via: Literal["arg", "stdin"] = Field("stdin", validate_default=True)
    output: Literal["json", "jsonl", "text"] = "text"
    model_arg: list[str] = Field(default_factory=list, description="How to pass a model, e.g. [--model, '{model}'].")
    provider: str | None = Field(None, description="Price table provider when the output does not name one.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment; $VAR is expanded.")
    proxy_env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment pointing the tool at Godel's metering proxy when GODEL_PROXY_URL is set, "
        "e.g. {ANTHROPIC_BASE_URL: '{anthropic_base_url}'}.",
    )
    extract: Extraction = Field(default_factory=Extraction)

    @field_validator("args", "model_arg")
    @classmethod
    def _known_placeholders(cls, value: list[str]) -> list[str]:
        for arg in value:
            if MODEL_ARGS in arg and arg != MODEL_ARGS:
                raise ValueError(f"{MODEL_ARGS} must be an item of its own, not part of {arg!r}")
            unknown = {m for m in _PLACEHOLDER.findall(arg) if m not in PLACEHOLDERS} - {"model_args"}
            if unknown:
                known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
                raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}} in {arg!r}; known: {known}")
        return value

    @field_validator("proxy_env")
    @classmethod
    def _known_proxy_placeholders(cls, value: dict[str, str]) -> dict[str, str]:
        for name, template in value.items():
            unknown = set(_PLACEHOLDER.findall(template)) - PROXY_PLACEHOLDERS
            if unknown:
                known = ", ".join("{" + p + "}" for p in sorted(PROXY_PLACEHOLDERS))
                raise ValueError(f"{name}: unknown placeholder {{{sorted(unknown)[0]}}}; known: {known}")
        return value

    # Field validators rather than one model validator, so an error names the field it is about.
    @field_validator("prompt_via")
    @classmethod
    def _prompt_placed(cls, value: str, info: ValidationInfo) -> str:
        uses_prompt = any("{prompt}" in arg for arg in info.data.get("args", []))
        if value == "arg" and not uses_prompt:
            raise ValueError("is arg but no item of args holds {prompt}")
        if value == "stdin" and uses_prompt:
            raise ValueError("is stdin but args hold {prompt}; use prompt_via: arg")
        return value

    @field_validator("model_arg")
    @classmethod
    def _model_placed(cls, value: list[str]) -> list[str]:
        if value and not any("{model}" in arg for arg in value):
            raise ValueError("must hold {model}")
        if any(MODEL_ARGS in arg for arg in value):
            raise ValueError("cannot hold {model_args}")
        return value

    @field_validator("extract")
    @classmethod
    def _readable(cls, value: Extraction, info: ValidationInfo) -> Extraction:
        output = info.data.get("output")
        for name, spec in value.items():
            if output == "text" and (spec.path or not spec.regex):
                raise ValueError(f"{name}: text output is read with regex, not path")
            if output in ("json", "jsonl") and (spec.regex or not spec.path):
                raise ValueError(f"{name}: {output} output is read with path, not regex")
        return value


# --- loading -------------------------------------------------------------------------------------


def parse_profile(text: str, source: str, default_name: str) -> Profile:
    """Validate one profile file; errors name the file and the field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}", field="profile") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a profile is a mapping of fields", field="profile")
    data.setdefault("name", default_name)
    try:
        return Profile.model_validate(data)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "profile"
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{source}: {where}: {msg}", field=where) from None


def user_profile_dirs() -> list[Path]:
    """``profiles/`` under the configured home and under ``$GODEL_HOME``, later ones winning."""
    dirs = [get_settings().home / "profiles"]
    if env_home := os.environ.get("GODEL_HOME"):
        dirs.append(Path(env_home).expanduser().absolute() / "profiles")
    return list(dict.fromkeys(dirs))


def _sources(dirs: Sequence[Path]) -> Iterator[tuple[str, str, str]]:
    """``(text, source, stem)`` of every profile file, shipped ones first."""
    shipped = resources.files("godel.runtimes").joinpath("profiles")
    for item in sorted(shipped.iterdir(), key=lambda t: t.name):
        if item.name.endswith(".yaml"):
            yield item.read_text(), f"godel/runtimes/profiles/{item.name}", item.name.removesuffix(".yaml")
    for folder in dirs:
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                yield path.read_text(), str(path), path.stem


def load_profiles(
    dirs: Sequence[Path] | None = None, errors: dict[str, ConfigError] | None = None
) -> dict[str, Profile]:
    """Every profile by name, user files overriding shipped ones.

    A bad file raises ``ConfigError``; given ``errors``, it is recorded there
    under its file's stem instead, so a listing can show it and go on.
    """
    profiles: dict[str, Profile] = {}
    for text, source, stem in _sources(user_profile_dirs() if dirs is None else dirs):
        try:
            profile = parse_profile(text, source, stem)
        except ConfigError as exc:
            if errors is None:
                raise
            errors[stem] = exc
            continue
        profiles[profile.name] = profile
    return profiles


def cli_runtime(name: str, options: dict[str, Any]) -> CliRuntime:
    """The runtime for ``cli:<profile>``.

    Only the asked-for profile's file must be valid: a broken file elsewhere
    is reported by ``godel runtimes`` but does not stop the other tools.
    """
    errors: dict[str, ConfigError] = {}
    profiles = load_profiles(errors=errors)
    wanted = name.removeprefix(PREFIX)
    if wanted in errors:
        raise errors[wanted]
    profile = profiles.get(wanted)
    if profile is None:
        known = ", ".join(PREFIX + p for p in sorted(profiles)) or "none"
        broken = f"; unreadable: {', '.join(sorted(errors))}" if errors else ""
        raise RuntimeNotConfigured(f"unknown runtime {name!r}; CLI profiles: {known}{broken}", field="runtime")
    return CliRuntime(profile, options)


# --- reading output ------------------------------------------------------------------------------


def resolve(value: Any, path: str) -> list[Any]:
    """Every value at dotted ``path`` in ``value`` (``*`` fans out, ``@keys`` lists keys)."""
    current = [value]
    for segment in path.split("."):
        found: list[Any] = []
        for item in current:
            if segment == "*":
                found.extend(item.values() if isinstance(item, dict) else item if isinstance(item, list) else [])
            elif segment == "@keys":
                found.extend(item.keys() if isinstance(item, dict) else [])
            elif isinstance(item, dict) and segment in item:
                found.append(item[segment])
            elif isinstance(item, list) and re.fullmatch(r"-?\d+", segment) and -len(item) <= int(segment) < len(item):
                found.append(item[int(segment)])
        current = found
    return [v for v in current if v is not None]


def _json_documents(stdout: str) -> list[Any]:
    """The one JSON document a tool printed, allowing log lines before it."""
    try:
        return [json.loads(stdout)]
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    starts = [m.start() for m in re.finditer(r"^\s*[{\[]", stdout, re.MULTILINE)]
    for start in reversed(starts):
        try:
            return [decoder.raw_decode(stdout[start:].lstrip())[0]]
        except json.JSONDecodeError:
            continue
    return []


def _jsonl_documents(stdout: str) -> list[Any]:
    events = []
    for line in stdout.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # tools mix progress lines into their event stream
    return events


def _where(document: Any, where: dict[str, Scalar | list[Scalar]]) -> bool:
    for key, wanted in where.items():
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if not any(v in allowed for v in resolve(document, key)):
            return False
    return True


class Output:
    """One run's stdout, read the way its profile says."""

    def __init__(self, profile: Profile, stdout: str) -> None:
        self.profile = profile
        self.stdout = stdout
        parse = {"json": _json_documents, "jsonl": _jsonl_documents}.get(profile.output)
        self.documents = parse(stdout) if parse else []

    def values(self, spec: Extract | None) -> list[Any]:
        if spec is None:
            return []
        if spec.regex is not None:
            groups = [[m.group(1) if m.re.groups else m.group(0)] for m in re.finditer(spec.regex, self.stdout, re.M)]
        else:
            groups = [
                found
                for doc in self.documents
                if _where(doc, spec.where) and (found := [v for p in spec.path for v in resolve(doc, p)])
            ]
        chosen = {"last": groups[-1:], "first": groups[:1], "all": groups}[spec.pick]
        return [v for group in chosen for v in group]

    def number(self, spec: Extract | None) -> float | None:
        numbers = [n for v in self.values(spec) if (n := parse_number(v)) is not None]
        return sum(numbers) if numbers else None

    def text(self, spec: Extract | None, *, first: bool = False) -> str:
        texts = [str(v).strip() for v in self.values(spec) if isinstance(v, (str, int, float)) and str(v).strip()]
        return "\n".join(texts[:1] if first else texts)

    def error(self, spec: Extract | None, summary: str) -> str | None:
        """The error the tool reported; a bare ``true`` flag means the summary is the message."""
        for value in self.values(spec):
            if value is True:
                return summary or "the tool reported an error"
            if isinstance(value, str) and value.strip():
                return value.strip()
            if isinstance(value, dict) and value:
                return str(value.get("message") or json.dumps(value))
        return None

    def last_line(self) -> str:
        """Text output without a summary rule: the last line no other rule consumed."""
        rules = [re.compile(s.regex, re.M) for _, s in self.profile.extract.items() if s.regex]
        lines = [ln.strip() for ln in self.stdout.splitlines() if ln.strip()]
        lines = [ln for ln in lines if not any(r.search(ln) for r in rules)]
        return lines[-1] if lines else ""


_SUFFIX = {"k": 1e3, "m": 1e6}


def parse_number(value: Any) -> float | None:
    """A count as tools print it: ``1234``, ``"1,234"``, ``"2.3k"``, ``"$0.12"``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace(",", "").lstrip("$")
    scale = _SUFFIX.get(text[-1:], 1.0)
    try:
        return float(text.rstrip("km")) * scale
    except ValueError:
        return None


# --- what the agent said -------------------------------------------------------------------------

REPORT_KEYS = frozenset({"approved", "notes", "plan", "subtasks", "verdict"})
_VERDICT = re.compile(r"^\W*VERDICT:\s*(approved?|changes[ _]requested|reject(?:ed)?)\b", re.IGNORECASE | re.MULTILINE)
_JSON_START = re.compile(r"[{\[]")
_SCAN_CHARS = 50_000
"""Only the end of a long final message is searched for a report."""


def _top_level_json(text: str) -> list[Any]:
    """JSON objects and arrays embedded in prose, outermost only, in order."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    while (match := _JSON_START.search(text, pos)) is not None:
        try:
            value, end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            pos = match.start() + 1
            continue
        values.append(value)
        pos = end
    return values


def report_from_text(text: str) -> dict[str, Any]:
    """Structured parts of an agent's final message, for ``AgentResult.data``.

    The last JSON object holding a report key (approved, notes, plan, ...) is
    taken whole; a JSON array of ``{"title": ...}`` objects is the subtask list
    a Coordinator replies with; a ``VERDICT: approve|changes_requested`` line,
    which the Reviewer prompts ask for, sets ``approved`` when no JSON did.
    """
    tail = text[-_SCAN_CHARS:]
    data: dict[str, Any] = {}
    for value in reversed(_top_level_json(tail)):
        if isinstance(value, dict) and REPORT_KEYS & value.keys():
            data = dict(value)
            break
        if isinstance(value, list) and value and all(isinstance(v, dict) and "title" in v for v in value):
            data = {"subtasks": value}
            break
    if isinstance(data.get("approved"), str):
        # "approved": "false" must not read as a truthy approval
        data["approved"] = data["approved"].strip().lower() in ("true", "yes", "approve", "approved")
    verdicts = _VERDICT.findall(tail)
    if verdicts and "approved" not in data:
        data["approved"] = verdicts[-1].lower().startswith("approve")
    return data


# --- the runtime ---------------------------------------------------------------------------------


class CliRuntime:
    """Runs one profile's tool in the worktree through ``run_process``."""

    def __init__(self, profile: Profile, options: dict[str, Any]) -> None:
        self.profile = profile
        self.name = PREFIX + profile.name
        self.model: str | None = options.get("model") or None
        self.proxy: dict[str, Any] = options.get("proxy") or {}

    def env(self) -> dict[str, str]:
        own = {key: os.path.expandvars(value) for key, value in self.profile.env.items()}
        return {**own, **self.proxy_env()}

    def proxy_env(self) -> dict[str, str]:
        """The profile's ``proxy_env``, filled in from this turn's proxy options.

        A variable whose value the proxy lacks (a key it does not hold) is left to the tool's own setting.
        """
        filled: dict[str, str] = {}
        for name, template in self.profile.proxy_env.items():
            if self.proxy and all(self.proxy.get(p) for p in _PLACEHOLDER.findall(template)):
                filled[name] = _PLACEHOLDER.sub(lambda m: str(self.proxy[m.group(1)]), template)
        return filled

    def executable(self) -> str | None:
        return shutil.which(self.profile.binary, path=self.env().get("PATH"))

    def unavailable(self) -> str | None:
        if self.executable() is None:
            return f"binary {self.profile.binary!r} not on PATH"
        return None

    def argv(self, request: AgentRequest) -> list[str]:
        values = {
            "prompt": request.prompt,
            "model": self.model or "",
            "worktree": str(request.worktree),
            "role": request.role,
            "agent": request.agent,
            "job_id": request.job_id,
            "task_id": request.task_id,
        }

        def fill(arg: str) -> str:
            # one pass, so a prompt that contains "{model}" stays as written
            return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), arg)

        model_args = [fill(a) for a in self.profile.model_arg] if self.model else []
        argv: list[str] = []
        for arg in self.profile.args:
            argv.extend(model_args if arg == MODEL_ARGS else [fill(arg)])
        if MODEL_ARGS not in self.profile.args:
            argv.extend(model_args)
        return argv

    def run(self, request: AgentRequest) -> AgentResult:
        executable = self.executable()
        if executable is None:
            raise RuntimeNotConfigured(f"runtime {self.name!r} cannot run: {self.unavailable()}", field="runtime")
        shell = shutil.which("sh") or "/bin/sh"
        stdin_text = request.prompt if self.profile.prompt_via == "stdin" else ""
        with tempfile.TemporaryDirectory(prefix="godel-cli-") as tmp:
            captured = Path(tmp) / "stdout"
            captured.touch()
            process = run_process(
                [shell, "-c", _REDIRECT, executable, *self.argv(request)],
                request,
                stdin_text=stdin_text,
                env={**self.env(), CAPTURE_VAR: str(captured)},
            )
            stdout = captured.read_text(errors="replace")
        return self.result(stdout, process)

    def result(self, stdout: str, process: AgentResult) -> AgentResult:
        """Turn the tool's stdout and ``run_process``'s verdict into the agent's result."""
        out = Output(self.profile, stdout)
        spec = self.profile.extract
        summary = out.text(spec.summary) or (out.last_line() if self.profile.output == "text" else "")
        usage = Usage(
            input_tokens=int(out.number(spec.input_tokens) or 0), output_tokens=int(out.number(spec.output_tokens) or 0)
        )
        model = out.text(spec.model, first=True) or self.model
        provider = out.text(spec.provider, first=True) or self.profile.provider
        data = report_from_text(summary)
        cost = out.number(spec.cost_usd)
        if cost is None:
            estimate = pricing.estimate(provider, model, usage.input_tokens, usage.output_tokens)
            cost = estimate.usd
            if not estimate.priced:
                data["cost_unknown"] = True
        error = out.error(spec.error, summary)
        stopped = process.data.get("stopped")
        ok = process.exit_code == 0 and not error and not stopped
        if stopped:
            data["stopped"] = stopped
            summary = process.summary
        elif error:
            data["error"] = error
            summary = f"{error}: {summary}" if summary and error not in summary else error
        elif not ok:
            summary = summary or process.summary or f"{self.profile.binary} exited with {process.exit_code}"
        return AgentResult(
            ok=ok,
            summary=summary,
            usage=usage,
            cost_usd=max(cost, 0.0),
            provider=provider,
            model=model,
            exit_code=process.exit_code,
            output=(stdout + ("\n" + process.output if process.output.strip() else ""))[-OUTPUT_TAIL:],
            data=data,
        )
