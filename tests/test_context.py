"""The prompt: full explanations for recent iterations, one line for older ones, statistics."""

from autoresearch.core import config
from autoresearch.core.records import BASELINE, CRASH, DISCARD, INVALID, KEEP, Iteration
from autoresearch.prompt.context import render_prompt


def history(n: int) -> list[Iteration]:
    out = [Iteration(0, BASELINE, 0.80, explanation="Baseline", train_py="print(0)")]
    best = 0.80
    for i in range(1, n):
        status = [DISCARD, DISCARD, CRASH, INVALID][i % 4]
        value = None
        if i in (5, 120):
            status, best = KEEP, best + 0.01
            value = best
        elif status == DISCARD:
            value = best - 0.01
        reason = "exit code 1: RuntimeError: boom" if status == CRASH else None
        explanation = (
            f"**Idea {i}: tried variant {i}**\n\nI changed thing {i} because reason {i}. "
            f"Expected effect {i}. A long mechanism explanation {i} that must survive intact."
        )
        out.append(Iteration(i, status, value, reason, explanation, train_py=f"print({i})"))
    return out


def test_full_context_with_200_iterations(ws):
    cfg = config.load(ws)
    hist = history(200)
    prompt = render_prompt("PROGRAM TEXT", hist[120], hist, cfg)
    assert "PROGRAM TEXT" in prompt and "print(120)" in prompt
    assert "Experiment history" in prompt and "300" in prompt  # the budget
    # the last 10, in full
    for i in range(190, 200):
        assert f"A long mechanism explanation {i} that must survive intact." in prompt
    assert "A long mechanism explanation 189 " not in prompt
    # every older one as a compact line with its first line and status
    for i in range(1, 190):
        assert f"- {i}: " in prompt
    assert "- 7: invalid none Idea 7: tried variant 7" in prompt
    assert "- 6: crash none Idea 6: tried variant 6 (exit code 1: RuntimeError: boom)" in prompt
    # statistics: counts, best and when, streak without improvement
    assert "200 experiments (baseline 1, keep 2, discard 97, crash 50, invalid 50)" in prompt
    assert "Best val_accuracy 0.8200 at iteration 120; 79 experiments since then" in prompt


def test_window_size_is_configurable(ws):
    cfg = config.load(ws, {"loop.recent_window": 3})
    prompt = render_prompt("p", history(50)[0], history(50), cfg)
    assert "A long mechanism explanation 47 " in prompt
    assert "A long mechanism explanation 46 " not in prompt and "- 46: " in prompt


def test_truncated_policy_reproduces_the_seeds_poor_context(ws):
    cfg = config.load(ws, {"loop.context": "truncated"})
    hist = history(200)
    prompt = render_prompt("p", hist[120], hist, cfg)
    assert "- 199: invalid none **Idea 199: tried variant 199**" in prompt
    assert "I changed thing 199" not in prompt  # only the first 60 characters of the first line
    assert "- 189: " not in prompt and "Statistics" not in prompt  # older ones disappear


def test_first_prompt_has_no_history_yet(ws):
    cfg = config.load(ws)
    base = Iteration(0, BASELINE, 0.8, explanation="Baseline", train_py="x = 1")
    prompt = render_prompt("p", base, [base], cfg)
    assert "1 experiments (baseline 1)" in prompt and "0 experiments since then" in prompt


def test_a_recent_crash_shows_the_end_of_its_log(ws, tmp_path):
    cfg = config.load(ws, {"loop.recent_window": 3})
    log = tmp_path / "train.log"
    log.write_text("".join(f"log line {i}\n" for i in range(1, 51)) + "ValueError: shapes\n")
    base = Iteration(0, BASELINE, 0.8, explanation="Baseline", train_py="x = 1")
    hist = [
        base,
        Iteration(1, CRASH, None, "exit code 1", "Old idea", log_path=str(log)),  # not recent
        Iteration(2, DISCARD, 0.7, explanation="meh"),
        Iteration(3, CRASH, None, "exit code 1: ValueError: shapes", "Idea", log_path=str(log)),
        Iteration(4, CRASH, None, "exit code 1", "Lost log", log_path=str(tmp_path / "gone")),
    ]
    prompt = render_prompt("p", base, hist, cfg)
    section = prompt.split("### Iteration 3: crash")[1].split("### Iteration 4")[0]
    assert "The end of its training log (last 30 lines):" in section
    assert "log line 22\n" in section and "ValueError: shapes\n```" in section
    assert "log line 21\n" not in section  # 30 lines, not more
    assert prompt.count("The end of its training log") == 1  # not for old or lost logs
