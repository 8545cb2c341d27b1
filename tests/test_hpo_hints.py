"""`[agent] hpo_hints`: an LLM agent's prompt carries a TPE study of the run's hyperparameter
values (prompt/hpo_hints.py). On constructed histories, then in a real run through the CLI with
the OpenAI-compatible agent against the fake server on 127.0.0.1 (a numpy train.py: an iteration
costs about a second)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import single_run
from fake_llm_server import FakeLLMServer, openai_reply
from optuna.distributions import CategoricalDistribution, FloatDistribution
from typer.testing import CliRunner

from autoresearch.agents.hpo_block import END, START, HpoBlockError
from autoresearch.cli.app import app
from autoresearch.core.config import Config
from autoresearch.core.records import BASELINE, CRASH, DISCARD, KEEP, Iteration
from autoresearch.prompt.context import render_prompt
from autoresearch.prompt.hpo_hints import _tidy, hints

SECTION = "## What a hyperparameter search learned"


def train_py(share: float, seed: int, model: str = "centroid") -> str:
    """A train.py whose block declares SHARE (which matters), SEED and MODEL (which do not)."""
    return "\n".join([
        "import numpy as np", START,
        f"SHARE = {share}  # float[0.0, 1.0]", f"SEED = {seed}  # int[0, 9]",
        f'MODEL = "{model}"  # choice["centroid", "nearest"]', END, "print(SHARE)", "",
    ])  # fmt: skip


def history(*trials: tuple[float, int, float | None]) -> list[Iteration]:
    """Iterations 0.. with block values (SHARE, SEED) and their value (None: a crash)."""
    made = []
    for n, (share, seed, value) in enumerate(trials):
        status = BASELINE if n == 0 else (CRASH if value is None else DISCARD)
        made.append(Iteration(n, status, value=value, train_py=train_py(share, seed), parent=0))
    return made


# the metric is 0.1 + 0.6 * SHARE, whatever SEED is
SEEN = history((0.0, 0, 0.10), (0.5, 9, 0.40), (0.9, 3, 0.64), (0.2, 9, 0.22), (0.7, 0, 0.52),
               (0.3, 5, None))  # fmt: skip


def test_the_best_trials_come_first_with_their_values():
    found = hints(train_py(0.0, 0), SEEN, "maximize", seed=1)
    assert found["trials"] == 5  # the crash is a failed trial, not a completed one
    assert found["best"].splitlines() == [
        '- iteration 2: 0.6400 with SHARE = 0.9, SEED = 3, MODEL = "centroid"',
        '- iteration 4: 0.5200 with SHARE = 0.7, SEED = 0, MODEL = "centroid"',
        '- iteration 1: 0.4000 with SHARE = 0.5, SEED = 9, MODEL = "centroid"',
    ]
    lowest = hints(train_py(0.0, 0), SEEN, "minimize", seed=1)["best"].splitlines()
    assert lowest[0].startswith("- iteration 0: 0.1000 with SHARE = 0.0")


def test_the_parameter_that_mattered_comes_first():
    mattered = hints(train_py(0.0, 0), SEEN, "maximize", seed=1)["mattered"]
    assert mattered.startswith("SHARE (") and mattered.endswith("[fANOVA importance]")
    # with fewer trials than fANOVA needs: the spread of the metric between each one's values
    few = hints(train_py(0.0, 0), SEEN[:3], "maximize", seed=1)["mattered"]
    assert few.startswith("SHARE (0.54)") and few.endswith(
        "[spread of the metric between its values]"
    )
    assert "MODEL (0)" in few  # never varied: it did not matter


def test_the_suggestion_lies_in_the_declared_search_space():
    for seed in range(20):
        suggestion = hints(train_py(0.0, 0), SEEN, "maximize", seed)["suggestion"]
        values = dict(re.findall(r"(\w+) = (\S+?)(?:,|$)", suggestion))
        assert set(values) == {"SHARE", "SEED", "MODEL"}
        assert 0.0 <= float(values["SHARE"]) <= 1.0 and int(values["SEED"]) in range(10)
        assert values["MODEL"] in ('"centroid"', '"nearest"')


def test_no_hints_before_a_trial_scored_and_an_error_without_a_search_space():
    assert hints(train_py(0.0, 0), history((0.0, 0, None)), "maximize", 1) is None
    with pytest.raises(HpoBlockError, match="no '# --- hyperparameters"):
        hints("print(1)\n", SEEN, "maximize", 1)


def settings(on: bool) -> Config:
    return Config.model_validate({"agent": {"hpo_hints": on}})


def test_the_prompt_carries_the_study_only_when_hpo_hints_is_on():
    start = Iteration(4, KEEP, value=0.52, train_py=train_py(0.7, 0), parent=0)
    on = render_prompt("# program", start, SEEN, settings(True))
    assert f"{SECTION} (5 trials)" in on
    assert (
        "- iteration 2: 0.6400 with SHARE = 0.9" in on and "TPE's next suggestion: SHARE = " in on
    )
    off = render_prompt("# program", start, SEEN, settings(False))
    assert SECTION not in off and "TPE" not in off and "No hyperparameter search" not in off


def test_a_train_py_without_a_search_space_is_said_plainly():
    start = Iteration(0, BASELINE, value=0.1, train_py="import numpy as np\nprint(1)\n")
    prompt = render_prompt("# program", start, [start], settings(True))
    assert SECTION not in prompt
    assert "## No hyperparameter search" in prompt
    assert "declares no search space (no '# --- hyperparameters (autoresearch: hpo) ---' line)" in (
        prompt
    )
    broken = train_py(0.0, 0).replace("# float[0.0, 1.0]", "# float[1.0, 0.0]")
    prompt = render_prompt("# program", start, [replace_code(start, broken)], settings(True))
    assert "## No hyperparameter search" in prompt and "SHARE" in prompt.split("search space")[-1]


def replace_code(it: Iteration, code: str) -> Iteration:
    it.train_py = code
    return it


# --- a real run ------------------------------------------------------------------------------

# The metric grows with SHARE (the share of images the nearest class mean labels; the others
# are called class 0); SEED only reshuffles which images those are.
REAL = """\
import numpy as np
import prepare

# --- hyperparameters (autoresearch: hpo) ---
SHARE = {share}  # float[0.0, 1.0]
SEED = {seed}  # int[0, 9]
# --- end hyperparameters ---

x, y, x_val = prepare.load_data()
x = x[:6000].reshape(6000, -1).astype(np.float32)
v = x_val.reshape(len(x_val), -1).astype(np.float32)
c = np.stack([x[y[:6000] == k].mean(0) for k in range(10)])
nearest = ((v * v).sum(1)[:, None] - 2 * v @ c.T + (c * c).sum(1)[None, :]).argmin(1)
chosen = np.random.default_rng(SEED).random(len(v)) < SHARE
prepare.save_predictions(np.where(chosen, nearest, 0))
"""
PROPOSED = [(0.9, 3), (0.4, 7), (0.6, 1)]  # iterations 1-3; the prompt of 4 shows the study


def reply(share: float, seed: int) -> dict:
    code = REAL.format(share=share, seed=seed)
    return openai_reply(f"Set SHARE = {share}.\n\n```python\n{code}```\n", 500, 100)


def test_a_real_run_s_prompts_carry_the_study_of_its_iterations(ws, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-hints")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    (ws / "train.py").write_text(REAL.format(share=0.0, seed=0))
    single_run(ws)
    with FakeLLMServer() as server:
        with (ws / "autoresearch.toml").open("a") as f:
            f.write(
                f'\n[agent]\nname = "openai"\nbase_url = "{server.url}/v1"\nmax_retries = 0\n'
                "hpo_hints = true\n"
            )
        server.add(openai_reply("OK", 10, 1), *[reply(*p) for p in PROPOSED], reply(0.8, 2))
        result = CliRunner().invoke(app, ["run", str(ws), "--iterations", "4", "--budget", "30"])
        assert result.exit_code == 0, result.output
        prompts = [r.body["messages"][0]["content"] for r in server.requests[1:]]
    shown = CliRunner().invoke(app, ["status", str(ws), "--json"])
    values = {it["iteration"]: it["value"] for it in json.loads(shown.stdout)["iterations"]}
    assert values[0] == pytest.approx(0.1) and values[1] > values[3] > values[2] > 0.3

    # the first prompt: one trial (the baseline's SHARE = 0.0, SEED = 0)
    assert f"{SECTION} (1 trials)" in prompts[0]
    assert f"- iteration 0: {values[0]:.4f} with SHARE = 0.0, SEED = 0" in prompts[0]
    # the fourth: the baseline and iterations 1-3, the best first, SHARE the one that mattered
    last = prompts[3]
    assert f"{SECTION} (4 trials)" in last
    best = last.split("The best trials:\n")[1].split("\n\n")[0].splitlines()
    assert best == [
        f"- iteration 1: {values[1]:.4f} with SHARE = 0.9, SEED = 3",
        f"- iteration 3: {values[3]:.4f} with SHARE = 0.6, SEED = 1",
        f"- iteration 2: {values[2]:.4f} with SHARE = 0.4, SEED = 7",
    ]
    assert re.search(r"mattered, the most first: SHARE \([\d.e-]+\), SEED", last)
    suggestion = re.search(r"TPE's next suggestion: SHARE = ([\d.e-]+), SEED = (\d+)", last)
    assert 0.0 <= float(suggestion[1]) <= 1.0 and 0 <= int(suggestion[2]) <= 9


def test_a_suggestion_is_rounded_within_its_range_and_a_choice_shown_as_declared():
    assert _tidy(0.123456789, FloatDistribution(0.1, 0.12345)) == 0.12345  # not 0.1235, past it
    assert _tidy(0.0123456, FloatDistribution(0.001, 0.1)) == 0.01235
    assert _tidy(0.123456789, CategoricalDistribution([0.123456789, 0.5])) == 0.123456789
