"""What an API agent's tokens cost: the shipped table (prices.toml) under the config's overrides."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources

from autoresearch.core.config import Price
from autoresearch.core.records import Usage

# What may follow a table entry in a model id that is one of its dated snapshots.
SNAPSHOT_SUFFIX = re.compile(r"[-@]\d{4}-?\d{2}-?\d{2}")


@cache
def shipped_prices() -> dict[str, Price]:
    text = resources.files("autoresearch.agents").joinpath("prices.toml").read_text()
    return {model: Price(**price) for model, price in tomllib.loads(text)["models"].items()}


def _find(model: str, table: dict[str, Price]) -> Price | None:
    """Exact id first, then the longest entry the id extends with a dated snapshot suffix
    (so gpt-4o-2024-08-06 is priced as gpt-4o, but an unlisted gpt-5-foo is not priced as gpt-5)."""
    if model in table:
        return table[model]
    stems = [
        stem
        for stem in table
        if model.startswith(stem) and SNAPSHOT_SUFFIX.fullmatch(model[len(stem) :])
    ]
    return table[max(stems, key=len)] if stems else None


def lookup(model: str, overrides: dict[str, Price]) -> Price | None:
    """The price of a model: the config's overrides win over the shipped table."""
    price = _find(model, overrides)
    return price if price is not None else _find(model, shipped_prices())


def missing(model: str) -> str:
    """What to do about a model with no known price."""
    return (
        f'{model} has no known price; add [agent.prices."{model}"] with input and output '
        "(dollars per million tokens) to autoresearch.toml"
    )


def cost(
    model: str, usage_tokens: Usage, overrides: dict[str, Price], cache_writes: int = 0
) -> float | None:
    """Dollars for these tokens; None when the model's price is unknown (never a guess).
    tokens_in counts every prompt token; tokens_cached is the part of it read from the cache,
    cache_writes the part written to it (Anthropic bills writes above the input price)."""
    price = lookup(model, overrides)
    if price is None:
        return None
    cached = min(usage_tokens.tokens_cached, usage_tokens.tokens_in)
    written = min(cache_writes, usage_tokens.tokens_in - cached)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    write_rate = price.input if price.cache_write is None else price.cache_write
    dollars = (
        (usage_tokens.tokens_in - cached - written) * price.input
        + cached * cached_rate
        + written * write_rate
        + usage_tokens.tokens_out * price.output
    )
    return dollars / 1_000_000
