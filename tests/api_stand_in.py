"""What the API agents' tests share: the two providers as the stand-in server plays them
(fake_llm_server.py), their agents pointed at it, and a request to answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from fake_llm_server import STAND_IN_KEY, FakeLLMServer, Scripted, anthropic_reply, openai_reply

from autoresearch.agents.anthropic_api import AnthropicAgent
from autoresearch.agents.base import Proposal, Request
from autoresearch.agents.llm import APIAgent
from autoresearch.agents.openai_api import OpenAIAgent
from autoresearch.core.config import AgentConfig

KEY = STAND_IN_KEY
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
