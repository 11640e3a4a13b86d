"""A small HTTP client for the Godel API: what the CLI uses when ``GODEL_API_URL`` is set.

It offers the job operations of the CLI (submit, list, get, cancel, rollback,
events) and returns the API's JSON as dicts, whose keys match what the local
commands print. Error responses become the same ``GodelError`` classes the
local code raises (found by their ``code``), so exit codes do not change when
the CLI talks to a remote server. Standard library only: the CLI must not need
an HTTP package to start.
"""

from __future__ import annotations

import builtins
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from godel import errors
from godel.config import Settings, get_settings
from godel.errors import GodelError, ServiceUnavailable, ValidationError
from godel.storage.store import TERMINAL

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = 30.0
FINISH_GRACE = 5.0
"""Seconds ``follow`` waits for ``job.finished`` after the stored status says the job ended."""


def _error_classes() -> dict[str, type[GodelError]]:
    """Every ``GodelError`` subclass by its ``code`` (``keys`` adds 401/403)."""
    from godel import keys  # noqa: F401 - registers Unauthorized and Forbidden as subclasses

    found: dict[str, type[GodelError]] = {}
    pending: list[type[GodelError]] = [errors.GodelError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def remote(settings: Settings | None = None) -> Client | None:
    """The client when ``GODEL_API_URL`` is set, else None: the one switch the CLI needs."""
    settings = settings or get_settings()
    return Client(settings.api_url, settings.api_key) if settings.api_url else None


class ApiError(GodelError):
    """An error response whose code no local class carries."""

    def __init__(self, message: str, *, status: int, code: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.http_status = status
        self.code = code


class Client:
    """Calls ``base_url`` with ``key`` (``Authorization: Bearer``) when one is given."""

    def __init__(self, base_url: str, key: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValidationError(f"{base_url!r} is not an http(s) URL", field="api_url")
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith(API_PREFIX):
            self.base_url = self.base_url[: -len(API_PREFIX)]
        self.key = key
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Client:
        """The client for ``GODEL_API_URL`` and ``GODEL_API_KEY``."""
        settings = settings or get_settings()
        if not settings.api_url:
            raise ValidationError("GODEL_API_URL is not set", field="api_url")
        return cls(settings.api_url, settings.api_key)

    # transport ----------------------------------------------------------------

    def request(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One call; the decoded JSON, or the matching ``GodelError``."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.base_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise self._error(exc.code, exc.read()) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceUnavailable(f"Godel API at {self.base_url} is unreachable: {reason}") from None
        return json.loads(raw) if raw else None

    def _error(self, status: int, raw: bytes) -> GodelError:
        try:
            detail = json.loads(raw)["error"]
            code, message, field = str(detail["code"]), str(detail["message"]), detail.get("field")
        except (ValueError, KeyError, TypeError):
            return ApiError(f"HTTP {status} from {self.base_url}", status=status, code="http_error")
        cls = _error_classes().get(code)
        if cls is None or cls.http_status != status:
            return ApiError(message, status=status, code=code, field=field)
        return cls(message, field=field)

    # jobs -----------------------------------------------------------------------

    def submit(
        self,
        text: str,
        repo: str | Path,
        *,
        runtime: str | None = None,
        agent_cmd: str | None = None,
        timeout: int | None = None,
        workers: int | None = None,
        template: str | None = None,
        require_approval: bool = False,
        confirm: bool = False,
        **options: Any,
    ) -> dict[str, Any]:
        """Submit an intent; ``repo`` is resolved here and must exist on the server too.

        ``options`` are the other ``SubmitRequest`` fields (model, budget, strategy, ...);
        the server names any it does not know in a 422.
        """
        body = {
            **{k: v for k, v in options.items() if v is not None},
            "text": text,
            "repo": str(Path(repo).expanduser().resolve()),
            "runtime": runtime,
            "agent_cmd": agent_cmd,
            "timeout": timeout,
            "workers": workers,
            "template": template,
            "require_approval": require_approval,
            "confirm": confirm,
        }
        job: dict[str, Any] = self.request("POST", f"{API_PREFIX}/jobs", body=body)
        return job

    def list(
        self, *, status: str | None = None, intent: str | None = None, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        """One page: ``{"items", "total", "limit", "offset"}``, newest first."""
        params = {"status": status, "intent": intent, "limit": limit, "offset": offset}
        page: dict[str, Any] = self.request("GET", f"{API_PREFIX}/jobs", params=params)
        return page

    def get(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.request("GET", f"{API_PREFIX}/jobs/{urllib.parse.quote(job_id)}")
        return job

    def cancel(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.request("POST", f"{API_PREFIX}/jobs/{urllib.parse.quote(job_id)}/cancel")
        return job

    def approve(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.request("POST", f"{API_PREFIX}/jobs/{urllib.parse.quote(job_id)}/approve")
        return job

    def reject(self, job_id: str, reason: str | None = None) -> dict[str, Any]:
        path = f"{API_PREFIX}/jobs/{urllib.parse.quote(job_id)}/reject"
        job: dict[str, Any] = self.request("POST", path, body={"reason": reason})
        return job

    def rollback(self, job_id: str) -> dict[str, Any]:
        """``{"job_id", "status", "undone"}``: a line per thing undone."""
        result: dict[str, Any] = self.request("POST", f"{API_PREFIX}/jobs/{urllib.parse.quote(job_id)}/rollback")
        return result

    def tasks(self, job_id: str) -> builtins.list[dict[str, Any]]:
        """The job's Celery tasks (what ``godel show`` lists)."""
        page: dict[str, Any] = self.request("GET", f"{API_PREFIX}/jobs/{urllib.parse.quote(job_id)}/tasks")
        items: builtins.list[dict[str, Any]] = page["items"]
        return items

    def costs(self, job_id: str) -> dict[str, Any]:
        """``{"items", "total_usd", "input_tokens", "output_tokens"}``."""
        costs: dict[str, Any] = self.request("GET", f"{API_PREFIX}/jobs/{urllib.parse.quote(job_id)}/costs")
        return costs

    def events(self, job_id: str, after: str = "0", limit: int = 500) -> dict[str, Any]:
        """``{"items", "last_id"}``: the job's events after stream id ``after``."""
        params = {"after": after, "limit": limit}
        page: dict[str, Any] = self.request(
            "GET", f"{API_PREFIX}/jobs/{urllib.parse.quote(job_id)}/events", params=params
        )
        return page

    def follow(self, job_id: str, after: str = "0", *, poll: float = 1.0) -> Iterator[dict[str, Any]]:
        """Yield the job's events as they come, ending with its ``job.finished`` event.

        The job's status is stored a moment before that event is published, so a
        finished status alone does not end the stream; only if the event never
        shows (a trimmed stream) does a finished status end it after a grace period.
        """
        quiet_since: float | None = None
        while True:
            page = self.events(job_id, after)
            for item in page["items"]:
                yield item
                if item["type"] == "job.finished":
                    return
            after = page["last_id"]
            if page["items"]:
                quiet_since = None
                continue
            if self.get(job_id)["status"] in TERMINAL:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > FINISH_GRACE:
                    return
            time.sleep(poll)
