"""The API agents against what the real services do: prompt caching and its prices, models
that refuse sampling parameters, Azure's token-limit names, local servers that cut prompts at
their context length (real SDK clients against the fake server on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_stand_in import (
    GOOD,
    NEW,
    OLD,
    PROVIDERS,
    anthropic_answer,
    ask,
    make_agent,
    messages,
    openai_answer,
)
from fake_llm_server import (
    anthropic_reply,
    anthropic_sampling_rejected,
    azure_param_rejected,
    openai_reply,
)

from autoresearch.agents.base import AgentError, Proposal, Request

pytestmark = pytest.mark.usefixtures("api_keys")


def stable_request() -> Request:
    stable = "You are the research agent.\n\n# Research program\n\nBe bold.\n"
    prompt = stable + "\n# Experiment history\n\nNo experiments yet.\n"
    return Request(1, prompt, OLD, Path("."), stable_prompt=stable)


def test_anthropic_caches_the_stable_prefix_and_prices_cache_writes(server):
    reply = anthropic_reply(GOOD, input_tokens=100, output_tokens=200, cache_read=0)
    reply.body["usage"]["cache_creation_input_tokens"] = 900
    server.add(reply, anthropic_answer("Same.\n```python\n" + OLD + "```", fresh=100, cached=900))
    server.add(anthropic_answer(GOOD, fresh=100, cached=900))
    agent = make_agent(PROVIDERS["anthropic"], server)
    first = agent.propose(stable_request())
    [message] = messages(server, 0)
    head, rest = message["content"]
    assert head["cache_control"] == {"type": "ephemeral"}
    assert head["text"].startswith("You are the research agent.") and "Be bold." in head["text"]
    assert "exactly one fenced code block" in head["text"]  # instructions are in the prefix
    assert rest["text"].startswith("# Experiment history") and "cache_control" not in rest
    # claude-sonnet-5-5: 100 fresh at $2, 900 written at $2.50, 200 out at $10
    assert first.usage.cost_usd == pytest.approx((100 * 2 + 900 * 2.5 + 200 * 10) / 1e6)
    # the repair round sends the same prefix again: read from the cache
    second = agent.propose(stable_request())
    assert messages(server, 2)[0] == message and second.train_py == NEW
    assert second.usage.tokens_cached == 1800


def test_openai_gets_the_prefix_first_and_a_cache_key_only_from_openai_itself(server):
    server.add(openai_answer(GOOD), openai_answer(GOOD))
    agent = make_agent(PROVIDERS["openai"], server)
    agent.propose(stable_request())
    [message] = messages(server, 0)
    assert message["content"].startswith("You are the research agent.")
    assert message["content"].index("exactly one fenced code") < message["content"].index(
        "# Experiment history"
    )
    assert "prompt_cache_key" not in server.requests[0].body  # a compatible server may refuse it
    agent.official = True  # as for api.openai.com
    agent.propose(stable_request())
    key = server.requests[1].body["prompt_cache_key"]
    assert key.startswith("autoresearch-") and server.requests[1].body["max_tokens"] == 16000


def test_openai_cache_writes_are_priced_where_they_are_billed(server):
    server.add(openai_reply(GOOD, prompt_tokens=1000, completion_tokens=100, cache_write=800))
    proposal = ask(make_agent(PROVIDERS["openai"], server))
    # gpt-6.1-terra: 200 fresh at $1, 800 written at $1.25, 100 out at $5
    assert proposal.usage.cost_usd == pytest.approx((200 * 1 + 800 * 1.25 + 100 * 5) / 1e6)


def two_proposals_with_a_temperature(server, model: str) -> tuple[Proposal, Proposal]:
    """Two proposals from model with [agent] temperature set, from a server that refuses
    sampling parameters as Anthropic does for its models without them."""
    server.refuse("temperature", anthropic_sampling_rejected())
    server.add(anthropic_answer(GOOD), anthropic_answer(GOOD))
    agent = make_agent(PROVIDERS["anthropic"], server, model=model, temperature=0.2)
    first, second = ask(agent), ask(agent)
    assert first.train_py == NEW and second.train_py == NEW
    return first, second


def test_a_model_without_sampling_parameters_never_gets_temperature(server):
    first, second = two_proposals_with_a_temperature(server, "claude-opus-5-5")
    assert all("temperature" not in r.body for r in server.requests)
    [note] = first.notes  # warned once
    assert "agent.temperature is not sent (claude-opus-5-5 accepts no sampling" in note
    assert second.notes == []


def test_a_temperature_400_drops_it_with_one_warning_instead_of_ending_the_run(server):
    first, second = two_proposals_with_a_temperature(server, "claude-new-model")
    assert ["temperature" in r.body for r in server.requests] == [True, False, False]
    [note] = first.notes
    assert "`temperature` is deprecated for this model." in note and second.notes == []


@pytest.mark.parametrize("refused, used", [("max_tokens", "max_completion_tokens")])
def test_azure_reasoning_deployments_get_max_completion_tokens_after_one_400(server, refused, used):
    server.refuse(refused, azure_param_rejected(refused))
    server.add(openai_answer(GOOD), openai_answer(GOOD))
    agent = make_agent(PROVIDERS["openai"], server, max_tokens=999)
    first, second = ask(agent), ask(agent)
    assert first.train_py == NEW and second.train_py == NEW
    assert [sorted(set(r.body) & {refused, used}) for r in server.requests] == [
        [refused],
        [used],
        [used],
    ]  # tried once, then remembered
    assert server.requests[1].body[used] == 999
    assert first.notes == [f"openai API: the server refused `{refused}`; using `{used}`"]


def test_an_old_azure_api_refusing_max_completion_tokens_gets_max_tokens(server):
    server.refuse("max_completion_tokens", azure_param_rejected("max_completion_tokens"))
    server.add(openai_answer(GOOD))
    agent = make_agent(PROVIDERS["openai"], server)
    agent.limit_param = "max_completion_tokens"  # as for api.openai.com
    assert ask(agent).train_py == NEW
    assert server.requests[1].body["max_tokens"] == 16000


def test_a_server_that_refuses_both_names_stops_the_run_with_one_line(server):
    server.refuse("max_tokens", azure_param_rejected("max_tokens"))
    server.refuse("max_completion_tokens", azure_param_rejected("max_completion_tokens"))
    with pytest.raises(AgentError, match="request rejected .*HTTP 400: Unrecognized request"):
        ask(make_agent(PROVIDERS["openai"], server))
    assert len(server.requests) == 2


def test_a_prompt_cut_at_the_servers_context_length_is_reported_once(server):
    server.context_limit = 2048  # Ollama's old default context, which cuts prompts silently
    server.add(openai_answer(GOOD), openai_answer(GOOD))
    agent = make_agent(PROVIDERS["openai"], server, model="qwen2.5-coder:32b")
    prompt = "Improve it.\n\n" + "".join(f"W{i} = {i}  # a constant\n" for i in range(3000))
    first = agent.propose(Request(1, prompt, OLD, Path(".")))
    second = agent.propose(Request(1, prompt, OLD, Path(".")))
    assert first.usage.tokens_in == 2048
    [note] = first.notes
    assert "the server read only 2048 prompt tokens" in note and "OLLAMA_CONTEXT_LENGTH" in note
    assert second.notes == []


def test_doctor_warns_when_a_local_server_cuts_a_long_prompt(server):
    server.context_limit = 4096
    server.add(openai_answer("OK"))
    line = make_agent(PROVIDERS["openai"], server, model="llama3.1:8b").check()
    assert "warning: openai API: the server read only 4096 prompt tokens" in line
    assert len(server.requests[0].body["messages"][0]["content"]) > 20_000
    server.context_limit = None  # a server with a long enough context: no warning
    server.add(openai_answer("OK", fresh=12_000))
    assert "warning" not in make_agent(PROVIDERS["openai"], server, model="llama3.1:8b").check()
