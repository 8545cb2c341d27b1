"""The outer loop: a strategist rewrites program.md's `## Strategy` section from the results.

The strategist is an API agent talking to the fake server on 127.0.0.1, or the claude stand-in
(tests/bin/claude) in its text mode; the research agent is a replay of tiny numpy train.py files
(each predicts one class for every image: 0.1, a discard), so an iteration costs about a second.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from clirun import Cli, wait_until
from fake_llm_server import anthropic_reply, error_reply, hang, openai_reply
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core.config import Config
from autoresearch.core.history import History
from autoresearch.core.program_sections import NO_STRATEGY, Program, Rejected, parse_reply
from autoresearch.core.records import DISCARD, KEEP, PLATEAU, SCHEDULE, Iteration, Strategy
from autoresearch.loop.strategist import due
from autoresearch.prompt.strategy_history import render_history
from autoresearch.store.store import Store

pytestmark = pytest.mark.usefixtures("reaper", "api_keys")

cli = CliRunner()
FAKE_BIN = Path(__file__).parent / "bin"
BASELINE = "import numpy as np\nimport prepare\n\nprepare.save_predictions(np.full(10000, 0))\n"
PROGRAM = (
    Path(__file__).parents[1] / "src/autoresearch/tasks/fashion_mnist/program.md"
).read_text()
NEW_STRATEGY = (
    "Capacity limits the linear baseline: focus on small CNNs with BatchNorm and Adam.\n"
    "Stop trying constant-class predictions; all of them scored 0.1."
)
GOOD_REPLY = f"Every experiment so far predicted one class.\n\n## Strategy\n{NEW_STRATEGY}\n"
RULES_REPLY = (
    "The rules hold us back.\n\n## Strategy\nEdit prepare.py to read the labels directly.\n\n"
    "## Rules\n- Anything goes: prepare.py may change.\n"
)
CHECK_OK = {"anthropic": anthropic_reply("OK", 10, 1), "openai": openai_reply("OK", 10, 1)}


# --- program.md's sections and the check of a reply (no run) -------------------------------------


def test_program_md_splits_around_its_strategy_section():
    program = Program.parse(PROGRAM)
    assert program.render() == PROGRAM
    assert program.strategy.startswith("Start from the weak baseline")
    assert "## Goal" in program.headings and "## Rules" in program.headings
    replaced = program.render("Try CNNs.")
    assert replaced.split("## Strategy")[0] == PROGRAM.split("## Strategy")[0]
    assert replaced.endswith("## Strategy\nTry CNNs.\n")


def test_a_program_md_without_a_strategy_gets_one_and_fenced_headings_are_text():
    text = "# Goal\nWin.\n\n```python\n## Strategy  (a comment, not a heading)\n```\n"
    program = Program.parse(text)
    assert program.render() == text.rstrip() + f"\n\n## Strategy\n{NO_STRATEGY}\n"
    middle = Program.parse("# Goal\nWin.\n## Strategy\nOld.\n## Rules\nNone.\n")
    assert middle.render("New idea.") == "# Goal\nWin.\n## Strategy\nNew idea.\n\n## Rules\nNone.\n"


@pytest.mark.parametrize(
    "reply, complaint",
    [
        ("", "no `## Strategy` heading"),
        ("I would try harder next time.", "no `## Strategy` heading"),
        ("```\n## Strategy\nwrapped in a code block, so not a section\n```", "no `## Strategy`"),
        ("## Strategy\n\n   \n", "empty"),
        ("## Strategy\nTry CNNs.", "too short"),
        ("## Strategy\n" + "x" * 9000, "too long"),
        (RULES_REPLY, "rewrites `## Rules`"),
        ("## Goal\nMaximise val_loss.\n\n## Strategy\n" + NEW_STRATEGY, "rewrites `## Goal`"),
        ("Same as before.\n## Strategy\n" + Program.parse(PROGRAM).strategy, "unchanged"),
    ],
)
def test_a_reply_that_is_garbage_or_touches_the_rules_is_rejected(reply, complaint):
    program = Program.parse(PROGRAM)
    with pytest.raises(Rejected, match=complaint):
        parse_reply(reply, program, program.strategy)


def test_a_good_reply_gives_its_reasoning_and_the_new_section():
    program = Program.parse(PROGRAM)
    code = "\n```python\n# a comment is no heading\nlr = 0.01\n```\n"
    reasoning, strategy = parse_reply(GOOD_REPLY + code, program, program.strategy)
    assert reasoning == "Every experiment so far predicted one class."
    assert strategy == NEW_STRATEGY + "\n\n" + code.strip()


def iterations(statuses: list[str]) -> History:
    return History(
        [Iteration(0, "baseline", 0.5)]
        + [
            Iteration(n, status, 0.6 if status == KEEP else 0.4, explanation=f"idea {n}")
            for n, status in enumerate(statuses, start=1)
        ]
    )


def test_the_strategist_is_due_on_schedule_and_on_a_plateau_once_per_point():
    cfg = Config.model_validate({"strategist": {"every": 5, "plateau": 3}})
    first = [Strategy(-1, "program.md", 0)]
    assert due(iterations([]), first, cfg) is None
    assert due(iterations([KEEP, KEEP, DISCARD, DISCARD]), first, cfg) is None
    assert due(iterations([KEEP, KEEP, DISCARD, DISCARD, KEEP]), first, cfg) == SCHEDULE
    history = iterations([KEEP, DISCARD, DISCARD, DISCARD])
    assert due(history, first, cfg) == PLATEAU
    called = [*first, Strategy(4, PLATEAU, None, reason="garbage")]
    assert due(history, called, cfg) is None  # one call per point, rejected or not
    longer = iterations([KEEP, DISCARD, DISCARD, DISCARD, DISCARD, DISCARD, DISCARD])
    assert due(longer, called, cfg) == PLATEAU  # 3 more since that call
    assert due(longer[:-1], called, cfg) is None
    off = Config.model_validate({"strategist": {"every": 0, "plateau": 0}})
    assert due(history, first, off) is None


def test_the_strategists_input_stays_bounded_however_long_the_run():
    cfg = Config()
    statuses = [(KEEP if n % 10 == 0 else DISCARD) for n in range(1, 1000)]
    for it in (long := iterations(statuses)):
        it.explanation = f"Idea {it.iteration}: " + "a long explanation " * 40
        it.train_py = f"LR = {it.iteration}\n" * 50
    short, long_text = render_history(long[:11], cfg), render_history(long, cfg)
    assert len(long_text) < 60_000 and len(long_text) < 4 * len(short)
    assert "Idea 999:" in long_text and "Idea 940:" in long_text  # recent ones, in full or a line
    assert "999 experiments" not in long_text and "1000 experiments" in long_text


# --- in a run ------------------------------------------------------------------------------------


def replay_workspace(ws: Path, tmp_path: Path, count: int) -> Path:
    """train.py predicts class 0; proposal k predicts class k % 10 (each 0.1: a discard)."""
    (ws / "train.py").write_text(BASELINE)
    props = tmp_path / "proposals"
    props.mkdir()
    for k in range(1, count + 1):
        (props / f"{k:03d}-class.py").write_text(BASELINE.replace("10000, 0", f"10000, {k % 10}"))
        (props / f"{k:03d}-class.md").write_text(f"Predict class {k % 10}.\n")
    return props


def configure(ws: Path, props: Path, **sections: dict) -> None:
    text = f'\n[agent]\nname = "replay"\nreplay_dir = "{props}"\n'
    for section, values in sections.items():
        text += f"\n[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
    with (ws / "autoresearch.toml").open("a") as f:
        f.write(text)


def run(ws: Path, *args: str):
    return cli.invoke(app, ["run", str(ws), "--budget", "30", *args])


def status(ws: Path) -> dict:
    result = cli.invoke(app, ["status", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run_dir(ws: Path) -> Path:
    (found,) = (ws / ".autoresearch" / "runs").iterdir()
    return found


def prompt_of(ws: Path, n: int) -> str:
    return (run_dir(ws) / "iterations" / f"{n:04d}" / "prompt.md").read_text()


def git(ws: Path, *args: str) -> str:
    repo = ["git", "--git-dir", str(run_dir(ws) / "repo")]
    return subprocess.run([*repo, *args], capture_output=True, text=True, check=True).stdout


def test_on_schedule_a_new_strategy_reaches_the_next_prompt_and_a_rules_rewrite_does_not(
    ws, tmp_path, server
):
    props = replay_workspace(ws, tmp_path, 5)
    strategist = {"agent": "anthropic", "base_url": server.url, "every": 2, "plateau": 0}
    configure(ws, props, strategist=strategist)
    # claude-sonnet-5-5 (the default): $2 / $10 per million tokens
    server.add(
        CHECK_OK["anthropic"],
        anthropic_reply(GOOD_REPLY, input_tokens=5000, output_tokens=300),
        anthropic_reply(RULES_REPLY, input_tokens=6000, output_tokens=100),
    )
    before = (ws / "program.md").read_text()

    result = run(ws, "--iterations", "5")
    assert result.exit_code == 0, result.output
    assert "after iteration 2: asking the strategist (anthropic) on schedule" in result.stderr
    assert "strategy version 1: Capacity limits the linear baseline" in result.stderr
    assert "strategy version 1 stays" in result.stderr
    assert len(server.requests) == 3  # the check, after iteration 2, after iteration 4

    snap = status(ws)
    assert [it["strategy"] for it in snap["iterations"]] == [0, 0, 0, 1, 1, 1]
    calls = snap["strategist"]["strategies"]
    assert [(s["version"], s["after_iteration"], s["trigger"]) for s in calls] == [
        (0, -1, "program.md"), (1, 2, "schedule"), (None, 4, "schedule"),
    ]  # fmt: skip
    assert calls[1]["text"] == NEW_STRATEGY
    assert "rewrites `## Rules`" in calls[2]["reason"]
    costs = [(5000 * 2 + 300 * 10) / 1e6, (6000 * 2 + 100 * 10) / 1e6]
    assert [s["cost_usd"] for s in calls[1:]] == pytest.approx(costs)
    assert snap["strategist"]["cost_usd"] == pytest.approx(sum(costs))
    assert snap["cost_usd"] == pytest.approx(sum(costs))  # the replay costs nothing

    # the strategist read the whole history; the prompts after it carry the new strategy
    asked = server.requests[1].body["messages"][0]["content"]
    assert "### Iteration 2: discard" in asked and "Predict class 2." in asked
    assert "Start from the weak baseline" in asked  # the current strategy
    store = Store(run_dir(ws), readonly=True)
    try:
        kept = store.strategies(full=True)
    finally:
        store.close()
    assert kept[1].prompt == asked and kept[1].reasoning == GOOD_REPLY.split("\n")[0]
    assert [s.reply for s in kept[1:]] == [GOOD_REPLY, RULES_REPLY]  # rejected ones too
    for n in (1, 2):
        assert "Start from the weak baseline" in prompt_of(ws, n)
    for n in (3, 4, 5):
        assert NEW_STRATEGY in prompt_of(ws, n) and "Start from the weak baseline" not in prompt_of(
            ws, n
        )
        assert "## Rules\n- Edit only `train.py`." in prompt_of(ws, n)  # the rules, unchanged

    # the user's program.md is untouched; the run's history in git has each version
    assert (ws / "program.md").read_text() == before
    assert git(ws, "rev-list", "--count", "refs/heads/strategy").strip() == "2"
    assert NEW_STRATEGY in git(ws, "show", "refs/heads/strategy:program.md")
    commit = snap["iterations"][3]["commit"]
    assert NEW_STRATEGY in git(ws, "show", f"{commit}:program.md")

    shown = cli.invoke(app, ["strategy", str(ws)])
    assert shown.exit_code == 0, shown.output
    assert (
        "version 1, after iteration 2 (schedule, anthropic claude-sonnet-5-5, $0.0130):"
        in shown.stdout
    )
    assert "rejected after iteration 4 (schedule" in shown.stdout
    exported = tmp_path / "adopt.md"
    done = cli.invoke(app, ["strategy", str(ws), "--export", str(exported)])
    assert done.exit_code == 0, done.output
    assert exported.read_text() == Program.parse(before).render(NEW_STRATEGY)

    report = (run_dir(ws) / "report.md").read_text()
    assert "## Strategy timeline" in report
    assert (
        "### Version 1, after iteration 2 (schedule): iterations 3-5: discard 3; best +0.0000"
        in report
    )
    table = " ".join(cli.invoke(app, ["status", str(ws)]).stdout.split())  # wrapped to the width
    assert (
        "strategist: anthropic (claude-sonnet-5-5), every 2 iterations; version 1 in force; 1 reply rejected"
        in table
    )


def test_on_a_plateau_the_claude_cli_strategises_in_text_mode_and_the_run_stops_after(
    ws, tmp_path, monkeypatch
):
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "claude.json"
    monkeypatch.setenv("FAKE_CLAUDE_TEXT_LOG", str(log))
    props = replay_workspace(ws, tmp_path, 10)
    strategist = {"agent": "claude", "every": 0, "plateau": 2}
    configure(ws, props, strategist=strategist, loop={"stop_after": 3})

    result = run(ws, "--iterations", "10")
    assert result.exit_code == 0, result.output
    assert (
        "after iteration 2: asking the strategist (claude) because 2 iterations brought no keep"
        in result.stderr
    )

    snap = status(ws)
    # after 2: version 1; after 4: the same strategy again, rejected; after 5: 3 iterations
    # since the strategy changed, none a keep: the run ends
    assert [it["iteration"] for it in snap["iterations"]] == [0, 1, 2, 3, 4, 5]
    assert snap["state"] == "finished"
    assert snap["stop_reason"] == (
        "plateau: 3 iterations without a keep since the strategy changed after iteration 2 "
        "([loop] stop_after)"
    )
    calls = snap["strategist"]["strategies"]
    assert [(s["version"], s["trigger"]) for s in calls] == [
        (0, "program.md"), (1, "plateau"), (None, "plateau"),
    ]  # fmt: skip
    assert calls[2]["reason"] == "the strategy is the current one, unchanged"
    assert snap["cost_usd"] == pytest.approx(2 * 0.004)  # what Claude Code reported, twice
    assert "Focus on small convolutional networks" in prompt_of(ws, 3)
    called = json.loads(log.read_text())
    argv = called["argv"]
    assert argv[argv.index("--tools") + 1] == "" and "--strict-mcp-config" in argv
    assert "-p" in argv and "--allowedTools" not in argv  # text only: no tool at all
    assert "### Iteration 4: discard" in called["prompt"]


def test_a_garbage_reply_from_openai_is_rejected_and_the_strategy_stays(ws, tmp_path, server):
    props = replay_workspace(ws, tmp_path, 2)
    strategist = {"agent": "openai", "base_url": server.url + "/v1", "every": 1}
    configure(ws, props, strategist=strategist)
    server.add(CHECK_OK["openai"], openai_reply("Sure! Try harder.", 900, 20))

    result = run(ws, "--iterations", "2")
    assert result.exit_code == 0, result.output
    snap = status(ws)
    calls = snap["strategist"]["strategies"]
    assert [s["version"] for s in calls] == [0, None]
    assert "no `## Strategy` heading" in calls[1]["reason"]
    assert [it["strategy"] for it in snap["iterations"]] == [0, 0, 0]
    # the program both prompts show, whichever train.py each starts from (the best, a near miss)
    assert prompt_of(ws, 2).split("\n# The ")[0] == prompt_of(ws, 1).split("\n# The ")[0]
    assert snap["cost_usd"] == pytest.approx((900 * 1 + 20 * 5) / 1e6)  # gpt-6.1-terra


def test_the_strategists_cost_counts_toward_the_cost_limit(ws, tmp_path, server):
    props = replay_workspace(ws, tmp_path, 5)
    strategist = {"agent": "anthropic", "base_url": server.url, "every": 1}
    configure(ws, props, strategist=strategist)
    server.add(CHECK_OK["anthropic"], anthropic_reply(GOOD_REPLY, 100_000, 1_000))  # $0.21

    result = run(ws, "--iterations", "5", "--max-cost", "0.2")
    assert result.exit_code == 0, result.output
    snap = status(ws)
    assert "cost limit reached: $0.21 of $0.20" in snap["stop_reason"]
    assert [it["iteration"] for it in snap["iterations"]] == [0, 1]
    assert snap["cost_usd"] == pytest.approx(0.21)


def test_a_strategist_with_an_unknown_price_refuses_a_cost_limit_before_any_training(ws, tmp_path):
    strategist = {"agent": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "llama-local"}
    configure(ws, replay_workspace(ws, tmp_path, 1), strategist=strategist)
    result = run(ws, "--iterations", "1", "--max-cost", "1")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert "cannot be enforced" in line and "llama-local" in line
    assert not (ws / ".autoresearch" / "runs").exists()


def test_a_key_the_strategist_has_rejected_mid_run_stops_the_run_in_one_line(ws, tmp_path, server):
    strategist = {"agent": "anthropic", "base_url": server.url, "every": 1}
    configure(ws, replay_workspace(ws, tmp_path, 3), strategist=strategist)
    server.add(CHECK_OK["anthropic"], error_reply(401, "invalid x-api-key"))
    result = run(ws, "--iterations", "3")
    assert result.exit_code == 3 and "Traceback" not in result.output  # an early stop
    snap = status(ws)
    assert snap["state"] == "stopped"
    assert "the strategist: anthropic API: authentication failed" in snap["stop_reason"]
    assert [it["iteration"] for it in snap["iterations"]] == [0, 1]
    assert [s["version"] for s in snap["strategist"]["strategies"]] == [0]


def test_with_replay_the_strategist_is_off_and_status_says_so(ws, tmp_path):
    configure(ws, replay_workspace(ws, tmp_path, 1))
    result = run(ws, "--iterations", "1")
    assert result.exit_code == 0, result.output
    snap = status(ws)
    assert snap["strategist"]["state"] == "off"
    assert snap["strategist"]["detail"].startswith(
        "off (the replay agent has no LLM; set [strategist] agent"
    )
    assert snap["strategist"]["strategies"] == [] and snap["iterations"][1]["strategy"] is None
    assert "confirmation runs; strategist off (the replay agent has no LLM" in result.stderr
    assert "refs/heads/strategy" not in git(ws, "for-each-ref")
    shown = cli.invoke(app, ["strategy", str(ws), "--export", str(tmp_path / "p.md")])
    assert shown.exit_code == 1 and "has no strategy versions" in shown.stderr


@pytest.mark.parametrize("moment", ["during", "after"])
def test_a_sigkill_around_a_strategist_call_neither_loses_nor_doubles_a_version(
    ws, tmp_path, server, moment
):
    props = replay_workspace(ws, tmp_path, 4)
    strategist = {"agent": "anthropic", "base_url": server.url, "every": 2, "plateau": 0}
    configure(ws, props, strategist=strategist)
    flags = ["--iterations", "4", "--budget", "5", "--grace", "1"]
    server.add(CHECK_OK["anthropic"], hang() if moment == "during" else anthropic_reply(GOOD_REPLY))
    first = Cli(ws, *flags)
    if moment == "during":
        first.wait_for(r"^after iteration 2: asking the strategist")
        wait_until(lambda: len(server.requests) == 2)  # the orchestrator waits for its answer
    else:
        first.wait_for(r"^strategy version 1: ")
    first.kill()
    code = first.finish()
    assert code == -signal.SIGKILL or (moment == "after" and code == 0)
    recorded = [s["version"] for s in status(ws)["strategist"]["strategies"]]
    assert recorded == ([0] if moment == "during" else [0, 1])

    server.add(CHECK_OK["anthropic"])
    if moment == "during":
        server.add(anthropic_reply(GOOD_REPLY))
    again = Cli(ws, *flags)
    assert again.finish() == 0, again.seen
    snap = status(ws)
    calls = snap["strategist"]["strategies"]
    assert [(s["version"], s["after_iteration"]) for s in calls] == [(0, -1), (1, 2)]
    assert [it["strategy"] for it in snap["iterations"]] == [0, 0, 0, 1, 1]
    assert len(server.requests) == (4 if moment == "during" else 3)  # asked once per start
    assert git(ws, "rev-list", "--count", "refs/heads/strategy").strip() == "2"
    assert NEW_STRATEGY in prompt_of(ws, 3)
