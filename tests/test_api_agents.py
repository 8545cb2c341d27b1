"""The anthropic and openai agents: real SDK clients against a fake server on 127.0.0.1 (what
the real services do besides: tests/test_api_services.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from api_stand_in import (
    GOOD,
    KEY,
    NEW,
    OLD,
    PROVIDERS,
    Provider,
    ask,
    make_agent,
    messages,
    openai_answer,
    returned_text,
)
from fake_llm_server import (
    drop,
    error_reply,
    hang,
)

from autoresearch.agents.base import AgentError
from autoresearch.agents.openai_api import OpenAIAgent
from autoresearch.core.config import AgentConfig

pytestmark = pytest.mark.usefixtures("api_keys")


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request) -> Provider:
    return PROVIDERS[request.param]


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
