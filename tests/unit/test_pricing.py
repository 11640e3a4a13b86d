"""Prices: prefix matching across dated model names, provider handling, user overrides, unknown models."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from godel import pricing
from godel.errors import ConfigError

pytestmark = pytest.mark.unit


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A GODEL_HOME without prices.yaml; tests that want one write it."""
    return tmp_path


def priced(provider: str | None, model: str, home: Path) -> tuple[float, float] | None:
    hit = pricing.lookup(provider, model, pricing.load_prices(home))
    return None if hit is None else (hit[1].input, hit[1].output)


@pytest.mark.parametrize(
    ("provider", "model", "rates"),
    [
        ("anthropic", "claude-sonnet-4-5-20250929", (3.0, 15.0)),
        ("anthropic", "claude-opus-4-5-20251101", (5.0, 25.0)),
        ("anthropic", "claude-opus-4-1-20250805", (15.0, 75.0)),
        ("anthropic", "claude-opus-4-20250514", (15.0, 75.0)),
        ("anthropic", "claude-haiku-4-5", (1.0, 5.0)),
        ("anthropic", "claude-3-5-haiku-20241022", (0.8, 4.0)),
        ("openai", "gpt-4o-2024-08-06", (2.5, 10.0)),
        ("openai", "gpt-4o-mini-2024-07-18", (0.15, 0.6)),
        ("openai", "gpt-4.1-nano", (0.1, 0.4)),
        ("openai", "gpt-5-codex", (1.25, 10.0)),
        ("openai", "gpt-5-mini", (0.25, 2.0)),
        ("openai", "o3-mini", (1.1, 4.4)),
        ("openai", "o4-mini-2025-04-16", (1.1, 4.4)),
        ("google", "gemini-2.5-flash-lite", (0.1, 0.4)),
        ("google", "gemini-2.5-flash", (0.3, 2.5)),
        ("gemini", "gemini-2.5-pro", (1.25, 10.0)),  # a tool's name for the provider
        (None, "gpt-4o", (2.5, 10.0)),  # no provider: found by name
        ("openrouter", "anthropic/claude-sonnet-4", (3.0, 15.0)),  # a gateway's vendor/model spelling
        ("OpenAI", "GPT-4o", (2.5, 10.0)),
        ("ollama", "qwen2.5-coder:32b", (0.0, 0.0)),
        ("vllm", "meta-llama/Llama-3.1-8B", (0.0, 0.0)),
        ("local", "anything", (0.0, 0.0)),
    ],
)
def test_longest_prefix_wins(home: Path, provider: str | None, model: str, rates: tuple[float, float]) -> None:
    assert priced(provider, model, home) == rates


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "my-finetune"),
        ("anthropic", "gpt-4o"),  # a known provider is searched alone
        (None, "my-local-model"),  # not taken for a free local model
        ("mystery", None),
        (None, None),
    ],
)
def test_unknown_models_are_not_priced(home: Path, provider: str | None, model: str | None) -> None:
    assert priced(provider, model or "", home) is None


def test_cost_and_estimate(caplog: pytest.LogCaptureFixture) -> None:
    assert pricing.cost("openai", "gpt-4o", 1_000_000, 100_000) == pytest.approx(2.5 + 1.0)
    with caplog.at_level(logging.WARNING, logger="godel.pricing"):
        unknown = pricing.estimate("openai", "gpt-unreleased-7", 1000, 1000)
        pricing.estimate("openai", "gpt-unreleased-7", 1000, 1000)
    assert unknown == pricing.Estimate(usd=0.0, priced=False)
    assert [r.getMessage() for r in caplog.records].count(
        "no price for provider=openai model=gpt-unreleased-7; cost recorded as 0.0"
    ) == 1  # warned once, not on every agent turn
    known = pricing.estimate("anthropic", "claude-sonnet-4-5", 2000, 1000)
    assert known.priced and known.entry == "anthropic/claude-sonnet-4" and known.usd == pytest.approx(0.021)


def test_user_prices_override_and_extend(home: Path) -> None:
    (home / "prices.yaml").write_text(
        "openai:\n  gpt-4o: {input: 1.0, output: 2.0}\nacme:\n  rocket-: {input: 9, output: 9}\n"
    )
    table = pricing.load_prices(home)
    assert priced("openai", "gpt-4o-2024-08-06", home) == (1.0, 2.0)
    assert priced("openai", "gpt-4o-mini", home) == (0.15, 0.6)  # the rest of the shipped table stays
    assert priced("acme", "rocket-1", home) == (9.0, 9.0)
    assert pricing.estimate("acme", "rocket-1", 1_000_000, 0, table).usd == 9.0


def test_user_prices_follow_godel_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    from godel.config import get_settings

    (home / "prices.yaml").write_text("openai:\n  gpt-4o: {input: 0, output: 0}\n")
    monkeypatch.setenv("GODEL_HOME", str(home))
    monkeypatch.setenv("GODEL_CONFIG", str(home / "absent.yaml"))
    get_settings.cache_clear()
    try:
        assert pricing.cost("openai", "gpt-4o", 1000, 1000) == 0.0
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("openai:\n  gpt-4o: {input: -1, output: 2}\n", "openai.gpt-4o.input"),
        ("openai:\n  gpt-4o: {input: 1, output: 2, cached: 0.5}\n", "openai.gpt-4o.cached"),
        ("openai:\n  gpt-4o: {input: 1}\n", "openai.gpt-4o.output"),
        ("openai: [gpt-4o]\n", "openai"),
        ("- just a list\n", "prices"),
        ("openai: {gpt-4o: [unclosed\n", "prices"),
    ],
)
def test_bad_user_prices_name_file_and_field(home: Path, text: str, field: str) -> None:
    (home / "prices.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        pricing.load_prices(home)
    assert info.value.field == field and str(home / "prices.yaml") in str(info.value)


def test_shipped_table_covers_the_families() -> None:
    table = pricing.builtin_prices()
    assert {"anthropic", "openai", "google", "local", "ollama", "vllm"} <= set(table)
    for prefix in ("claude-opus-4", "claude-sonnet-4", "claude-haiku-4", "gpt-4o", "gpt-4.1", "gpt-5", "o3", "o4-mini"):
        assert any(prefix in models for models in table.values()), prefix
    assert {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.0-flash"} <= set(table["google"])
