"""The `hpo` agent: Bayesian hyperparameter search over train.py's marked block, no LLM.

Each proposal rebuilds an in-memory Optuna study from the run's history, so there is no state
of its own to drift or to lose: a resumed run continues the same search. Every finished
iteration whose block values fit the incumbent's spec becomes a trial (crashes, and runs that
produced no finite value, as failed trials); the others are skipped and counted. TPE, seeded
with `agent.seed + iteration`, then suggests the next values, which are written into the
incumbent's block. The first N_STARTUP completed trials are random exploration: far fewer than
Optuna's default of 10, since every trial costs a full training run. A proposal's description
names its changes first, then how they were chosen (random, TPE, or by hand).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from autoresearch.agents.base import AgentError, Proposal, Request
from autoresearch.agents.hpo_block import (
    END,
    EXAMPLE,
    START,
    Block,
    HpoBlockError,
    NoBlockError,
    Param,
    Value,
    parse_block,
    rewrite_block,
    same,
)
from autoresearch.core import pysource
from autoresearch.core.config import AgentConfig
from autoresearch.core.records import BASELINE, CRASH, DISCARD, KEEP, Iteration

N_STARTUP = 5  # completed trials of random exploration before TPE takes over
RESAMPLES = 5  # asks before giving up on the sampler and perturbing one value by hand
FINISHED = (BASELINE, KEEP, DISCARD, CRASH)  # statuses that ran train.py


class HpoAgent:
    name = "hpo"
    can_repair = False  # it only samples the block's values: a crash stands

    def __init__(self, cfg: AgentConfig, workspace: Path) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.seed = cfg.seed
        path = workspace / "train.py"
        try:
            source = pysource.text(path.read_bytes())
        except OSError as err:
            raise AgentError(f"hpo: cannot read {path}: {err.strerror}") from None
        except ValueError as err:
            raise AgentError(str(err)) from None
        try:
            self.block = parse_block(source)
        except NoBlockError:
            raise AgentError(
                f"train.py has no '{START}' block; add one like `{EXAMPLE}` between that line "
                f"and '{END}', or choose another agent"
            ) from None
        except HpoBlockError as err:
            raise AgentError(f"train.py: hyperparameter block: {err}") from None

    def check(self) -> str:
        count = len(self.block.params)
        return f"hpo: {count} hyperparameters in train.py, TPE sampler, no LLM needed"

    def unpriced(self) -> str | None:
        return None  # no LLM: it costs nothing

    def propose(self, request: Request) -> Proposal:
        try:
            block = parse_block(request.train_py)
        except HpoBlockError as err:
            return Proposal(None, invalid_reason=f"incumbent train.py: hyperparameter block: {err}")
        seed = self.seed + request.iteration
        study, skipped = build_study(request.history, block.params, request.direction, seed)
        values, perturbed = _suggest(study, block, random.Random(seed))
        if values is None:
            reason = "every hyperparameter in the block has a single possible value"
            return Proposal(None, invalid_reason=reason)
        return Proposal(
            rewrite_block(request.train_py, values),
            explanation=_explain(study, block, values, skipped, perturbed),
            raw_output=json.dumps(values),
        )


def distributions(params: tuple[Param, ...]) -> dict[str, BaseDistribution]:
    """Optuna's search space for the block's parameters."""
    space: dict[str, BaseDistribution] = {}
    for p in params:
        if p.kind == "float":
            space[p.name] = FloatDistribution(p.low, p.high, log=p.log)
        elif p.kind == "int":
            space[p.name] = IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            space[p.name] = CategoricalDistribution(p.choices)
    return space


def build_study(
    history: list[Iteration], params: tuple[Param, ...], direction: str, seed: int
) -> tuple[optuna.Study, int]:
    """A TPE study holding every usable finished iteration; also how many were skipped."""
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=N_STARTUP)
    study = optuna.create_study(direction=direction, sampler=sampler)
    space = distributions(params)
    skipped = 0
    for it in history:
        if it.status not in FINISHED:
            continue
        values = _trial_values(it.train_py, params)
        if values is None:
            skipped += 1
            continue
        ok = it.status != CRASH and it.value is not None and math.isfinite(it.value)
        trial = optuna.trial.create_trial(
            state=TrialState.COMPLETE if ok else TrialState.FAIL,
            value=it.value if ok else None,
            params=values,
            distributions=space,
            user_attrs={"iteration": it.iteration},
        )
        study.add_trial(trial)
    return study, skipped


def _trial_values(train_py: str, params: tuple[Param, ...]) -> dict[str, Value] | None:
    """An iteration's block values, or None if its block is missing, lacks one of the params,
    or has a value outside the current spec."""
    try:
        found = parse_block(train_py).values()
    except HpoBlockError:
        return None
    values: dict[str, Value] = {}
    for p in params:
        if p.name not in found or not p.contains(found[p.name]):
            return None
        values[p.name] = float(found[p.name]) if p.kind == "float" else found[p.name]
    return values


def _tidy(p: Param, value: Value) -> Value:
    """Floats rounded to 6 significant digits (and kept in range), so the file stays readable."""
    if p.kind == "float":
        return float(min(max(float(f"{value:.6g}"), p.low), p.high))
    return int(value) if p.kind == "int" else value


def _equal(p: Param, a: Value, b: Value) -> bool:
    return same(a, b) if p.kind == "choice" else a == b


def _changed(block: Block, values: dict[str, Value]) -> list[Param]:
    return [p for p in block.params if not _equal(p, values[p.name], p.value)]


def _suggest(
    study: optuna.Study, block: Block, rng: random.Random
) -> tuple[dict[str, Value] | None, bool]:
    """New values that differ from the incumbent's, and whether they were perturbed by hand."""
    space = distributions(block.params)
    for _ in range(RESAMPLES):
        asked = study.ask(space).params
        values = {p.name: _tidy(p, asked[p.name]) for p in block.params}
        if _changed(block, values):
            return values, False
    movable = [p for p in block.params if p.kind != "choice" or len(p.choices) > 1]
    if not movable:
        return None, False
    p = rng.choice(movable)
    return {**block.values(), p.name: _other_value(p, rng)}, True


def _other_value(p: Param, rng: random.Random) -> Value:
    """A random legal value of p that differs from its current one."""
    if p.kind == "choice":
        return rng.choice([c for c in p.choices if not same(c, p.value)])
    for _ in range(RESAMPLES):
        if p.kind == "int":
            value = _tidy(p, rng.randint(int(p.low), int(p.high)))
        elif p.log:
            value = _tidy(p, math.exp(rng.uniform(math.log(p.low), math.log(p.high))))
        else:
            value = _tidy(p, rng.uniform(p.low, p.high))
        if value != p.value:
            return value
    return _tidy(p, p.high if p.value != p.high else p.low)


def _show(value: Value) -> str:
    return value if isinstance(value, str) else repr(value)


def _explain(
    study: optuna.Study, block: Block, values: dict[str, Value], skipped: int, perturbed: bool
) -> str:
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    changed = _changed(block, values)
    changes = [f"{p.name} {_show(p.value)} -> {_show(values[p.name])}" for p in changed]
    summary = ", ".join(changes[:3]) + (f", +{len(changes) - 3} more" if len(changes) > 3 else "")
    finished = len(completed) + len(failed)
    how = "by hand" if perturbed else "random" if len(completed) < N_STARTUP else "TPE"
    trials = f"{finished} finished trial{'' if finished == 1 else 's'}"
    lines = [f"{summary} (hpo: {how}, {trials})"]  # the changes first: what a cut line keeps
    for p, change in zip(changed, changes, strict=True):
        if perturbed:
            why = f"perturbed by hand: the sampler repeated the incumbent {RESAMPLES} times"
        elif len(completed) < N_STARTUP:
            why = (
                f"random exploration: {len(completed)} completed trials, TPE starts at {N_STARTUP}"
            )
        else:
            best = study.best_trial
            why = (
                f"TPE suggestion from {len(completed)} completed trials; the best so far, "
                f"{best.value:.6g} at iteration {best.user_attrs['iteration']}, "
                f"had {_show(best.params[p.name])}"
            )
        lines.append(f"- {change} ({why})")
    if failed:
        lines.append(f"{len(failed)} crashed or valueless iterations count as failed trials.")
    if skipped:
        lines.append(
            f"{skipped} earlier iterations were left out: their block lacks a hyperparameter "
            "or has a value outside the current ranges."
        )
    return "\n".join(lines)
