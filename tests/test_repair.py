"""Repairs ([loop] repairs): a proposal whose first run crashes with an exception is given back to
the agent, and its fix trained again in the same iteration. Over the fake engine (the real store,
trials, decisions and recorder; a stand-in agent whose repair r of iteration n is `N = n  # fixed
r`), and once with real training: a replayed proposal that raises, fixed by the next file."""

from __future__ import annotations

import json

import pytest
from conftest import one_epoch, single_run
from typer.testing import CliRunner

from autoresearch.agents.base import AgentError, AgentExhausted, Proposal, Request
from autoresearch.agents.hpo import HpoAgent
from autoresearch.agents.replay import ReplayAgent
from autoresearch.cli.app import app
from autoresearch.core.config import AgentConfig, Config
from autoresearch.core.records import (
    CRASH,
    DISCARD,
    EXCEPTION,
    FINISHED,
    KEEP,
    LIMIT,
    OK,
    SIGNAL,
    STOPPED,
    TIMEOUT,
    Iteration,
)
from autoresearch.loop.fake_run import InstantProposer, fake_run
from autoresearch.store.layout import LOG_NAME, attempt_dir
from autoresearch.store.store import list_runs
from autoresearch.training.fake_engine import FakeEngine, Outcome
from autoresearch.views.report import markdown
from autoresearch.views.snapshot import snapshot

RAISES = Outcome(5, status=CRASH, failure=EXCEPTION)


def settings(**loop) -> Config:
    return Config.model_validate({"loop": {"noise_runs": 1, "confirm_runs": 0, **loop}})


class Script:
    """Iteration n's proposal as proposed ends as crashes[n]; a repaired one, or any other,
    scores 0.7 (the baseline 0.5), each taking seconds[n] (5 unless given). `trained`: (n,
    whether the train.py was repaired) per training started."""

    def __init__(self, crashes: dict[int, Outcome], seconds=None):
        self.crashes, self.seconds = crashes, seconds or {}
        self.trained: list[tuple[int, bool]] = []

    def __call__(self, job) -> Outcome:
        fixed = "# fixed" in (job.workdir / "train.py").read_text()  # the stand-in's repair
        self.trained.append((job.n, fixed))
        if job.n in self.crashes and not fixed:
            return self.crashes[job.n]
        return Outcome(self.seconds.get(job.n, 5), 0.5 if job.n == 0 else 0.7)


def test_a_crash_with_an_exception_is_repaired_and_trained_again_in_its_iteration(tmp_path):
    engine = FakeEngine(1, script := Script({1: RAISES}))
    cfg = settings(iterations=2)
    result, store, agent = fake_run(tmp_path / "run", cfg, engine, sequential=True)
    assert result.state == FINISHED
    it = store.iteration(1)
    assert (it.status, it.value, it.repairs) == (KEEP, 0.7, 1)
    assert it.train_py == "N = 1  # fixed 1\n" and "Repair 1: fix 1" in it.explanation
    assert [r.status for r in it.runs] == [OK]  # the crashed run is the attempt's, not the keep's
    assert agent.repairs == [(1, 1, [0])]  # asked once, and before iteration 2
    assert script.trained == [(0, False), (1, False), (1, True), (2, False)]
    attempt = attempt_dir(store.dir, 1, 1)
    assert (attempt / "train.py").read_text() == "N = 1\n"  # what crashed, kept
    assert (attempt / "repair_prompt.md").read_text() == "repair crash (scripted)"
    shown = {e["iteration"]: e for e in snapshot(store)["iterations"]}
    assert (shown[1]["repairs"], shown[2]["repairs"]) == (1, 0)
    assert "| 1 | keep (1 repair) | 0.7000 |" in markdown(store, store.iterations(), cfg)
    assert store.pending_numbers() == []


def test_a_repair_that_crashes_again_uses_every_repair_then_the_crash_stands(tmp_path):
    def script(job):
        return Outcome(1, 0.5) if job.n == 0 else RAISES  # the repairs raise too

    engine = FakeEngine(1, script)
    result, store, agent = fake_run(tmp_path / "run", settings(iterations=1, repairs=2), engine)
    it = store.iteration(1)
    assert (it.status, it.repairs) == (CRASH, 2)
    assert it.train_py == "N = 1  # fixed 2\n" and len(it.runs) == 1
    assert [(n, r) for n, r, _ in agent.repairs] == [(1, 1), (1, 2)]
    assert [j.n for j in engine.started] == [0, 1, 1, 1]
    assert (attempt_dir(store.dir, 1, 1) / "train.py").read_text() == "N = 1\n"
    assert (attempt_dir(store.dir, 1, 2) / "train.py").read_text() == "N = 1  # fixed 1\n"
    assert not attempt_dir(store.dir, 1, 3).exists()


def test_with_no_repairs_a_crash_stands(tmp_path):
    engine = FakeEngine(1, Script({1: RAISES}))
    _, store, agent = fake_run(tmp_path / "run", settings(iterations=1, repairs=0), engine)
    assert (store.iteration(1).status, store.iteration(1).repairs) == (CRASH, 0)
    assert agent.repairs == [] and [j.n for j in engine.started] == [0, 1]


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome(5, status=TIMEOUT),
        Outcome(5, status=CRASH, failure=LIMIT),  # a memory, process or disk limit
        Outcome(5, status=CRASH, failure=SIGNAL),  # killed by a signal (out of memory?)
        Outcome(5, status=CRASH),  # recorded before crashes had kinds
    ],
)
def test_a_timeout_a_limit_or_a_kill_is_not_repaired(tmp_path, outcome):
    engine = FakeEngine(1, Script({1: outcome}))
    _, store, agent = fake_run(tmp_path / "run", settings(iterations=1), engine)
    assert store.iteration(1).status == CRASH and store.iteration(1).repairs == 0
    assert agent.repairs == []


def test_neither_the_baseline_nor_a_crashed_confirmation_run_is_repaired(tmp_path):
    def script(job):
        if job.n == 0:
            return Outcome(1, 0.5)
        return RAISES if job.k == 1 else Outcome(1, 0.9)  # a keep's confirmation raises

    engine = FakeEngine(1, script)
    _, store, agent = fake_run(tmp_path / "run", settings(iterations=1, confirm_runs=1), engine)
    assert store.iteration(1).status == CRASH and agent.repairs == []
    baseline = FakeEngine(1, lambda job: RAISES)
    result, store, agent = fake_run(tmp_path / "other", settings(iterations=1), baseline)
    assert result.state == STOPPED and agent.repairs == []


def test_the_other_workers_keep_training_while_the_agent_repairs(tmp_path):
    starts: list[tuple[int, float]] = []
    script = Script({1: RAISES}, seconds={0: 1, 1: 10, 2: 100})

    def timed(job):
        starts.append((job.n, engine.clock))
        return script(job)

    engine = FakeEngine(2, timed)
    _, store, agent = fake_run(tmp_path / "run", settings(iterations=2), engine)
    # 1 crashed at 6 while 2 trained (1 to 101): repaired, it trained again at once, beside 2
    assert starts == [(0, 0), (1, 1), (2, 1), (1, 6)]
    assert engine.cancelled == [] and agent.repairs == [(1, 1, [0])]
    assert [e["iteration"] for e in snapshot(store)["iterations"]] == [0, 1, 2]
    assert store.iteration(1).repairs == 1 and store.iteration(2).status == DISCARD


class DiesRepairing(InstantProposer):
    """The agent that cannot work any more when it is asked for a repair."""

    def propose(self, request):
        if request.repair:
            raise AgentError("the agent's server went away")
        return super().propose(request)


def test_a_stop_during_a_repair_resumes_by_asking_for_it_again_training_nothing_twice(tmp_path):
    engine = FakeEngine(1, Script({1: RAISES}))
    result, store, _ = fake_run(
        tmp_path / "run", settings(iterations=2), engine, agent=DiesRepairing
    )
    assert result.state == STOPPED and "went away" in result.message
    assert store.pending_numbers() == [1] and 1 not in {it.iteration for it in store.iterations()}
    assert [r.failure for r in store.runs(1)[1]] == [EXCEPTION]  # its crash, recorded
    store.close()
    engine = FakeEngine(1, script := Script({1: RAISES}))
    result, store, agent = fake_run(tmp_path / "run", settings(iterations=2), engine)
    assert result.state == FINISHED
    assert script.trained == [(1, True)]  # (2 was trained before the stop, beside 1's repair)
    assert agent.repairs == [(1, 1, [0, 2])] and store.iteration(1).repairs == 1
    assert (store.iteration(1).status, store.iteration(1).value) == (DISCARD, 0.7)  # ties 2


def test_the_next_prompts_say_that_an_iteration_needed_a_repair(tmp_path):
    from autoresearch.prompt.condense import compact_line
    from autoresearch.prompt.context import DETAILS, full_entry

    engine = FakeEngine(1, Script({1: RAISES}))
    _, store, _ = fake_run(tmp_path / "run", settings(iterations=1), engine)
    it = store.iteration(1)
    assert "(after 1 repair)" in compact_line(it)
    assert "after 1 repair" in full_entry(it, "m", DETAILS[-1], None, None).splitlines()[0]


def test_a_replayed_proposal_that_raises_is_repaired_by_the_next_file_and_scored(ws, tmp_path):
    one_epoch(ws)  # real training, one epoch of larger batches
    single_run(ws)
    code = (ws / "train.py").read_text()
    idea = code.replace("NORMALIZE = False", "NORMALIZE = True")
    broken = idea.replace("MEAN, STD = 0.2860, 0.3530", "MEAN, STD = MEANS[0], 0.3530")
    assert broken != idea != code
    replays = tmp_path / "replays"
    replays.mkdir()
    (replays / "001-normalize.py").write_text(broken)
    (replays / "001-normalize.md").write_text("Normalize the images\n\nMean 0, std 1.")
    (replays / "002-fix.py").write_text(idea)
    (replays / "002-fix.md").write_text("Fix the name\n\nMEANS was a typo of MEAN.")
    argv = ["run", str(ws), "--agent", "replay", "--replay-dir", str(replays), "--iterations",
            "1", "--budget", "3", "--grace", "60"]  # fmt: skip
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "iteration 1: asking replay to repair its crash" in result.output
    status = CliRunner().invoke(app, ["status", str(ws), "--json"])
    shown = json.loads(status.output)["iterations"][1]
    assert shown["status"] in (KEEP, DISCARD) and shown["repairs"] == 1
    run = list_runs(ws)[-1]
    crashed = (attempt_dir(run, 1, 1) / LOG_NAME).read_text()
    assert "NameError: name 'MEANS' is not defined" in crashed  # the crash's log, still there
    assert (attempt_dir(run, 1, 1) / "train.py").read_text() == broken


class CannotRepair(InstantProposer):
    can_repair = False  # as the hpo agent (HpoAgent.can_repair)


def test_an_agent_that_cannot_repair_leaves_the_crash_standing(tmp_path):
    engine = FakeEngine(1, Script({1: RAISES}))
    _, store, agent = fake_run(tmp_path / "run", settings(iterations=1), engine, agent=CannotRepair)
    assert (store.iteration(1).status, store.iteration(1).repairs) == (CRASH, 0)
    assert agent.repairs == [] and not HpoAgent.can_repair


def test_the_replay_agent_answers_each_repair_with_its_next_file(tmp_path):
    folder = tmp_path / "replays"
    folder.mkdir()
    for k in (1, 2, 3, 4):
        (folder / f"00{k}-x.py").write_text(f"N = {k}\n")
    replay = ReplayAgent(AgentConfig(name="replay", replay_dir=str(folder)), tmp_path)

    def played(n: int, repair: int = 0, repaired_before: int = 0) -> str:
        history = [Iteration(0, "baseline"), Iteration(1, CRASH, repairs=repaired_before)]
        request = Request(n, "", "N = 0\n", tmp_path, history=history[:n], repair=repair)
        return replay.propose(request).train_py

    # iteration 1, its repair, iteration 2 (after 1's repair), its two repairs
    assert played(1) == "N = 1\n" and played(1, repair=1) == "N = 2\n"
    assert played(2, repaired_before=1) == "N = 3\n" and played(2, 1, 1) == "N = 4\n"
    with pytest.raises(AgentExhausted):
        played(2, 2, 1)


class RepairsToTheBaseline(InstantProposer):
    """Whose repair undoes the change: the baseline's code again, a repeat."""

    def propose(self, request):
        if request.repair:
            return Proposal("N = 0\n", explanation="undone", raw_output="N = 0")
        return super().propose(request)


def test_a_repair_that_repeats_an_earlier_experiment_is_not_trained_and_the_crash_stands(
    tmp_path,
):
    engine = FakeEngine(1, script := Script({1: RAISES}))
    cfg = settings(iterations=1)
    _, store, _ = fake_run(tmp_path / "run", cfg, engine, agent=RepairsToTheBaseline)
    it = store.iteration(1)
    assert (it.status, it.repairs, it.train_py) == (CRASH, 1, "N = 1\n")
    assert it.reason.endswith(
        "repair 1 not trained: the same code as iteration 0 (comments and blank lines aside)"
    )
    assert script.trained == [(0, False), (1, False)]
    assert (attempt_dir(store.dir, 1, 1) / "repair_output.txt").read_text() == "N = 0"
