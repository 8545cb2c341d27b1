"""What the `hpo` agent knows, for an LLM agent's prompt (`[agent] hpo_hints`): an Optuna study of
every recorded iteration's hyperparameter values (the block of the train.py a proposal starts
from, read as agents/hpo.py reads it), shown as its best trials, the parameters that mattered
(Optuna's fANOVA importance; with fewer than IMPORTANCE_TRIALS trials, or where it fails, the
spread of the metric between each parameter's values), and one TPE suggestion that the agent
may take or leave. A train.py that declares no search space gets one plain line instead
(prompts/hpo_hints_none.txt): the agent and whoever reads the prompt learn why there are no hints."""

from __future__ import annotations

import math

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import TrialState

from autoresearch.agents.hpo import build_study, distributions
from autoresearch.agents.hpo_block import format_value, parse_block
from autoresearch.core.records import Iteration
from autoresearch.core.text import fmt

BEST_TRIALS = 3
IMPORTANCE_TRIALS = 4
SHOWN_PARAMS = 5


def hints(train_py: str, history: list[Iteration], direction: str, seed: int) -> dict | None:
    """The fields of the prompt's HPO section (prompts/hpo_hints.txt) for a proposal from
    train_py; None before a trial scored; HpoBlockError where train_py declares no search space
    (no block, or a malformed one)."""
    block = parse_block(train_py)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study, _ = build_study(history, block.params, direction, seed)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return None
    ranked = sorted(done, key=lambda t: t.value, reverse=direction == "maximize")[:BEST_TRIALS]
    best = [
        f"- iteration {t.user_attrs['iteration']}: {fmt(t.value)} with "
        + ", ".join(f"{k} = {format_value(v)}" for k, v in t.params.items())
        for t in ranked
    ]
    space = distributions(block.params)
    suggested = study.ask(space).params
    suggestion = ", ".join(
        f"{p.name} = {format_value(_tidy(suggested[p.name], space[p.name]))}" for p in block.params
    )
    return {
        "trials": len(done),
        "best": "\n".join(best),
        "mattered": _mattered(study, done),
        "suggestion": suggestion,
    }


def _tidy(value, distribution: BaseDistribution):
    """A float range's value to 4 significant digits, kept within the range (rounding may step
    past its end); an int or one of the choices as it is."""
    if not isinstance(distribution, FloatDistribution):
        return value
    return min(max(float(f"{value:.4g}"), distribution.low), distribution.high)


def _mattered(study: optuna.Study, done: list) -> str:
    """The parameters by how much they mattered, the most first, as one line."""
    names = list(done[0].params)
    importance: dict[str, float] = {}
    if len(done) >= IMPORTANCE_TRIALS:
        try:
            importance = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError, ZeroDivisionError):
            importance = {}
    how = "fANOVA importance"
    if not importance:  # the metric's spread between the means at each parameter's values
        how = "spread of the metric between its values"
        for name in names:
            groups: dict[object, list[float]] = {}
            for t in done:
                groups.setdefault(t.params.get(name), []).append(t.value)
            means = [sum(v) / len(v) for v in groups.values()]
            importance[name] = max(means) - min(means) if len(means) > 1 else 0.0
    ordered = sorted(importance.items(), key=lambda kv: -kv[1])[:SHOWN_PARAMS]
    shown = ", ".join(f"{k} ({v:.2g})" for k, v in ordered if math.isfinite(v))
    return f"{shown} [{how}]"
