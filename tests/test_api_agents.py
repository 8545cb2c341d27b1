"""The anthropic and openai agents: real SDK clients against a fake server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
from fake_llm_server import (
    FakeLLMServer,
    Scripted,
    anthropic_reply,
    anthropic_sampling_rejected,
    azure_param_rejected,
    drop,
    error_reply,
    hang,
    openai_reply,
)

from autoresearch.agents.anthropic_api import AnthropicAgent
from autoresearch.agents.base import AgentError, Proposal, Request
from autoresearch.agents.llm import APIAgent
from autoresearch.agents.openai_api import OpenAIAgent
from autoresearch.core.config import AgentConfig

KEY = "sk-test-SECRET-0123456789"
OLD = "LR = 0.01\nprint(LR)\n"
NEW = "LR = 0.1\nprint(LR)\n"
GOOD = f"Raise the learning rate.\n\n```python\n{NEW}```\n"


def anthropic_answer(text, fresh=1000, out=200, cached=0, truncated=False) -> Scripted:
    stop = "max_tokens" if truncated else "end_turn"
    return anthropic_reply(text, fresh, out, cache_read=cached, stop_reason=stop)


def openai_answer(text, fresh=1000, out=200, cached=0, truncated=False) -> Scripted:
    finish = "length" if truncated else "stop"
    return openai_reply(text, fresh + cached, out, cached=cached, finish_reason=finish)


@dataclass
class Provider:
    kind: str
    agent: type[APIAgent]
    key_env: str
    answer: Callable[..., Scripted]  # (text, fresh=, out=, cached=, truncated=)
    url_suffix: str
    path: str
    cost_1000_200_500: float  # 1000 fresh + 500 cached prompt tokens, 200 out, default model


PROVIDERS = {
    # claude-sonnet-5-5: $2 in, $0.10 cached, $10 out; gpt-6.1-terra: $1, $0.05, $5
    "anthropic": Provider(
        "anthropic", AnthropicAgent, "ANTHROPIC_API_KEY", anthropic_answer, "", "/v1/messages",
        (1000 * 2 + 500 * 0.1 + 200 * 10) / 1e6,
    ),
    "openai": Provider(
        "openai", OpenAIAgent, "OPENAI_API_KEY", openai_answer, "/v1", "/v1/chat/completions",
        (1000 * 1 + 500 * 0.05 + 200 * 5) / 1e6,
    ),
}  # fmt: skip


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.fixture
def server():
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request) -> Provider:
    return PROVIDERS[request.param]


def make_agent(provider: Provider, server: FakeLLMServer, **settings) -> APIAgent:
    settings = {"max_retries": 2, "request_timeout_secs": 5, **settings}
    cfg = AgentConfig(name=provider.kind, base_url=server.url + provider.url_suffix, **settings)
    return provider.agent(cfg, Path("."))


def ask(agent: APIAgent, train_py: str = OLD) -> Proposal:
    return agent.propose(Request(1, "Improve val_accuracy.", train_py, Path(".")))


def messages(server: FakeLLMServer, index: int) -> list[dict]:
    return server.requests[index].body["messages"]


def returned_text(proposal: Proposal) -> str:
    return " ".join(str(getattr(proposal, f.name)) for f in fields(proposal))


# --- normal operation --------------------------------------------------------------------------


def test_a_good_reply_becomes_a_proposal_with_tokens_and_cost(provider, server):
    server.add(provider.answer(GOOD, fresh=1000, out=200, cached=500))
    proposal = ask(make_agent(provider, server))

    assert proposal.train_py == NEW
    assert proposal.explanation == "Raise the learning rate."
    assert proposal.invalid_reason is None
    assert proposal.raw_output == GOOD
    assert (proposal.usage.tokens_in, proposal.usage.tokens_out) == (1500, 200)
    assert proposal.usage.tokens_cached == 500
    assert proposal.usage.cost_usd == pytest.approx(provider.cost_1000_200_500)

    sent = server.requests[0]
    assert sent.path == provider.path
    assert sent.body["model"] == provider.agent.default_model
    assert sent.body["max_tokens"] == 16000
    assert "temperature" not in sent.body
    [prompt] = messages(server, 0)
    assert prompt["role"] == "user"
    assert prompt["content"].startswith("Improve val_accuracy.")
    assert "exactly one fenced code block" in prompt["content"]  # the edit-format instructions


def test_settings_reach_the_request(provider, server):
    server.add(provider.answer(GOOD))
    agent = make_agent(provider, server, model="some-model", temperature=0.3, max_tokens=999)
    assert ask(agent).train_py == NEW
    body = server.requests[0].body
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("some-model", 0.3, 999)


def test_search_replace_format(provider, server):
    reply = "Faster.\n<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 0.1\n>>>>>>> REPLACE\n"
    server.add(provider.answer(reply))
    proposal = ask(make_agent(provider, server, edit_format="search-replace"))
    assert (proposal.train_py, proposal.explanation) == (NEW, "Faster.")
    assert "<<<<<<< SEARCH" in messages(server, 0)[0]["content"]


def test_unknown_model_records_tokens_but_no_cost(provider, server):
    server.add(provider.answer(GOOD, fresh=700, out=300))
    proposal = ask(make_agent(provider, server, model="llama3.1:8b"))
    assert proposal.train_py == NEW
    assert (proposal.usage.tokens_in, proposal.usage.tokens_out) == (700, 300)
    assert proposal.usage.cost_usd is None


def test_price_overrides_from_the_config(provider, server):
    server.add(provider.answer(GOOD, fresh=1_000_000, out=0))
    agent = make_agent(provider, server, model="local", prices={"local": {"input": 2, "output": 4}})
    assert ask(agent).usage.cost_usd == pytest.approx(2.0)


# --- transient failures ------------------------------------------------------------------------


def test_rate_limit_is_retried_by_the_sdk(provider, server):
    server.add(error_reply(429, "rate limited"), provider.answer(GOOD))
    proposal = ask(make_agent(provider, server))
    assert proposal.train_py == NEW
    assert len(server.requests) == 2


def test_server_errors_until_retries_run_out_give_an_invalid_proposal(provider, server):
    server.add(*[error_reply(500, "overloaded")] * 3)
    proposal = ask(make_agent(provider, server, max_retries=2))
    assert proposal.train_py is None
    assert proposal.invalid_reason == (
        f"{provider.kind} API: HTTP 500: overloaded (gave up after 3 attempt(s))"
    )
    assert len(server.requests) == 3
    assert proposal.usage.tokens_in == 0


def test_a_request_that_hangs_times_out(provider, server):
    server.add(hang())
    started = time.monotonic()
    proposal = ask(make_agent(provider, server, request_timeout_secs=0.5, max_retries=0))
    assert time.monotonic() - started < 3
    assert proposal.train_py is None
    assert proposal.invalid_reason == (
        f"{provider.kind} API: no answer within 0.5s (gave up after 1 attempt(s))"
    )


def test_a_dropped_connection_is_retried_then_reported(provider, server):
    server.add(drop(), provider.answer(GOOD))
    agent = make_agent(provider, server, max_retries=1)
    assert ask(agent).train_py == NEW

    server.add(drop(), drop())
    proposal = ask(agent)
    assert proposal.train_py is None
    assert proposal.invalid_reason.startswith(f"{provider.kind} API: connection failed: ")
    assert "\n" not in proposal.invalid_reason


def test_a_failure_after_a_rejected_reply_keeps_its_usage_and_output(provider, server):
    server.add(provider.answer("no code here", fresh=100, out=10), error_reply(500, "down"))
    proposal = ask(make_agent(provider, server, max_retries=0))
    assert (
        proposal.invalid_reason
        == f"{provider.kind} API: HTTP 500: down (gave up after 1 attempt(s))"
    )
    assert proposal.usage.tokens_in == 100
    assert proposal.raw_output.startswith("no code here")


# --- repair rounds -----------------------------------------------------------------------------


def test_a_truncated_reply_is_sent_back_then_repaired(provider, server):
    cut = "Raise the learning rate.\n\n```python\nLR = 0.1\n"
    server.add(
        provider.answer(cut, fresh=1000, out=200, cached=500, truncated=True),
        provider.answer(GOOD, fresh=1000, out=200, cached=500),
    )
    proposal = ask(make_agent(provider, server))
    assert proposal.train_py == NEW
    assert (proposal.usage.tokens_in, proposal.usage.tokens_out) == (3000, 400)
    assert proposal.usage.cost_usd == pytest.approx(2 * provider.cost_1000_200_500)
    assert proposal.raw_output.startswith(cut)
    assert "----- autoresearch: reply 1 rejected: your reply was cut off" in proposal.raw_output
    assert proposal.raw_output.endswith(GOOD)

    first, answer, repair = messages(server, 1)
    assert first == messages(server, 0)[0]
    assert answer == {"role": "assistant", "content": cut}
    assert repair["role"] == "user"
    assert "cut off at the output limit (16000 tokens)" in repair["content"]


def test_malformed_replies_are_repaired_until_the_rounds_run_out(provider, server):
    server.add(
        provider.answer("I would raise the learning rate.", fresh=100, out=10),
        provider.answer("Sure:\n```\nLR = 0.1\n```", fresh=200, out=20),
    )
    proposal = ask(make_agent(provider, server, repair_rounds=1))
    assert proposal.train_py is None
    assert proposal.invalid_reason == (
        "no usable edit in 2 replies: your reply has no ```python block (it has 1 fenced "
        "block(s) not marked python); put the complete new train.py in exactly one ```python block"
    )
    assert len(server.requests) == 2
    assert "your reply has no ```python block;" in messages(server, 1)[2]["content"]
    assert (proposal.usage.tokens_in, proposal.usage.tokens_out) == (300, 30)
    assert proposal.usage.cost_usd > 0
    assert "I would raise the learning rate." in proposal.raw_output
    assert "reply 2 rejected" in proposal.raw_output


def test_without_repair_rounds_one_bad_reply_is_final(provider, server):
    server.add(provider.answer("nothing"))
    proposal = ask(make_agent(provider, server, repair_rounds=0))
    assert proposal.invalid_reason.startswith("no usable edit in 1 reply: ")
    assert len(server.requests) == 1


def test_a_search_that_does_not_apply_is_explained_to_the_model(provider, server):
    wrong = "<<<<<<< SEARCH\nLR = 0.001\n=======\nLR = 0.1\n>>>>>>> REPLACE\n"
    right = "<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 0.1\n>>>>>>> REPLACE\n"
    server.add(provider.answer(wrong), provider.answer(right))
    proposal = ask(make_agent(provider, server, edit_format="search-replace"))
    assert proposal.train_py == NEW
    repair = messages(server, 1)[2]["content"]
    assert repair.startswith("SEARCH block 1 matches nothing in train.py: its line 1 does not")
    assert "LR = 0.001" in repair


@pytest.mark.parametrize(
    "reply, complaint",
    [
        (f"Same.\n```python\n{OLD}```", "identical to the current one"),
        ("Oops.\n```python\nLR = (0.1\n```", "not valid Python: line 1: '(' was never closed"),
        ("", "your reply was empty"),
    ],
)
def test_unusable_code_is_sent_back(provider, server, reply, complaint):
    server.add(provider.answer(reply), provider.answer(GOOD))
    proposal = ask(make_agent(provider, server))
    assert proposal.train_py == NEW
    assert complaint in messages(server, 1)[2]["content"]


def test_a_repair_round_cannot_outlast_the_agent_timeout(provider, server):
    slow_bad, slow_good = provider.answer("no code here", fresh=100), provider.answer(GOOD)
    slow_bad.delay = slow_good.delay = 0.6
    server.add(slow_bad, slow_good)
    started = time.monotonic()
    proposal = ask(make_agent(provider, server, timeout_secs=1))
    assert time.monotonic() - started < 2
    assert proposal.train_py is None
    assert proposal.invalid_reason.startswith(f"{provider.kind} API: no answer within ")
    assert proposal.usage.tokens_in == 100  # the first reply's tokens are kept


def test_retries_of_a_hanging_server_stop_at_the_agent_timeout(provider, server):
    # 5 attempts of up to 5 s each would take 25 s; the call as a whole gets timeout_secs
    server.add(*[hang()] * 5)
    agent = make_agent(provider, server, timeout_secs=1.5, request_timeout_secs=5, max_retries=4)
    started = time.monotonic()
    proposal = ask(agent)
    assert time.monotonic() - started < 3
    assert proposal.train_py is None
    assert "no answer within" in proposal.invalid_reason
    assert len(server.requests) <= 2


# --- fatal errors and secrets ------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, words",
    [
        (401, "authentication failed"),
        (403, "permission denied"),
        (404, "not found"),
        (400, "request rejected"),  # e.g. a prompt over the context window: every retry fails
    ],
)
def test_auth_permission_model_and_request_errors_stop_the_run(provider, server, status, words):
    server.add(error_reply(status, "no way"))
    with pytest.raises(AgentError) as err:
        ask(make_agent(provider, server))
    message = str(err.value)
    assert message.startswith(f"{provider.kind} API: {words} (HTTP {status}: no way)")
    assert "\n" not in message
    assert len(server.requests) == 1  # not retried


def test_a_missing_key_fails_at_construction(provider, monkeypatch):
    monkeypatch.delenv(provider.key_env)
    with pytest.raises(AgentError, match=f"^{provider.key_env} is not set"):
        provider.agent(AgentConfig(name=provider.kind), Path("."))


def test_a_local_openai_compatible_server_needs_no_key(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    server.add(openai_answer(GOOD))
    assert ask(make_agent(PROVIDERS["openai"], server)).train_py == NEW
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_openai_itself_gets_max_completion_tokens():
    agent = OpenAIAgent(AgentConfig(name="openai"), Path("."))
    assert agent.limit_param == "max_completion_tokens"


def test_the_api_key_is_sent_but_never_returned(provider, server):
    server.add(
        provider.answer(GOOD),
        error_reply(500, f"bad header {KEY}"),
        error_reply(401, f"key {KEY} revoked"),
    )
    agent = make_agent(provider, server, max_retries=0)
    good, failed = ask(agent), ask(agent)
    with pytest.raises(AgentError) as err:
        ask(agent)
    assert KEY in str(server.requests[0].headers)
    for text in (returned_text(good), returned_text(failed), str(err.value)):
        assert KEY not in text
    assert "[redacted]" in failed.invalid_reason


# --- check -------------------------------------------------------------------------------------


def test_check_makes_a_tiny_request(provider, server):
    server.add(provider.answer("OK", fresh=10, out=1))
    line = make_agent(provider, server).check()
    model = provider.agent.default_model
    assert line.startswith(f"{provider.kind} {model} answered in ")
    assert server.requests[0].body["max_tokens"] == 16


def test_check_mentions_an_unknown_price(provider, server):
    server.add(provider.answer("OK"))
    assert "price is unknown" in make_agent(provider, server, model="mystery").check()


@pytest.mark.parametrize("failure", [error_reply(401, "bad key"), error_reply(503, "down")])
def test_check_fails_with_one_line(provider, server, failure):
    server.add(failure)
    with pytest.raises(AgentError) as err:
        make_agent(provider, server, max_retries=0).check()
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(f"{provider.kind} API: ")


# --- what the real services do -----------------------------------------------------------------


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


def test_a_model_without_sampling_parameters_never_gets_temperature(server):
    server.refuse("temperature", anthropic_sampling_rejected())
    server.add(anthropic_answer(GOOD), anthropic_answer(GOOD))
    agent = make_agent(PROVIDERS["anthropic"], server, model="claude-opus-5-5", temperature=0.2)
    first, second = ask(agent), ask(agent)
    assert first.train_py == NEW and second.train_py == NEW
    assert all("temperature" not in r.body for r in server.requests)
    [note] = first.notes  # warned once
    assert "agent.temperature is not sent (claude-opus-5-5 accepts no sampling" in note
    assert second.notes == []


def test_a_temperature_400_drops_it_with_one_warning_instead_of_ending_the_run(server):
    server.refuse("temperature", anthropic_sampling_rejected())
    server.add(anthropic_answer(GOOD), anthropic_answer(GOOD))
    agent = make_agent(PROVIDERS["anthropic"], server, model="claude-new-model", temperature=0.2)
    first, second = ask(agent), ask(agent)
    assert first.train_py == NEW and second.train_py == NEW
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
