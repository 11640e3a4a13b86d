"""Settings: sources, validation, and the errors a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from godel.config import load_settings, parse_duration
from godel.errors import ConfigError

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("GODEL_HOME", "GODEL_REDIS_URL", "GODEL_DATABASE_URL", "GODEL_TIMEOUT", "GODEL_RUNTIME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GODEL_CONFIG", str(tmp_path / "absent.yaml"))


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("45m", 2700), ("2h", 7200), ("1.5h", 5400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5m", "0", "5d"])
def test_bad_durations_name_the_field(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(text)
    assert info.value.field == "timeout"


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GODEL_HOME", str(tmp_path))
    settings = load_settings()
    assert settings.db_url == f"sqlite:///{tmp_path / 'godel.db'}"
    assert settings.redis_url is None and settings.timeout == 3600 and settings.api_port == 7373


def test_env_wins_over_yaml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "godel.yaml"
    config.write_text("runtime: demo\ntimeout: 45m\ndatabase_url: postgresql://u@db/godel\n")
    monkeypatch.setenv("GODEL_CONFIG", str(config))
    monkeypatch.setenv("GODEL_TIMEOUT", "2h")
    settings = load_settings()
    assert settings.runtime == "demo"
    assert settings.timeout == 7200
    assert settings.database_url == "postgresql+psycopg://u@db/godel"


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("redis_url: http://x\n", "redis_url"),
        ("database_url: mysql://x\n", "database_url"),
        ("worker_concurrency: 0\n", "worker_concurrency"),
        ("runtim: demo\n", "runtim"),
    ],
)
def test_bad_config_names_the_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, yaml_text: str, field: str
) -> None:
    config = tmp_path / "godel.yaml"
    config.write_text(yaml_text)
    monkeypatch.setenv("GODEL_CONFIG", str(config))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.field == field
    assert field.upper() in str(info.value)
