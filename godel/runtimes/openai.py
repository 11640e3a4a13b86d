"""The ``openai`` runtime: a model behind any OpenAI-compatible chat-completions server.

For a model with no coding-agent CLI in front of it (OpenAI, vLLM, Ollama,
LM Studio, llama.cpp, gateways), Godel plays the agent loop itself: the model
gets four tools confined to its worktree and is called until it answers
without a tool call, the step limit is reached, or the job is stopped. Plain
HTTP from the standard library, so no SDK and no new dependency.
"""

from __future__ import annotations

import dataclasses
import email.utils
import ipaddress
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from godel import pricing
from godel.config import OpenAISettings, get_settings
from godel.errors import RuntimeNotConfigured, ValidationError
from godel.runtimes.base import AgentRequest, AgentResult, Usage
from godel.runtimes.cli_profiles import report_from_text
from godel.runtimes.command import OUTPUT_TAIL, run_process

DEFAULT_MAX_STEPS = 20
"""Model calls per agent turn; each may run several tools."""
MAX_READ_CHARS = 100_000
"""Characters of a file read_file returns, so one file cannot fill the context."""
MAX_LIST_ENTRIES = 500
COMMAND_TIMEOUT = 120.0
MAX_COMMAND_TIMEOUT = 600.0
MAX_RETRY_DELAY = 60.0
"""Longest pause between retries, whatever Retry-After asks."""
SLEEP_SLICE = 0.1
"""Retry pauses are cut into slices so a cancel is noticed quickly."""

SYSTEM_PROMPT = (
    "You are a coding agent working in a git worktree. Use the tools to read, change and test the files; "
    "paths are relative to the worktree root. When you are done, reply without calling a tool: a short "
    "summary of what you changed and why, followed by anything the task asks you to reply with."
)


def load_openai_settings() -> OpenAISettings:
    return get_settings().openai


_HOST_PROVIDERS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "google",
}


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def provider_for(base_url: str | None) -> str | None:
    """The price table provider a server's host implies.

    None (any other host, loopback included, since a local proxy may forward
    to a paid API) makes pricing go by the model name alone.
    """
    if not base_url:
        return None
    return _HOST_PROVIDERS.get(urlsplit(base_url).hostname or "")


def _proxy_holds_key() -> bool:
    """Jobs' calls will go through Godel's metering proxy, which sends its own key upstream."""
    from godel.proxy import load_proxy_settings  # imported here: it brings Celery and the database along

    proxy = load_proxy_settings()
    return bool(proxy.url and proxy.openai_api_key)


# --- HTTP ----------------------------------------------------------------------------------------


class ChatError(Exception):
    """The server cannot give an answer; the message is what the user sees."""


class _Retryable(ChatError):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Stopped(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_text(body: bytes) -> str:
    text = body.decode(errors="replace").strip()
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return text[:300]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error or payload)[:300]


@dataclasses.dataclass
class ChatClient:
    """``POST /chat/completions`` with retries on 429 and 5xx; every other failure is final."""

    base_url: str
    api_key: str | None
    settings: OpenAISettings
    request: AgentRequest
    deadline: float

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                return self._post(body)
            except _Retryable as exc:
                if attempt >= self.settings.max_retries:
                    raise ChatError(f"{exc} (gave up after {attempt + 1} attempts)") from None
                delay = exc.retry_after
                if delay is None:
                    delay = self.settings.backoff_seconds * 2**attempt
                delay = min(delay, MAX_RETRY_DELAY)
                if time.monotonic() + delay > self.deadline:
                    raise ChatError(f"{exc}; no time left to retry in {delay:.0f}s") from None
                self.request.progress(f"{exc}; retrying in {delay:.1f}s")
                self._sleep(delay)
                attempt += 1

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if reason := self.request.should_stop():
                raise _Stopped(reason)
            time.sleep(min(SLEEP_SLICE, left))

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        timeout = max(0.1, min(self.settings.request_timeout, self.deadline - time.monotonic()))
        # a proxy from the environment cannot reach the caller's own loopback server
        opener = urllib.request.build_opener(
            *([urllib.request.ProxyHandler({})] if _is_loopback(self.base_url) else [])
        )
        try:
            with opener.open(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except TimeoutError:
            raise ChatError(f"no answer from {self.url} within {timeout:.0f}s (timed out)") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise ChatError(f"no answer from {self.url} within {timeout:.0f}s (timed out)") from None
            raise ChatError(f"cannot reach {self.url}: {exc.reason}") from None
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError:
            raise ChatError(f"{self.url} answered with something that is not JSON: {raw[:200]!r}") from None
        if not isinstance(payload, dict):
            raise ChatError(f"{self.url} answered with JSON that is not an object")
        return payload

    def _http_error(self, exc: urllib.error.HTTPError) -> ChatError:
        status, message = exc.code, _error_text(exc.read())
        if exc.headers.get("x-should-retry") == "false":
            # a refusal such as Godel's proxy's spent budget: asking again cannot help
            return ChatError(f"HTTP {status} from {self.url}: {message}")
        if status in (401, 403):
            key = "the key in GODEL_OPENAI_API_KEY" if self.api_key else "no API key (set GODEL_OPENAI_API_KEY)"
            return ChatError(f"HTTP {status} from {self.url}: {key} was refused: {message}")
        if status == 429:
            return _Retryable(f"rate limited (HTTP 429): {message}", _retry_after(exc.headers.get("Retry-After")))
        if status >= 500:
            return _Retryable(f"server error (HTTP {status}): {message}", _retry_after(exc.headers.get("Retry-After")))
        return ChatError(f"HTTP {status} from {self.url}: {message}")


# --- tools ---------------------------------------------------------------------------------------


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


_PATH = {"type": "string", "description": "Relative to the worktree root."}
TOOLS = [
    _tool("read_file", "Read a text file.", {"path": _PATH}, ["path"]),
    _tool(
        "write_file",
        "Create or replace a file with the given content; parent directories are created.",
        {"path": _PATH, "content": {"type": "string"}},
        ["path", "content"],
    ),
    _tool("list_files", "List files under a directory, recursively (default: the root).", {"path": _PATH}, []),
    _tool(
        "run_command",
        "Run a shell command in the worktree root; returns its exit code and the end of its output.",
        {"command": {"type": "string"}, "timeout_seconds": {"type": "number", "description": "Default 120."}},
        ["command"],
    ),
]


class ToolError(Exception):
    """A tool call the model got wrong; reported back to the model, not raised to Godel."""


class Workspace:
    """The tools' implementation, confined to one worktree.

    Absolute paths, ``..`` escapes (symlinks included, by resolving) and
    ``.git`` are refused, since the worktree's ``.git`` points into the user's
    own repository.
    """

    def __init__(self, request: AgentRequest) -> None:
        self.request = request
        self.root = Path(request.worktree).resolve()

    def path(self, raw: Any) -> Path:
        if not isinstance(raw, str) or not raw.strip():
            raise ToolError("path must be a non-empty string")
        if Path(raw).is_absolute():
            raise ToolError(f"{raw!r} is absolute; use a path relative to the worktree root")
        target = (self.root / raw).resolve()
        if not target.is_relative_to(self.root):
            raise ToolError(f"{raw!r} is outside the worktree")
        if target != self.root and target.relative_to(self.root).parts[0] == ".git":
            raise ToolError(".git is not part of the work")
        return target

    def call(self, name: str, arguments: Any) -> str:
        """Run one tool call; failures come back as ``error: ...`` text the model can act on."""
        try:
            args = json.loads(arguments or "{}") if isinstance(arguments, str) else arguments
        except json.JSONDecodeError:
            return "error: arguments are not valid JSON"
        if not isinstance(args, dict):
            return "error: arguments must be a JSON object"
        handler = {
            "read_file": self.read_file,
            "write_file": self.write_file,
            "list_files": self.list_files,
            "run_command": self.run_command,
        }.get(name)
        if handler is None:
            return f"error: unknown tool {name!r}"
        try:
            return handler(args)
        except ToolError as exc:
            return f"error: {exc}"
        except (OSError, UnicodeDecodeError) as exc:
            return f"error: {type(exc).__name__}: {exc}"

    def read_file(self, args: dict[str, Any]) -> str:
        text = self.path(args.get("path")).read_text()
        if len(text) > MAX_READ_CHARS:
            return text[:MAX_READ_CHARS] + f"\n[truncated: {len(text) - MAX_READ_CHARS} more characters]"
        return text

    def write_file(self, args: dict[str, Any]) -> str:
        content = args.get("content")
        if not isinstance(content, str):
            raise ToolError("content must be a string")
        target = self.path(args.get("path"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        return f"wrote {len(content.encode())} bytes to {target.relative_to(self.root)}"

    def list_files(self, args: dict[str, Any]) -> str:
        base = self.path(args.get("path") or ".")
        if not base.is_dir():
            raise ToolError(f"{args.get('path')!r} is not a directory")
        found: list[str] = []
        for folder, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d != ".git")
            found.extend(str((Path(folder) / f).relative_to(self.root)) for f in sorted(files))
        shown = found[:MAX_LIST_ENTRIES]
        more = f"\n[and {len(found) - len(shown)} more]" if len(found) > len(shown) else ""
        return "\n".join(shown) + more if shown else "(no files)"

    def run_command(self, args: dict[str, Any]) -> str:
        command = args.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError("command must be a non-empty string")
        try:
            wanted = float(args.get("timeout_seconds") or COMMAND_TIMEOUT)
        except (TypeError, ValueError):
            raise ToolError("timeout_seconds must be a number") from None
        timeout = max(0.1, min(wanted, MAX_COMMAND_TIMEOUT, self.request.timeout))
        # run_process kills the whole process group on timeout or cancel, and keeps the output's tail
        result = run_process(
            [shutil.which("sh") or "/bin/sh", "-c", command],
            dataclasses.replace(self.request, timeout=timeout),
            stdin_text="",
            env={},
        )
        if stopped := result.data.get("stopped"):
            reason = f"timed out after {timeout:g}s" if stopped == "timed out" else stopped
            return f"stopped: {reason}\n{result.output}"
        return f"exit code {result.exit_code}\n{result.output}"


# --- the runtime ---------------------------------------------------------------------------------


@dataclasses.dataclass
class _Turn:
    """What one agent turn has used and done so far."""

    provider: str | None
    model: str
    usage: Usage = dataclasses.field(default_factory=Usage)
    log: list[str] = dataclasses.field(default_factory=list)

    def add_usage(self, reply: dict[str, Any]) -> None:
        used = reply.get("usage") or {}
        self.usage.input_tokens += int(used.get("prompt_tokens", used.get("input_tokens", 0)) or 0)
        self.usage.output_tokens += int(used.get("completion_tokens", used.get("output_tokens", 0)) or 0)
        if isinstance(reply.get("model"), str) and reply["model"]:
            self.model = reply["model"]  # servers name the exact version, which prices better

    def result(self, ok: bool, summary: str, data: dict[str, Any] | None = None) -> AgentResult:
        data = dict(data or {})
        estimate = pricing.estimate(self.provider, self.model, self.usage.input_tokens, self.usage.output_tokens)
        if not estimate.priced:
            data["cost_unknown"] = True
        return AgentResult(
            ok=ok,
            summary=summary,
            usage=self.usage,
            cost_usd=estimate.usd,
            provider=self.provider,
            model=self.model,
            output="\n".join(self.log)[-OUTPUT_TAIL:],
            data=data,
        )


def _message(reply: dict[str, Any]) -> dict[str, Any]:
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0].get("message"), dict):
        raise ChatError(f"the answer has no choices[0].message: {json.dumps(reply)[:200]}")
    message: dict[str, Any] = choices[0]["message"]
    return message


def _max_steps(value: Any) -> int:
    try:
        steps = int(value if value is not None else DEFAULT_MAX_STEPS)
    except (TypeError, ValueError):
        raise ValidationError(f"must be a whole number, not {value!r}", field="max_steps") from None
    if steps < 1:
        raise ValidationError("must be at least 1", field="max_steps")
    return steps


class OpenAIRuntime:
    name = "openai"

    def __init__(self, options: dict[str, Any], settings: OpenAISettings | None = None) -> None:
        self.settings = settings or load_openai_settings()
        own_url: str | None = options.get("base_url") or self.settings.base_url
        # Through Godel's metering proxy the calls go to GODEL_PROXY_OPENAI_UPSTREAM.
        routed: dict[str, Any] = options.get("proxy") or {}
        self.base_url: str | None = routed.get("openai_base_url") or own_url
        self.proxy_key: str | None = routed.get("openai_api_key")
        self.model: str | None = options.get("model") or self.settings.model
        self.max_steps = _max_steps(options.get("max_steps"))
        self.provider = self.settings.provider or provider_for(own_url)

    @property
    def api_key(self) -> str | None:
        if self.proxy_key:
            return self.proxy_key  # the proxy holds the real key
        return self.settings.api_key.get_secret_value() if self.settings.api_key else None

    def unavailable(self) -> str | None:
        if not self.base_url:
            return "no base URL: set GODEL_OPENAI_BASE_URL (e.g. https://api.openai.com/v1)"
        if not self.model:
            return "no model: set GODEL_OPENAI_MODEL or pass a model"
        if not self.api_key and not _is_loopback(self.base_url) and not _proxy_holds_key():
            return "no API key: set GODEL_OPENAI_API_KEY (any value for a server that needs none)"
        return None

    def run(self, request: AgentRequest) -> AgentResult:
        if reason := self.unavailable():
            raise RuntimeNotConfigured(f"runtime 'openai' cannot run: {reason}", field="runtime")
        assert self.base_url and self.model
        deadline = time.monotonic() + request.timeout
        client = ChatClient(self.base_url, self.api_key, self.settings, request, deadline)
        turn = _Turn(provider=self.provider, model=self.model)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": request.prompt},
        ]
        try:
            return self._loop(client, Workspace(request), turn, messages, deadline)
        except _Stopped as stop:
            return turn.result(False, f"stopped: {stop.reason}", {"stopped": stop.reason})
        except ChatError as exc:
            turn.log.append(f"error: {exc}")
            return turn.result(False, str(exc), {"error": str(exc)})

    def _loop(
        self, client: ChatClient, tools: Workspace, turn: _Turn, messages: list[dict[str, Any]], deadline: float
    ) -> AgentResult:
        for step in range(1, self.max_steps + 1):
            if reason := client.request.should_stop() or ("timed out" if time.monotonic() > deadline else None):
                raise _Stopped(reason)
            reply = client.complete({"model": self.model, "messages": messages, "tools": TOOLS})
            turn.add_usage(reply)
            message = _message(reply)
            calls = message.get("tool_calls") or []
            content = message.get("content") or ""
            if not calls:
                turn.log.append(content)
                summary = content.strip() or "(the model ended without a message)"
                return turn.result(True, summary, report_from_text(content))
            messages.append({"role": "assistant", "content": content, "tool_calls": calls})
            names = []
            for call in calls:
                function = call.get("function") or {}
                names.append(name := str(function.get("name", "")))
                output = tools.call(name, function.get("arguments"))
                messages.append({"role": "tool", "tool_call_id": call.get("id", ""), "content": output})
                turn.log.append(f"{name}: {output.splitlines()[0] if output else ''}")
            client.request.progress(f"step {step}: {', '.join(names)}")
        limit = f"step limit reached: {self.max_steps} model calls without a final answer (option max_steps)"
        return turn.result(False, limit, {"error": limit})
