"""Token prices, so every runtime turns usage into dollars the same way.

Budgets and the cost columns need a number even when a tool reports only
tokens. The table ships as ``godel/prices.yaml`` (USD per 1M tokens, keyed by
provider and model-name prefix); ``$GODEL_HOME/prices.yaml`` overrides or
extends it entry by entry. An unpriced model costs 0.0 and is logged once, and
``estimate`` says so, so callers can flag the number instead of trusting it.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from godel.config import get_settings
from godel.errors import ConfigError

log = logging.getLogger(__name__)

WILDCARD = "*"
"""A table key that prices every model of its provider (local servers)."""

PROVIDER_ALIASES = {"gemini": "google", "claude": "anthropic", "azure": "openai", "lmstudio": "local"}
"""Names tools use for a provider that the table files under another."""


class Price(BaseModel):
    """USD per 1M tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)


PriceTable = dict[str, dict[str, Price]]


@dataclass(frozen=True)
class Estimate:
    usd: float
    priced: bool
    """False when no table entry matched: ``usd`` is 0.0 and should not be trusted."""
    entry: str | None = None
    """``provider/prefix`` of the entry used."""


def _parse(data: Any, source: str) -> PriceTable:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of provider to models", field="prices")
    table: PriceTable = {}
    for provider, models in data.items():
        if not isinstance(models, dict):
            raise ConfigError(f"{source}: {provider}: expected a mapping of model prefix to prices", field=provider)
        for prefix, price in models.items():
            try:
                table.setdefault(str(provider).lower(), {})[str(prefix).lower()] = Price.model_validate(price)
            except PydanticValidationError as exc:
                err = exc.errors()[0]
                where = ".".join([str(provider), str(prefix), *(str(p) for p in err["loc"])])
                raise ConfigError(f"{source}: {where}: {err['msg']}", field=where) from None
    return table


def _read(path: Path) -> PriceTable:
    try:
        return _parse(yaml.safe_load(path.read_text()), str(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}", field="prices") from None


@functools.lru_cache(maxsize=1)
def builtin_prices() -> PriceTable:
    """The table shipped with Godel (read once; it cannot change under a running process)."""
    text = resources.files("godel").joinpath("prices.yaml").read_text()
    return _parse(yaml.safe_load(text), "godel/prices.yaml")


def load_prices(home: Path | None = None) -> PriceTable:
    """Shipped prices with ``<home>/prices.yaml`` laid over them, read fresh so edits apply at once."""
    if home is None:
        home = get_settings().home
    table = {provider: dict(models) for provider, models in builtin_prices().items()}
    user = home / "prices.yaml"
    if user.is_file():
        for provider, models in _read(user).items():
            table.setdefault(provider, {}).update(models)
    return table


def _best(models: dict[str, Price], model: str, *, wildcard: bool) -> tuple[str, Price] | None:
    matches = [prefix for prefix in models if prefix != WILDCARD and model.startswith(prefix)]
    if matches:
        prefix = max(matches, key=len)
        return prefix, models[prefix]
    if wildcard and WILDCARD in models:
        return WILDCARD, models[WILDCARD]
    return None


def lookup(provider: str | None, model: str | None, table: PriceTable | None = None) -> tuple[str, Price] | None:
    """The entry pricing ``model``: ``("provider/prefix", price)``, or None.

    A known provider is searched alone, and its ``*`` entry applies. An unknown
    or missing one (a proxy, a gateway) searches every provider by prefix only,
    so a custom model is never taken for a free local one. ``vendor/model``
    names, as gateways spell them, name their provider.
    """
    table = load_prices() if table is None else table
    name = (model or "").strip().lower()
    vendor = PROVIDER_ALIASES.get((provider or "").lower(), (provider or "").lower())
    if "/" in name:
        head, _, tail = name.partition("/")
        head = PROVIDER_ALIASES.get(head, head)
        if head in table:
            vendor, name = head, tail
    if vendor in table:
        hit = _best(table[vendor], name, wildcard=True)
        return (f"{vendor}/{hit[0]}", hit[1]) if hit else None
    found = [(p, hit) for p in table if (hit := _best(table[p], name, wildcard=False))]
    if not name or not found:
        return None
    vendor, (prefix, price) = max(found, key=lambda item: len(item[1][0]))
    return f"{vendor}/{prefix}", price


_warned: set[tuple[str | None, str | None]] = set()


def estimate(
    provider: str | None, model: str | None, input_tokens: int, output_tokens: int, table: PriceTable | None = None
) -> Estimate:
    """Dollars for this usage, and whether a table entry backs them."""
    hit = lookup(provider, model, table)
    if hit is None:
        if (provider, model) not in _warned:
            _warned.add((provider, model))
            log.warning("no price for provider=%s model=%s; cost recorded as 0.0", provider, model)
        return Estimate(usd=0.0, priced=False)
    entry, price = hit
    usd = (input_tokens * price.input + output_tokens * price.output) / 1_000_000
    return Estimate(usd=usd, priced=True, entry=entry)


def cost(provider: str | None, model: str | None, input_tokens: int, output_tokens: int) -> float:
    """USD for this usage; 0.0 (logged once) when the model is not in the table."""
    return estimate(provider, model, input_tokens, output_tokens).usd
