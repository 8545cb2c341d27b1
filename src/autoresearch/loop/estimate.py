"""What a run will take before it starts (hours, dollars), and what its machines cost as it goes:
`[resources] usd_per_hour` for every hour a worker trains (the loop's runs and promotions),
counted in cost_usd and against --max-cost."""

from __future__ import annotations

from autoresearch.agents.pricing import lookup
from autoresearch.core.config import Config
from autoresearch.core.history import History
from autoresearch.core.records import Iteration

FREE_AGENTS = ("hpo", "replay")  # agents that call no model


def machine_cost(cfg: Config, history: list[Iteration], store=None) -> float:
    """Dollars for the hours workers trained: every run of every iteration, and the promotions
    recorded in store (when given)."""
    rate = cfg.resources.usd_per_hour
    if not rate:
        return 0.0
    if isinstance(history, History):  # summed as iterations were recorded
        seconds = history.run_seconds
    else:
        seconds = sum(r.wall_seconds for it in history for r in it.runs)
    if store is not None:
        from autoresearch.store.verdict_store import promotions

        seconds += sum(p.seconds for p in promotions(store))
    return round(rate * seconds / 3600, 6)


def _agent_dollars(cfg: Config, calls: int) -> tuple[float | None, str]:
    """The most the agent's calls can cost: each a full prompt (context_tokens) and a full reply
    (max_tokens) at the model's price; None with the reason where the price is unknown."""
    if cfg.agent.name in FREE_AGENTS:
        return 0.0, f"agent {cfg.agent.name} calls no model"
    model = cfg.agent.model
    price = lookup(model, cfg.agent.prices) if model else None
    if price is None:
        return None, f"agent cost unknown (no price for {model or 'its default model'})"
    per_call = (cfg.loop.context_tokens * price.input + cfg.agent.max_tokens * price.output) / 1e6
    return calls * per_call, f"agent at most ${calls * per_call:.2f} ({model}, {calls} calls)"


def estimate_line(cfg: Config, done: int) -> str:
    """One line for the start of `run`: the hours the iterations left take (one run each at
    least; each confirmed at most), and the dollars: the agent's prompts and replies at most,
    and the workers' hours at usd_per_hour."""
    left = max(0, cfg.loop.iterations - done)
    budget = cfg.budget_secs + min(cfg.grace_secs, cfg.budget_secs * 0.1)
    baseline = cfg.loop.noise_runs if done == 0 else 0
    promotion = 0.0
    if cfg.promote.budget_factor:
        promotion = 2 * cfg.loop.noise_runs * cfg.budget_secs * cfg.promote.budget_factor
    least = (baseline + left) * budget + promotion
    most = (baseline + left * (1 + cfg.loop.confirm_runs)) * budget + promotion
    workers = cfg.run.workers
    low, high = least / workers / 3600, most / workers / 3600
    agent, agent_text = _agent_dollars(cfg, left)
    machine = cfg.resources.usd_per_hour * most / 3600
    parts = [
        f"estimate: {left} iteration{'' if left == 1 else 's'} in {low:.1f}-{high:.1f} h of training"
    ]
    if workers > 1:
        parts[0] += f" on {workers} workers"
    parts.append(agent_text)
    if machine:
        parts.append(
            f"machines at most ${machine:.2f} (${cfg.resources.usd_per_hour:g}/h per worker)"
        )
    if agent is not None:
        parts.append(f"total at most ${agent + machine:.2f}")
    if cfg.promote.budget_factor:
        parts.append(f"promotion at {cfg.promote.budget_factor:g}x included")
    return "; ".join(parts)
