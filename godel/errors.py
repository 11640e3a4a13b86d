"""One error family for Godel.

Every failure a user can cause or meet is a ``GodelError``. The CLI maps them
to exit codes and the API to HTTP statuses from the attributes below, in one
place each, so a new error only needs a class here.
"""

from __future__ import annotations


class GodelError(Exception):
    """Base class of every error Godel raises on purpose."""

    exit_code = 1
    http_status = 500
    code = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        if self.field and self.field not in self.message:
            return f"{self.field}: {self.message}"
        return self.message


class ValidationError(GodelError):
    """Input (CLI option, request body, template, config) is not acceptable."""

    exit_code = 2
    http_status = 422
    code = "invalid"


class ConfigError(ValidationError):
    """Settings or ``godel.yaml`` hold a value Godel cannot use."""

    code = "config"


class TemplateError(ValidationError):
    """An intent template file is malformed; the message names file and field."""

    code = "template"


class IntentError(ValidationError):
    """An intent text cannot be parsed into something Godel can run."""

    code = "intent"


class RepositoryError(ValidationError):
    """The target directory is not a usable git repository."""

    code = "repository"


class NotFound(GodelError):
    """A job, agent, template or key does not exist."""

    exit_code = 4
    http_status = 404
    code = "not_found"


class Conflict(GodelError):
    """The operation does not fit the object's current state."""

    exit_code = 5
    http_status = 409
    code = "conflict"


class RuntimeNotConfigured(GodelError):
    """No agent runtime is configured, or the chosen one cannot run here."""

    exit_code = 3
    http_status = 422
    code = "runtime"


class ServiceUnavailable(GodelError):
    """Redis, the database or the workers cannot be reached."""

    exit_code = 6
    http_status = 503
    code = "unavailable"


class AgentFailed(GodelError):
    """An agent's runtime exited badly or produced unusable output."""

    code = "agent_failed"


class GitError(GodelError):
    """A git command Godel ran failed."""

    code = "git"


class BudgetExceeded(GodelError):
    """A job's budget or the daily budget is spent."""

    exit_code = 7
    http_status = 402
    code = "budget"


class Unauthorized(GodelError):
    """No API key, or a key that is unknown, revoked or expired."""

    exit_code = 9
    http_status = 401
    code = "unauthorized"


class Forbidden(GodelError):
    """A valid API key without the scope the operation needs."""

    exit_code = 9
    http_status = 403
    code = "forbidden"
