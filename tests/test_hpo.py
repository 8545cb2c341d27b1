"""The `hpo` agent and its hyperparameter block: parsing, rewriting, proposing. No training."""

from __future__ import annotations

import ast
import math
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

import autoresearch
from autoresearch.agents.base import AgentError, Request
from autoresearch.agents.hpo import HpoAgent, build_study
from autoresearch.agents.hpo_block import (
    END,
    START,
    HpoBlockError,
    NoBlockError,
    parse_block,
    rewrite_block,
)
from autoresearch.core.config import AgentConfig
from autoresearch.core.records import Iteration

TEMPLATE = Path(autoresearch.__file__).parent / "tasks" / "fashion_mnist" / "train.py"
SOURCE = TEMPLATE.read_text()


def block(*lines: str) -> str:
    return "\n".join(["import math", START, *lines, END, "print(math.pi)", ""])


def workspace(tmp_path: Path, source: str = SOURCE) -> Path:
    (tmp_path / "train.py").write_text(source)
    return tmp_path


def request(iteration: int, train_py: str, history: list[Iteration], **kw) -> Request:
    return Request(iteration, "prompt", train_py, Path("."), list(history), **kw)


def outside_block(source: str) -> list[str]:
    parsed = parse_block(source)
    lines = source.splitlines()
    return lines[: parsed.start] + lines[parsed.end - 1 :]


# --- parsing ---


def test_parses_the_template_block():
    parsed = parse_block(SOURCE)
    by_name = {p.name: p for p in parsed.params}
    assert len(parsed.params) == 9
    lr = by_name["LEARNING_RATE"]
    assert (lr.kind, lr.value, lr.low, lr.high, lr.log) == ("float", 0.1, 1e-4, 1.0, True)
    batch = by_name["BATCH_SIZE"]
    assert (batch.kind, batch.value, batch.low, batch.high, batch.log) == (
        "int",
        32,
        16,
        1024,
        True,
    )
    assert by_name["OPTIMIZER"].choices == ("sgd", "adam", "adamw")
    assert by_name["NORMALIZE"].choices == (False, True)
    assert by_name["MOMENTUM"].log is False
    assert SOURCE.splitlines()[lr.line - 1].startswith("LEARNING_RATE = 0.1")


def test_blank_and_comment_lines_inside_the_block_are_allowed():
    parsed = parse_block(block("", "# the step size", "LR = 0.1  #float[0.001,1]log"))
    assert [(p.name, p.log) for p in parsed.params] == [("LR", True)]


@pytest.mark.parametrize(
    "source, message",
    [
        (block("X = 1  # float[0, 2]").replace(START, "# hyperparameters"), "no '# --- hyper"),
        (block("X = 1  # float[0, 2]").replace(END, ""), "never closed"),
        (block("X = 1  # float[0, 2]") + block("Y = 1  # float[0, 2]"), "more than one"),
        (block(), "declares no hyperparameters"),
        (block("X = 1"), "line 3: no spec comment"),
        (block("X = 1  # number"), "line 3: unknown spec"),
        (block("X = 1  # float[0, 2"), "line 3: unknown spec"),
        (block("X + 1  # float[0, 2]"), "line 3: expected NAME = value"),
        (block("  X = 1  # float[0, 2]"), "line 3: expected NAME = value"),
        (block("X = Y = 1  # float[0, 2]"), "line 3: expected NAME = value"),
        (block("X = 'a  # choice['a']"), "line 3: expected NAME = value"),
        (block("X = math.pi  # float[0, 4]"), "line 3: the value is not a Python literal"),
        (block("X = 1  # float[0]"), "line 3: float[...] needs two numbers"),
        (block("X = 1  # int[0.5, 2]"), "line 3: int[...] needs two integers"),
        (block("X = 1  # float[2, 1]"), "not below the high bound"),
        (block("X = 1  # float[0, 2] log"), "log scale needs a positive low bound"),
        (block("X = 'a'  # float[0, 2]"), "line 3: the value 'a' is not a number"),
        (block("X = 1.5  # int[0, 2]"), "line 3: the value 1.5 is not an integer"),
        (block("X = 1  # choice[]"), "choice[...] is empty"),
        (block("X = 1  # choice[1, None]"), "must be str, int, float or bool"),
        (block("X = 1  # choice[1, True]"), "equal values twice"),
        (block("X = 1  # choice[1, 2]", "X = 2  # choice[1, 2]"), "line 4: X is declared twice"),
    ],
)
def test_malformed_blocks_are_reported_with_the_line(source, message):
    with pytest.raises(HpoBlockError) as err:
        parse_block(source)
    assert message in str(err.value)
    if message.startswith("line "):
        bad_line = source.splitlines()[int(message.split()[1].rstrip(":")) - 1]
        assert bad_line.strip() in str(err.value)


def test_no_block_is_its_own_error():
    with pytest.raises(NoBlockError):
        parse_block("print('hello')\n")


def test_current_values_may_lie_outside_their_spec():
    parsed = parse_block(block("LR = 2.0  # float[0.001, 1] log", "OPT = 'sgd'  # choice['adam']"))
    assert [p.contains(p.value) for p in parsed.params] == [False, False]
    lr, opt = parsed.params
    assert lr.contains(0.5) and not lr.contains(True) and opt.contains("adam")


# --- rewriting ---


def test_rewrite_changes_only_the_values_in_the_block():
    values = {"LEARNING_RATE": 0.00316228, "OPTIMIZER": "adam", "NORMALIZE": True}
    new = rewrite_block(SOURCE, values)
    assert outside_block(new) == outside_block(SOURCE)
    assert 'OPTIMIZER = "adam"  # choice["sgd", "adam", "adamw"]' in new
    assert "LEARNING_RATE = 0.00316228  # float[1e-4, 1.0] log" in new
    changed = [a for a, b in zip(SOURCE.splitlines(), new.splitlines(), strict=True) if a != b]
    assert len(changed) == 3
    assert {k: parse_block(new).values()[k] for k in values} == values


def test_rewrite_keeps_odd_spacing_and_rejects_unknown_names():
    source = block("X=1   #   int[0, 9]   ")
    assert rewrite_block(source, {"X": 7}) == source.replace("X=1", "X=7")
    with pytest.raises(HpoBlockError, match="not in the block: Y"):
        rewrite_block(source, {"Y": 1})


# --- the agent ---


def test_constructor_rejects_a_train_py_without_a_block(tmp_path):
    with pytest.raises(AgentError, match="has no '# --- hyperparameters .*choose another agent"):
        HpoAgent(AgentConfig(), workspace(tmp_path, "print('no block')\n"))


def test_constructor_reports_a_malformed_block(tmp_path):
    with pytest.raises(AgentError, match="line 3: no spec comment"):
        HpoAgent(AgentConfig(), workspace(tmp_path, block("X = 1")))


def test_check_describes_the_block(tmp_path):
    agent = HpoAgent(AgentConfig(), workspace(tmp_path))
    assert agent.check() == "hpo: 9 hyperparameters in train.py, TPE sampler, no LLM needed"


def test_proposal_is_valid_python_that_changes_the_block_within_its_ranges(tmp_path):
    agent = HpoAgent(AgentConfig(), workspace(tmp_path))
    history = [Iteration(0, "baseline", 0.8, train_py=SOURCE)]
    proposal = agent.propose(request(1, SOURCE, history))
    assert proposal.train_py is not None and proposal.train_py != SOURCE
    ast.parse(proposal.train_py)
    assert outside_block(proposal.train_py) == outside_block(SOURCE)
    assert all(p.contains(p.value) for p in parse_block(proposal.train_py).params)
    assert proposal.usage.cost_usd == 0.0
    first, *rest = proposal.explanation.splitlines()
    assert first.endswith(" (hpo: random, 1 finished trial)")  # TPE starts at its 5th trial
    changed = [line[2:].split(" (")[0] for line in rest if line.startswith("- ")]
    assert first.startswith(", ".join(changed[:3]))  # the changes first
    assert rest and all("random exploration" in line for line in rest if line.startswith("- "))


def test_proposals_are_deterministic_for_the_same_history_and_seed(tmp_path):
    ws = workspace(tmp_path)
    history = [Iteration(0, "baseline", 0.80, train_py=SOURCE)]
    incumbent = SOURCE
    agent = HpoAgent(AgentConfig(seed=3), ws)
    for i, status in enumerate(["discard", "crash", "invalid", "keep", "discard", "discard"], 1):
        train_py = agent.propose(request(i, incumbent, history)).train_py
        value = None if status in ("crash", "invalid") else 0.8 + i / 100
        history.append(Iteration(i, status, value, train_py=train_py))
        incumbent = train_py if status == "keep" else incumbent

    def propose(seed: int) -> str:
        fresh = HpoAgent(AgentConfig(seed=seed), ws)
        return fresh.propose(request(7, incumbent, history)).explanation

    assert propose(3) == propose(3)
    assert propose(3) != propose(4)
    assert propose(3).splitlines()[0].endswith(" (hpo: TPE, 6 finished trials)")  # not the invalid
    assert "1 crashed or valueless iterations count as failed trials" in propose(3)
    assert "TPE suggestion from 5 completed trials" in propose(3)


def test_history_becomes_trials_and_misfits_are_skipped():
    params = parse_block(SOURCE).params
    outside = SOURCE.replace("LEARNING_RATE = 0.1 ", "LEARNING_RATE = 5.0 ")
    missing = SOURCE.replace('OPTIMIZER = "sgd"  # choice["sgd", "adam", "adamw"]\n', "")
    history = [
        Iteration(0, "baseline", 0.8, train_py=SOURCE),
        Iteration(1, "crash", None, train_py=SOURCE),
        Iteration(2, "invalid", None, train_py=SOURCE),
        Iteration(3, "discard", 0.7, train_py=outside),
        Iteration(4, "discard", 0.7, train_py=missing),
        Iteration(5, "discard", 0.7, train_py="no block here"),
        Iteration(6, "keep", 0.9, train_py=SOURCE),
    ]
    study, skipped = build_study(history, params, "minimize", seed=0)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL] + [
        optuna.trial.TrialState.COMPLETE
    ]
    assert skipped == 3
    assert study.best_value == 0.8  # minimize


def test_a_repeated_suggestion_is_perturbed(tmp_path, monkeypatch):
    agent = HpoAgent(AgentConfig(), workspace(tmp_path))
    incumbent = parse_block(SOURCE).values()
    monkeypatch.setattr(optuna.Study, "ask", lambda self, space: SimpleNamespace(params=incumbent))
    proposal = agent.propose(request(1, SOURCE, []))
    changed = [line for line in proposal.explanation.splitlines() if line.startswith("- ")]
    assert len(changed) == 1 and "perturbed by hand" in changed[0]
    assert all(p.contains(p.value) for p in parse_block(proposal.train_py).params)


def test_a_block_with_nothing_to_change_gives_an_invalid_proposal(tmp_path):
    source = block("X = 1  # choice[1]")
    agent = HpoAgent(AgentConfig(), workspace(tmp_path, source))
    proposal = agent.propose(request(1, source, []))
    assert proposal.train_py is None and "single possible value" in proposal.invalid_reason


def test_an_incumbent_without_a_block_gives_an_invalid_proposal(tmp_path):
    agent = HpoAgent(AgentConfig(), workspace(tmp_path))
    proposal = agent.propose(request(1, "print('edited away')\n", []))
    assert proposal.train_py is None and "incumbent train.py" in proposal.invalid_reason


def test_tpe_concentrates_near_the_optimum(tmp_path):
    """value = -(log10(lr) + 2.5)^2: after 30 trials, proposals cluster around lr = 10^-2.5.
    Uniform sampling on the log scale of [1e-4, 1] lands within half a decade 25% of the time."""

    def distance(train_py: str) -> float:
        return abs(math.log10(parse_block(train_py).values()["LEARNING_RATE"]) + 2.5)

    agent = HpoAgent(AgentConfig(), workspace(tmp_path))
    history = [Iteration(0, "baseline", -(distance(SOURCE) ** 2), train_py=SOURCE)]
    incumbent = SOURCE
    for i in range(1, 31):
        train_py = agent.propose(request(i, incumbent, history)).train_py
        value = -(distance(train_py) ** 2)
        keep = value > max(it.value for it in history)
        history.append(Iteration(i, "keep" if keep else "discard", value, train_py=train_py))
        incumbent = train_py if keep else incumbent
    draws = [agent.propose(request(31 + k, incumbent, history)).train_py for k in range(40)]
    near = sum(distance(train_py) < 0.5 for train_py in draws) / len(draws)
    assert near >= 0.45
    assert max(it.value for it in history) > -0.1
