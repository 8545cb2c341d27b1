"""The prompt stays within [loop] context_tokens however long the run, condensing older
iterations (never just cutting them), and shows what the runs did."""

import random
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core import config
from autoresearch.core.history import History
from autoresearch.core.records import BASELINE, CRASH, DISCARD, INVALID, KEEP, Iteration
from autoresearch.core.stops import failure_kind
from autoresearch.core.tokens import estimate
from autoresearch.prompt.condense import condense, what_changed
from autoresearch.prompt.context import ContextTooSmall, render_prompt
from autoresearch.store import workspace
from autoresearch.store.layout import runs_dir

TEMPLATE = (workspace.TASKS["fashion-mnist"] / "train.py").read_text()
PROGRAM = (workspace.TASKS["fashion-mnist"] / "program.md").read_text()
CHANGES = [  # (a line of train.py, what it becomes)
    (r"LEARNING_RATE = \S+", "LEARNING_RATE = {:.4g}"),
    (r"BATCH_SIZE = \d+", "BATCH_SIZE = {}"),
    (r"T_max=\d+", "T_max={}"),
    (r"torch\.nn\.ReLU\(\),", "torch.nn.ReLU(),  # {}"),
]
FAILURES = [
    "exit code 1: RuntimeError: shapes (32x{} and 784x10)",
    "timeout: killed at 300s budget + 30s grace",
    "exit code 1: NameError: name 'x{}' is not defined",
    "exit code 1: torch.OutOfMemoryError: CUDA out of memory ({} MiB)",
]


def synthetic(size: int, tmp_path, seed: int = 0) -> list[Iteration]:
    """A run's history in the shape of a real one; every crash has the same log, as does every
    other run (their lines are what the prompt shows)."""
    rng = random.Random(seed)
    epochs = tmp_path / "epochs.log"
    epochs.write_text("".join(f"epoch {e} loss 0.{e:04d} (9.5s)\n" for e in range(1, 31)))
    crashed = tmp_path / "crash.log"
    crashed.write_text("epoch 1 loss 0.9 (9.5s)\nTraceback (most recent call last):\nBOOM: here\n")
    history = [
        Iteration(0, BASELINE, 0.80, explanation="Baseline", train_py=TEMPLATE,
                  train_seconds=290.0, peak_memory_mb=500.0, log_path=str(epochs)),
    ]  # fmt: skip
    for n in range(1, size):
        parent = History(history, config.Config().better).incumbent
        status = rng.choices([KEEP, DISCARD, CRASH, INVALID], [0.5, 7, 2, 0.5])[0]
        pattern, new = rng.choice(CHANGES)
        train_py = re.sub(pattern, new.format(rng.randint(1, 999)), parent.train_py, count=1)
        reason = rng.choice(FAILURES).format(rng.randint(1, 999)) if status == CRASH else None
        value = {KEEP: (parent.value or 0) + 0.001, DISCARD: rng.uniform(0.5, 0.8)}.get(status)
        if status == INVALID:
            train_py, reason = "", "the proposal has no python block"
        history.append(Iteration(
            n, status, value, reason, f"Idea {n}: change {pattern[:12]}\n\nBecause {n}.",
            train_py, parent=parent.iteration, train_seconds=rng.uniform(5, 300),
            peak_memory_mb=rng.uniform(100, 900),
            log_path=str(crashed if status == CRASH else epochs),
        ))  # fmt: skip
    return history


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    ws = tmp_path_factory.mktemp("budget") / "ws"
    workspace.init(ws, "fashion-mnist", "python3")
    return config.load(ws)


@pytest.mark.parametrize("size", [10, 100, 1000, 5000])
def test_every_size_fits_and_lists_every_keep_and_crash_kind(cfg, tmp_path, size):
    history = synthetic(size, tmp_path)
    started = time.perf_counter()
    prompt = render_prompt(PROGRAM, History(history, cfg.better).incumbent, history, cfg)
    print(f"{size} iterations: {estimate(prompt)} tokens in {time.perf_counter() - started:.2f}s")
    assert estimate(prompt) <= cfg.loop.context_tokens == 16_000
    for it in history:
        if it.kept:
            assert f"- {it.iteration}: {it.status} " in prompt or (
                f"### Iteration {it.iteration}: {it.status}" in prompt
            )
    for kind in {failure_kind(it) for it in history} - {None}:
        shown = [it for it in history if failure_kind(it) == kind and it.reason in prompt]
        assert f"- {kind}: " in prompt or shown, kind  # in a group, or an iteration's own line
    counts = {s: sum(it.status == s for it in history) for s in (KEEP, DISCARD, CRASH, INVALID)}
    exact = f"{size} experiments (baseline 1, " + ", ".join(
        f"{s} {counts[s]}" for s in (KEEP, DISCARD, CRASH, INVALID) if counts[s]
    )
    assert exact in prompt  # the statistics stay exact
    assert "BOOM: here" in prompt or not any(it.status == CRASH for it in history[-10:])
    assert "epoch 30 loss 0.0030 (9.5s)" in prompt.split("# Experiment history")[0]
    if size >= 1000:  # condensed, not cut: the groups cover every older iteration
        assert "## Earlier experiments (iterations 0-" in prompt and "one line each" not in prompt
        section = prompt.split("### Grouped by what they changed")[1].split("### Failures")[0]
        groups = re.findall(r"^- .*?: (\d+) \(", section, flags=re.M)
        more = re.search(r"^- (\d+) more in", section, flags=re.M)
        listed = sum(map(int, groups)) + (int(more.group(1)) if more else 0)
        assert listed == sum(it.status != KEEP for it in history[1:-10] if it.train_py)


def test_a_longer_budget_shows_more_and_a_shorter_one_less(cfg, tmp_path):
    history = synthetic(1000, tmp_path)
    sizes = {}
    for tokens in (7000, 16_000, 64_000):  # 7000: a little more than the shortest prompt
        small = config.with_flags(cfg, {"loop.context_tokens": tokens})
        prompt = render_prompt(PROGRAM, History(history, small.better).incumbent, history, small)
        sizes[tokens] = estimate(prompt)
        assert sizes[tokens] <= tokens
        assert all(f"{it.iteration}: keep" in prompt for it in history if it.status == KEEP)
    assert sizes[7000] < sizes[16_000] < sizes[64_000]


def test_recent_iterations_show_their_run_their_log_and_their_diff(cfg, tmp_path):
    history = synthetic(30, tmp_path, seed=3)
    history[-1] = Iteration(
        29, CRASH, None, "exit code 1: BOOM", "Dropout before the last layer", TEMPLATE + "x\n",
        parent=0, train_seconds=12.5, peak_memory_mb=321.0, log_path=history[-1].log_path,
    )  # fmt: skip
    history[-1].log_path = str(tmp_path / "crash.log")
    prompt = render_prompt(PROGRAM, history[0], history, cfg)
    entry = prompt.split("### Iteration 29: crash")[1]
    assert "Training ran 12.5 s; peak memory 321 MB." in entry
    assert "The end of its training log (last 3 lines):\n```\nepoch 1 loss 0.9" in entry
    assert "Its change to iteration 0's train.py:\n```diff\n@@ " in entry and "\n+x\n" in entry


def test_what_a_change_touched_groups_it():
    lr = re.sub(r"LEARNING_RATE = \S+", "LEARNING_RATE = 0.5", TEMPLATE)
    both = lr.replace("torch.nn.ReLU(),", "torch.nn.GELU(),").replace("T_max=10", "T_max=5")
    assert what_changed(TEMPLATE, lr) == (("LEARNING_RATE",), "hyperparameters LEARNING_RATE")
    assert what_changed(TEMPLATE, both)[1] == (
        "hyperparameters LEARNING_RATE and code in build_model, main"
    )
    assert what_changed(TEMPLATE, TEMPLATE + "SEED = 1\n")[1] == "code in top level"


def test_condense_is_bounded_for_any_caller(cfg, tmp_path):
    history = synthetic(2000, tmp_path)
    text = condense(history, 3000, cfg.better, cfg.metric)
    assert estimate(text) <= 3000 and text.startswith("## Statistics\n2000 experiments")
    assert all(f"- {it.iteration}: keep" in text for it in history if it.status == KEEP)
    assert "tried LEARNING_RATE " in text or "more in" in text


def test_a_budget_too_small_for_train_py_says_so(cfg, tmp_path):
    history = synthetic(10, tmp_path)
    tiny = config.with_flags(cfg, {"loop.context_tokens": 1000})
    with pytest.raises(ContextTooSmall, match=r"context_tokens = 1000 is too small.* or more"):
        render_prompt(PROGRAM, history[0], history, tiny)
    with pytest.raises(config.ConfigError, match="context_tokens"):
        config.with_flags(cfg, {"loop.context_tokens": 10})


def test_a_real_run_shows_the_incumbents_epochs_and_a_recent_crash(ws, tmp_path):
    """Real training of the template on real data: the second prompt shows how the incumbent
    ran (its real epoch lines), and the crash before it with its log and its diff."""
    base = re.sub(r"BATCH_SIZE = \d+", "BATCH_SIZE = 1024", (ws / "train.py").read_text())
    (ws / "train.py").write_text(base)  # several epochs fit in seconds
    folder = tmp_path / "proposals"
    folder.mkdir()
    crash = base.replace("\nimport time\n", "\nraise RuntimeError('on purpose')  # before torch\n")
    (folder / "001-crash.py").write_text(crash)
    (folder / "001-crash.md").write_text("A crash\n\nTo see its log.")
    (folder / "002-again.py").write_text(crash)
    (folder / "002-again.md").write_text("The same\n\nAgain.")
    with open(ws / "autoresearch.toml", "a") as f:
        f.write("\n[loop]\nrepairs = 0\n")  # 001's crash stands, for 002's prompt to show
    args = ["run", str(ws), "--agent", "replay", "--replay-dir", str(folder), "--iterations", "2"]
    too_small = CliRunner().invoke(
        app, [*args, "--budget", "3", "--grace", "30", "--context-tokens", "1000"]
    )
    assert too_small.exit_code != 0 and "iteration 0: baseline" in too_small.output
    stop = re.search(r"--context-tokens (\d+) or more to resume", too_small.output)
    assert stop and "[loop] context_tokens = 1000 is too small" in too_small.output
    result = CliRunner().invoke(app, [*args, "--context-tokens", stop.group(1)])  # resumes
    assert result.exit_code == 0 and "resuming after iteration 0" in result.output, result.output
    (run,) = runs_dir(ws).iterdir()
    prompt = (run / "iterations" / "0002" / "prompt.md").read_text()
    log = (run / "iterations" / "0000" / "train.log").read_text().splitlines()
    epochs = [line for line in log if line.startswith("epoch ")]
    assert epochs, "the template prints a line per epoch"
    stable, history = prompt.split("# Experiment history")
    assert "## How it ran\n\nTraining ran " in stable and "MB." in stable
    assert epochs[0] in stable and epochs[-1] in stable and log[-1] in stable  # "trained N epochs"
    crashed = history.split("### Iteration 1: crash")[1]
    assert "Training ran " in crashed and "The end of its training log" in crashed
    assert "RuntimeError: on purpose" in crashed.split("The end of its training log")[1]
    assert "Its change to iteration 0's train.py:" in crashed
    baseline = history.split("### Iteration 0: baseline")[1].split("### Iteration 1")[0]
    assert "shown above" in baseline and epochs[-1] not in baseline  # the incumbent's log once
    assert "+raise RuntimeError('on purpose')  # before torch" in crashed


TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=400) | st.sampled_from(
    ["", "Tune the learning rate", "学习率 ✓ → 🚀", "x" * 2000, "a\n\n\nb  c\t\td"]
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    statuses=st.lists(st.sampled_from([KEEP, DISCARD, CRASH, INVALID]), max_size=400),
    texts=st.lists(TEXT, min_size=1, max_size=8),
    tokens=st.integers(3000, 40_000),
    window=st.integers(0, 12),
)
def test_the_prompt_never_exceeds_the_budget(
    cfg, tmp_path_factory, statuses, texts, tokens, window
):
    base = Iteration(0, BASELINE, 0.5, explanation=texts[0], train_py=TEMPLATE, train_seconds=3.0)
    history = [base]
    for n, status in enumerate(statuses, 1):
        text = texts[n % len(texts)]
        code = (
            "" if status == INVALID else TEMPLATE.replace("SEED = 0", f"SEED = {n}  # {text[:40]}")
        )
        history.append(Iteration(
            n, status, None if status in (CRASH, INVALID) else n / 1000, text[:200] or None,
            text, code, parent=0, train_seconds=1.0, peak_memory_mb=10.0,
        ))  # fmt: skip
    small = config.with_flags(cfg, {"loop.context_tokens": tokens, "loop.recent_window": window})
    try:
        prompt = render_prompt(PROGRAM, base, history, small)
    except ContextTooSmall as err:  # said in one line, never a longer prompt
        assert "\n" not in str(err) and f"context_tokens = {tokens} is too small" in str(err)
        return
    assert estimate(prompt) <= tokens
    assert all(f"{it.iteration}: keep" in prompt for it in history if it.status == KEEP)
