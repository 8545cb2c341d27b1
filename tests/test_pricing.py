"""Prices: the shipped table, dated snapshots, config overrides, and no made-up numbers."""

from __future__ import annotations

import pytest

from autoresearch.agents.anthropic_api import AnthropicAgent
from autoresearch.agents.openai_api import OpenAIAgent
from autoresearch.agents.pricing import cost, lookup, shipped_prices
from autoresearch.core.config import Price
from autoresearch.core.records import Usage


def test_shipped_table_covers_the_current_models_and_the_defaults():
    table = shipped_prices()
    current = ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "gpt-6.1-terra")
    for model in (*current, AnthropicAgent.default_model, OpenAIAgent.default_model):
        assert model in table
    assert all(price.output >= price.input > 0 for price in table.values())
    # cached reads are cheaper than fresh input, cache writes dearer (Anthropic) or unbilled
    assert all((price.cached_input or price.input) <= price.input for price in table.values())
    assert all((price.cache_write or price.input) >= price.input for price in table.values())


@pytest.mark.parametrize(
    "model", ["claude-opus-4-1", "claude-sonnet-4", "claude-opus-4", "o4-mini", "o3-mini"]
)
def test_shut_down_models_are_not_priced(model):
    assert lookup(model, {}) is None


def test_cost_of_plain_tokens():
    # claude-sonnet-4-5: $3 in, $15 out per million tokens
    assert cost("claude-sonnet-4-5", Usage(1_000_000, 100_000), {}) == pytest.approx(4.5)


def test_cached_tokens_are_part_of_tokens_in_at_the_cached_rate():
    # gpt-4o: $2.50 in, $1.25 cached, $10 out
    usage = Usage(tokens_in=1_000_000, tokens_out=0, tokens_cached=400_000)
    assert cost("gpt-4o", usage, {}) == pytest.approx(0.6 * 2.5 + 0.4 * 1.25)


def test_cached_tokens_cost_the_input_rate_when_no_cached_rate_is_known():
    overrides = {"local": Price(input=1.0, output=2.0)}
    assert cost("local", Usage(1_000_000, 0, 1_000_000), overrides) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "model, expected",
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-opus-4-5@20251101", "claude-opus-4-5"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
    ],
)
def test_dated_snapshots_take_the_price_of_their_model(model, expected):
    assert lookup(model, {}) == shipped_prices()[expected]


def test_an_exact_entry_beats_its_family():
    assert lookup("claude-opus-5-5", {}).input == 4.0  # not claude-opus-5's price
    assert lookup("claude-opus-5-20260724", {}).input == 5.0


@pytest.mark.parametrize("model", ["llama3.1:8b", "gpt-5-ultra", "claude-opus-4-9", "o3x", ""])
def test_unknown_models_have_no_price(model):
    assert lookup(model, {}) is None
    assert cost(model, Usage(1000, 1000), {}) is None


def test_overrides_win_over_the_table_and_add_models():
    overrides = {
        "gpt-4o": Price(input=1.0, output=1.0),
        "my-finetune": Price(input=0.5, output=0.5),
    }
    assert cost("gpt-4o", Usage(1_000_000, 0), overrides) == pytest.approx(1.0)
    assert cost("gpt-4o-2024-08-06", Usage(1_000_000, 0), overrides) == pytest.approx(1.0)
    assert cost("my-finetune", Usage(0, 2_000_000), overrides) == pytest.approx(1.0)
    assert cost("gpt-4o-mini", Usage(1_000_000, 0), overrides) == pytest.approx(0.15)


def test_cache_writes_are_priced_at_their_own_rate():
    # claude-sonnet-5-5: $2 in, $0.10 cache read, $2.50 cache write, $10 out
    usage = Usage(tokens_in=1_000_000, tokens_out=0, tokens_cached=200_000)
    assert cost("claude-sonnet-5-5", usage, {}, cache_writes=300_000) == pytest.approx(
        0.5 * 2.0 + 0.2 * 0.10 + 0.3 * 2.50
    )
    # no write rate known: writes cost the input price
    overrides = {"local": Price(input=1.0, output=2.0)}
    assert cost("local", Usage(1_000_000, 0), overrides, cache_writes=500_000) == pytest.approx(1)
