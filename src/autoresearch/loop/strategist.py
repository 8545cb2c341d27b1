"""The outer loop: every `[strategist] every` iterations, and after `plateau` iterations without a
keep, a strategist (an LLM agent answering in text, no tools) reads the run's results and
rewrites the `## Strategy` section of program.md; the goal and rules stay as they are.

Strategy is run state: the workspace's program.md is the user's; the run keeps a row per
strategy (its initial one, version 0, from program.md; then one per strategist call, a rejected
reply recorded without a version), commits each version's program.md to the run's `strategy`
branch, and records with every iteration the version it ran under. A call is identified by the
iteration after which it was made, so a resume after a kill neither loses nor repeats one.
"""

from __future__ import annotations

import time
from pathlib import Path

from autoresearch.agents.base import AgentError, Answer, TextAgent
from autoresearch.core.config import STRATEGIST_AGENTS, AgentConfig, Config
from autoresearch.core.program_sections import MAX_STRATEGY_CHARS, Program, Rejected, parse_reply
from autoresearch.core.records import PLATEAU, PROGRAM, SCHEDULE, STRATEGIST, Iteration, Strategy
from autoresearch.core.safe_text import shorten
from autoresearch.prompt.strategy_history import render_history, render_versions
from autoresearch.prompt.templates import template
from autoresearch.store.gitrepo import ExperimentRepo
from autoresearch.store.layout import SNAPSHOT
from autoresearch.store.store import Store

BRANCH = "refs/heads/strategy"


def who(cfg: Config) -> str | None:
    """The agent that strategises for this run, or None when the strategist is off."""
    chosen = cfg.strategist
    if chosen.agent == "none" or not (chosen.every or chosen.plateau):
        return None
    if chosen.agent:
        return chosen.agent
    return cfg.agent.name if cfg.agent.name in STRATEGIST_AGENTS else None


def describe(cfg: Config) -> str:
    """One line: who strategises and when, or why nobody does."""
    chosen, name = cfg.strategist, who(cfg)
    if name is None:
        if chosen.agent == "none":
            return 'off ([strategist] agent = "none")'
        if not (chosen.every or chosen.plateau):
            return "off ([strategist] every and plateau are 0)"
        return (
            f"off (the {cfg.agent.name} agent has no LLM; set [strategist] agent to "
            f"{', '.join(STRATEGIST_AGENTS[:-1])} or {STRATEGIST_AGENTS[-1]} to turn it on)"
        )
    when = [f"every {chosen.every} iterations"] if chosen.every else []
    when += [f"after {chosen.plateau} without a keep"] if chosen.plateau else []
    model = agent_config(cfg).model
    return f"{name}{f' ({model})' if model else ''}, {' and '.join(when)}"


def agent_config(cfg: Config) -> AgentConfig:
    """The [agent] settings the strategist's agent is built with: the run's, with its own name,
    model and server."""
    name, chosen = who(cfg) or cfg.agent.name, cfg.strategist
    same = name == cfg.agent.name
    model = chosen.model or (cfg.agent.model if same else None)
    update = {"name": name, "model": model, "base_url": chosen.base_url or (
        cfg.agent.base_url if same else None
    )}  # fmt: skip
    return cfg.agent.model_copy(update=update)


def has_own_agent(cfg: Config) -> bool:
    """Whether the strategist needs an agent besides the run's (so a check of its own)."""
    return who(cfg) is not None and agent_config(cfg) != cfg.agent


def build(cfg: Config, workspace: Path, agent) -> TextAgent | None:
    """The strategist's agent: the run's own one where the settings are the same, else its own
    (AgentError when it cannot work); None when the strategist is off."""
    if who(cfg) is None:
        return None
    settings = agent_config(cfg)
    if settings == cfg.agent and hasattr(agent, "complete"):
        return agent
    from autoresearch.agents.factory import build as build_agent

    return build_agent(settings, workspace)[0]


def due(history: list[Iteration], strategies: list[Strategy], cfg: Config) -> str | None:
    """PLATEAU or SCHEDULE when a strategist call is due after the last recorded iteration."""
    last = history[-1].iteration if history else 0
    if last < 1 or any(s.after_iteration == last for s in strategies):
        return None
    chosen = cfg.strategist
    since = max(history.last_keep, strategies[-1].after_iteration if strategies else -1)
    if chosen.plateau and last - since >= chosen.plateau:
        return PLATEAU
    if chosen.every and last % chosen.every == 0:
        return SCHEDULE
    return None


def _why(trigger: str, history: list[Iteration], cfg: Config) -> str:
    if trigger == PLATEAU:
        return f"because {history[-1].iteration - history.last_keep} iterations brought no keep"
    return f"on schedule, every {cfg.strategist.every} iterations"


class Strategist:
    """The run's strategies; off (every method a no-op) without an agent."""

    def __init__(
        self,
        cfg: Config,
        store: Store,
        repo: ExperimentRepo,
        llm: TextAgent | None,
        say,
        phase=None,  # Loop.phase: what the run is doing now
    ) -> None:
        self.cfg, self.store, self.repo, self.llm, self.say = cfg, store, repo, llm, say
        self.phase = phase
        self.program: Program | None = None
        self.original = b""
        self.strategies: list[Strategy] = []

    @property
    def on(self) -> bool:
        return self.llm is not None

    def newest(self) -> Strategy | None:
        return next((s for s in reversed(self.strategies) if s.version is not None), None)

    @property
    def version(self) -> int | None:
        """The version the next iteration runs under (None: no strategist)."""
        newest = self.newest()
        return newest.version if newest else None

    def changed_after(self) -> int:
        """The iteration after which the strategy last changed (-1: before the baseline)."""
        newest = self.newest()
        return newest.after_iteration if newest and newest.version else -1

    def spent(self) -> float:
        return sum(s.usage.cost_usd or 0.0 for s in self.strategies)

    def start(self, program_md: bytes) -> bytes:
        """The program.md the run's experiments get: the run's own, with the newest strategy.
        A new run records its program.md's strategy as version 0 (a section is added where
        program.md has none)."""
        self.original = program_md
        if not self.on:
            return program_md
        self.program = Program.parse(program_md.decode("utf-8-sig", errors="replace"))
        self.strategies = self.store.strategies()
        if not self.strategies:
            first = Strategy(
                after_iteration=self.store.recorded() - 1, trigger=PROGRAM, version=0,
                text=self.program.strategy.strip(), created_at=time.time(),
                reasoning="The run's program.md.",
            )  # fmt: skip
            self._commit(first, None)
            self.store.record_strategy(first)
            self.strategies.append(first)
        return self.current_program()

    def current_program(self) -> bytes:
        newest = self.newest()
        if self.program is None or newest is None:
            return self.original
        text = self.program.render(None if newest.version == 0 else newest.text)
        if text == self.original.decode("utf-8-sig", errors="replace"):
            return self.original  # exactly the user's file, byte order mark and all
        return text.encode()

    def revise(self, history: list[Iteration]) -> bytes:
        """When a call is due: ask, check and record it. Returns the program.md the next
        iteration runs under (the previous one where the reply was rejected)."""
        trigger = due(history, self.strategies, self.cfg) if self.on else None
        if trigger is None:
            return self.current_program()
        after, current = history[-1].iteration, self.newest()
        why = _why(trigger, history, self.cfg)
        self.say(f"after iteration {after}: asking the strategist ({self.llm.name}) {why}")
        prompt = self.prompt(history, why)
        if self.phase is not None:
            self.phase(STRATEGIST, after, agent=self.llm.name)
        started = time.time()
        answer = self._ask(prompt)
        strategy = Strategy(
            after_iteration=after, trigger=trigger, reply=answer.text or "", prompt=prompt,
            usage=answer.usage, reason=answer.reason, agent=self.llm.name,
            model=getattr(self.llm, "model", None) or self.cfg.strategist.model or "",
            seconds=round(time.time() - started, 3), created_at=time.time(),
        )  # fmt: skip
        if strategy.reason is None:
            try:
                strategy.reasoning, strategy.text = parse_reply(
                    strategy.reply, self.program, current.text
                )
                strategy.version = current.version + 1
            except Rejected as err:
                strategy.reason = str(err)
        if strategy.version is not None:
            self._commit(strategy, current.commit)
        self.store.record_strategy(strategy)
        self.strategies.append(strategy)
        if strategy.version is None:
            self.say(
                f"after iteration {after}: the strategist's reply was rejected "
                f"({strategy.reason}); strategy version {current.version} stays"
            )
        else:
            self.say(f"strategy version {strategy.version}: {shorten(strategy.description, 100)}")
        return self.current_program()

    def prompt(self, history: list[Iteration], why: str) -> str:
        current = self.newest()
        head = "\n".join(self.program.before.splitlines()[:-1]).strip()  # not the heading
        fixed = "\n\n".join(part for part in (head, self.program.after.strip()) if part)
        return template("strategist.txt").substitute(
            budget=f"{self.cfg.budget_secs:g}",
            metric=self.cfg.metric,
            direction="higher is better" if self.cfg.direction == "maximize" else "lower is better",
            fixed=fixed or "(program.md has nothing besides its strategy)",
            version=current.version,
            strategy=current.text,
            versions=render_versions(self.strategies, history, self.cfg),
            history=render_history(history, self.cfg),
            why=why,
            max_chars=MAX_STRATEGY_CHARS,
        )

    def _ask(self, prompt: str) -> Answer:
        try:
            return self.llm.complete(prompt)
        except AgentError as err:  # it cannot work at all (a rejected key): the run stops
            raise AgentError(f"the strategist: {err}") from None
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001 - a broken call is a recorded, rejected one
            return Answer(None, reason=f"the strategist failed: {type(err).__name__}: {err}")

    def _commit(self, strategy: Strategy, parent: str | None) -> None:
        text = self.program.render(None if strategy.version == 0 else strategy.text)
        where = "before any iteration" if strategy.after_iteration < 0 else (
            f"after iteration {strategy.after_iteration}"
        )  # fmt: skip
        message = (
            f"strategy version {strategy.version} ({where}, {strategy.trigger})\n\n"
            f"{strategy.reasoning}"
        )
        strategy.commit = self.repo.commit({"program.md": text}, message, parent)
        self.repo.set_ref(BRANCH, strategy.commit)


def program_of(store: Store, strategy: Strategy) -> str:
    """The program.md a version stands for: the run's own, with that strategy."""

    own = (store.dir / SNAPSHOT / "program.md").read_bytes().decode("utf-8-sig", "replace")
    program = Program.parse(own)
    return program.render(None if strategy.version == 0 else strategy.text)
