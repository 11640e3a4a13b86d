"""The one typed settings object, read once per process.

Values come, highest first, from ``GODEL_*`` environment variables, then the
first ``godel.yaml`` found (``$GODEL_CONFIG``, ``./godel.yaml``,
``$GODEL_HOME/godel.yaml``), then the defaults below. ``godel config`` prints
the resolved values and where each default is documented.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from godel.errors import ConfigError

DEFAULT_HOME = Path("~/.godel")
"""Where Godel keeps its SQLite database, worktrees, logs and its own Redis."""

DEFAULT_TIMEOUT = 60 * 60
"""Seconds a job may run before it ends ``timed_out``."""

DEFAULT_API_PORT = 7373
"""Port of ``godel serve`` (REST, Socket.IO and the dashboard)."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr)?\s*$", re.IGNORECASE)
_ORIGIN = re.compile(r"^https?://[^/\s]+$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}


def parse_duration(value: str | int | float, *, field: str = "timeout") -> int:
    """Turn ``90``, ``90s``, ``45m`` or ``2h`` into whole seconds (bare numbers are seconds)."""
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not match:
            raise ConfigError(f"{value!r} is not a duration such as 90s, 45m or 2h", field=field)
        number, unit = match.groups()
        seconds = float(number) * _UNIT_SECONDS[(unit or "s").lower()]
    if seconds <= 0:
        raise ConfigError("must be greater than zero", field=field)
    return int(seconds)


def _config_files() -> list[Path]:
    explicit = os.environ.get("GODEL_CONFIG")
    if explicit:
        return [Path(explicit).expanduser()]
    home = Path(os.environ.get("GODEL_HOME", str(DEFAULT_HOME))).expanduser()
    return [Path.cwd() / "godel.yaml", home / "godel.yaml"]


DEFAULT_OPENAI_UPSTREAM = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_UPSTREAM = "https://api.anthropic.com"


class OpenAISettings(BaseModel):
    """``GODEL_OPENAI_<NAME>`` (or ``openai:`` in godel.yaml): the ``openai`` runtime's server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(None, description="Server root ending in /v1, e.g. https://api.openai.com/v1.")
    api_key: SecretStr | None = Field(None, description="Sent as a Bearer token; optional for loopback servers.")
    model: str | None = Field(None, description="Default model; the job's model option wins.")
    provider: str | None = Field(None, description="Price table provider; default guessed from the host.")
    request_timeout: float = Field(120.0, gt=0, description="Seconds to wait for one HTTP answer.")
    max_retries: int = Field(4, ge=0, le=20, description="Retries after HTTP 429 and 5xx.")
    backoff_seconds: float = Field(1.0, ge=0, description="First retry pause without Retry-After; doubles.")


class ProxySettings(BaseModel):
    """``GODEL_PROXY_<NAME>`` (or ``proxy:`` in godel.yaml): the metering proxy of ``godel serve``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        None,
        description="The proxy as agents reach it, ending in /proxy (e.g. http://127.0.0.1:7373/proxy). "
        "Set: runtimes that take a base URL send their model calls through it.",
    )
    openai_upstream: str = Field(DEFAULT_OPENAI_UPSTREAM, description="OpenAI-compatible server, ending in /v1.")
    anthropic_upstream: str = Field(DEFAULT_ANTHROPIC_UPSTREAM, description="Anthropic API root, without /v1.")
    openai_api_key: SecretStr | None = Field(None, description="Sent upstream when the client sends no key.")
    anthropic_api_key: SecretStr | None = Field(None, description="Sent upstream when the client sends no key.")
    openai_provider: str | None = Field(
        None, description="Price-table provider of the OpenAI upstream; default: by host, else by model name."
    )
    anthropic_provider: str | None = Field(None, description="Price-table provider of the Anthropic upstream.")
    timeout: float = Field(600.0, gt=0, description="Seconds to wait for the upstream to connect or send more.")
    max_request_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Largest request body accepted.")

    @field_validator("url", "openai_upstream", "anthropic_upstream", mode="after")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/")


class Settings(BaseSettings):
    """Everything Godel can be configured with; each field is ``GODEL_<NAME>``."""

    # GODEL_PROXY_URL fills proxy.url: one split at the first "_" after the prefix reaches a group.
    model_config = SettingsConfigDict(
        env_prefix="GODEL_", extra="forbid", env_nested_delimiter="_", env_nested_max_split=1
    )

    home: Path = Field(DEFAULT_HOME, description="State directory (database, worktrees, logs).")
    redis_url: str | None = Field(
        None,
        description="Broker and event bus. Unset: a Redis on 127.0.0.1:6379 if one answers, "
        "else one Godel starts under GODEL_HOME.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL. Unset: SQLite at GODEL_HOME/godel.db. postgresql:// URLs use psycopg 3.",
    )
    api_url: str | None = Field(None, description="Talk to a remote Godel API instead of local services.")
    api_key: str | None = Field(None, description="Key sent to GODEL_API_URL.")
    runtime: str | None = Field(None, description="Default agent runtime (command, demo, ...).")
    agent_cmd: str | None = Field(None, description="Command run by the `command` runtime.")
    timeout: int = Field(DEFAULT_TIMEOUT, description="Default job timeout in seconds (or 45m, 2h).")
    worker_concurrency: int = Field(8, ge=1, le=512, description="Agent slots per `godel up` worker.")
    worker_pool: Literal["prefork", "threads"] = Field(
        "prefork", description="Celery pool of `godel up` workers (prefork redelivers a killed task at once)."
    )
    daily_budget: float | None = Field(None, gt=0, description="USD all jobs together may spend per UTC day.")
    dependency_cache: bool = Field(True, description="Seed one venv / node_modules per job and share it.")
    openai: OpenAISettings = Field(default_factory=OpenAISettings, description="The `openai` runtime.")
    proxy: ProxySettings = Field(default_factory=ProxySettings, description="The metering proxy.")
    templates_dir: Path | None = Field(None, description="Extra intent templates; same names override.")
    api_host: str = Field("127.0.0.1", description="Address `godel serve` binds.")
    api_port: int = Field(DEFAULT_API_PORT, ge=1, le=65535, description="Port `godel serve` binds.")
    auth: bool | None = Field(None, description="API keys on/off. Unset: off on a loopback address, on otherwise.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins allowed to call the API from a browser; '*' alone allows any "
        "origin without credentials.",
    )
    rate_limit: int = Field(600, ge=0, description="API requests per minute per key (per address without auth).")
    max_request_bytes: int = Field(1024 * 1024, ge=1024, description="Largest API request body (413 above).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = [p for p in _config_files() if p.is_file()]
        yaml_sources = [YamlConfigSettingsSource(settings_cls, yaml_file=files[0])] if files else []
        return (init_settings, env_settings, *yaml_sources)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins", mode="after")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        if "*" in value and len(value) > 1:
            raise ValueError("'*' cannot be combined with other origins")
        for origin in value:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin such as https://example.com:8443")
        return [origin.rstrip("/") for origin in value]

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> int:
        return parse_duration(value)

    @field_validator("database_url", mode="after")
    @classmethod
    def _psycopg(cls, value: str | None) -> str | None:
        if not value:
            return None
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        if not value.startswith(("postgresql+psycopg://", "sqlite:")):
            raise ValueError("use a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @field_validator("redis_url", mode="after")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("use a redis://, rediss:// or unix:// URL")
        return value or None

    @property
    def db_url(self) -> str:
        """The database URL in use: the configured one or SQLite under ``home``."""
        return self.database_url or f"sqlite:///{self.home / 'godel.db'}"

    @property
    def run_dir(self) -> Path:
        """Pid files, logs and the state of processes ``godel up`` started."""
        return self.home / "run"

    @property
    def worktrees_dir(self) -> Path:
        return self.home / "worktrees"


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's error into a ``ConfigError`` naming the field."""
    try:
        return Settings(**overrides)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = "_".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"GODEL_{field.upper()}: {first['msg']}", field=field) from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests call ``get_settings.cache_clear()``."""
    return load_settings()
