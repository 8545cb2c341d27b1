"""The search (issue 27): which iteration a proposal starts from ([search] policy), merges of two
lines, and repeats that are not trained; the real driver over the fake engine, in milliseconds."""

from __future__ import annotations

from autoresearch.agents.base import Proposal
from autoresearch.core.config import Config
from autoresearch.core.history import History
from autoresearch.core.records import BASELINE, DISCARD, KEEP, OK, Iteration, TrainingRun
from autoresearch.core.repeats import code_key
from autoresearch.loop.fake_run import InstantProposer, fake_run
from autoresearch.loop.search import PROVISIONAL, choose
from autoresearch.prompt.context import render_prompt
from autoresearch.training.fake_engine import FakeEngine, Outcome
from autoresearch.views.snapshot import snapshot


def settings(policy: str, **search) -> Config:
    return Config.model_validate({
        "loop": {"noise_runs": 1, "confirm_runs": 0, "iterations": 4},
        "search": {"policy": policy, "combine_every": 0, **search},
    })  # fmt: skip


def it(n: int, status: str, value: float | None, parent: int | None, *values: float):
    runs = [TrainingRun(OK, v, None, 1.0, 1.0, None, None) for v in (values or [value])]
    return Iteration(n, status, value=value, parent=parent, train_py=f"N = {n}\n", runs=runs)


def noisy_history() -> History:
    """A baseline measured three times (sigma 0.01), a keep from it, and a near miss from the
    keep that its own children did better from than the keep's."""
    return History([
        it(0, BASELINE, 0.50, None, 0.49, 0.50, 0.51),
        it(1, KEEP, 0.70, 0), it(2, DISCARD, 0.695, 1),
        it(3, DISCARD, 0.60, 1), it(4, DISCARD, 0.62, 1), it(5, DISCARD, 0.61, 1),
    ])  # fmt: skip


def test_greedy_starts_every_proposal_from_the_best():
    history = noisy_history()
    assert choose(settings("greedy"), history, [], 6).parent.iteration == 1


def test_tree_tries_a_near_miss_once_the_best_s_children_keep_losing():
    # the keep's three children all lost 0.08-0.10; the near miss (0.695, within the noise
    # margin) has none: its score is the higher
    history = noisy_history()
    assert choose(settings("tree"), history, [], 6).parent.iteration == 2
    # a second proposal from it is told what its sibling in flight tries
    flying = Iteration(6, "invalid", parent=2, train_py="N = 6\n", explanation="wider layers")
    start = choose(settings("tree"), history, [flying], 7).parent
    prompt = render_prompt("# program", start, history, settings("tree"), [flying])
    assert start.iteration == 2 and "(from iteration 2, like yours: a sibling): wider" in prompt
    assert "The train.py you start from (iteration 2" in prompt  # not called the best


def test_tree_never_starts_from_a_discard_outside_the_noise_margin():
    history = noisy_history()
    many = [Iteration(10 + k, "invalid", parent=p, train_py="") for k, p in enumerate([1, 2] * 20)]
    parents = {choose(settings("tree"), history, many, 60).parent.iteration}
    assert parents <= {0, 1, 2} and 3 not in parents  # 0.60: far below the best


def flight(n: int, parent: int, *values: float) -> Iteration:
    """An experiment in flight with its runs so far."""
    runs = [TrainingRun(OK, v, None, 1.0, 1.0, None, None) for v in values]
    return Iteration(n, "invalid", parent=parent, train_py=f"N = {n}\n", runs=runs)


def test_tree_starts_from_a_candidate_in_confirmation_up_to_provisional_proposals():
    history = noisy_history()  # the best: 1, 0.70
    # 6's first run beats the best (its confirmation trains); 7's does not; 8 has no run yet
    flying = [flight(6, 1, 0.75), flight(7, 1, 0.65), flight(8, 2)]
    start = choose(settings("tree"), history, flying, 9).parent
    assert (start.iteration, start.value) == (6, 0.75)  # valued at its runs so far
    prompt = render_prompt("# program", start, history, settings("tree"), flying)
    assert "(iteration 6, being confirmed: val_accuracy = 0.7500 in its runs so far; the best" in (
        prompt
    )
    # two candidates: the one with fewer proposals in flight from it, then the higher
    flying += [flight(9, 1, 0.80, 0.78), flight(10, 6)]
    assert choose(settings("tree"), history, flying, 11).parent.iteration == 9
    flying += [flight(11, 9)]
    assert choose(settings("tree"), history, flying, 12).parent.iteration == 9  # 0.79 > 0.75
    # PROVISIONAL in flight from each: back to UCB over the recorded nodes (the near miss 2)
    flying += [flight(20 + k, p) for k, p in enumerate([6, 9] * (PROVISIONAL - 1))]
    assert choose(settings("tree"), history, flying, 30).parent.iteration == 2
    # greedy does not: the best, always
    assert choose(settings("greedy"), history, flying[:2], 9).parent.iteration == 1


def test_a_parallel_tree_run_proposes_from_a_keep_while_it_is_being_confirmed(tmp_path):
    # 1 scores 0.7 (the baseline 0.5) in a short first run, then two long confirmation runs;
    # the others score 0.5 in longer runs: the proposals made meanwhile start from 1
    def outcome(job):
        if job.n == 1:
            return Outcome(1 if job.k == 0 else 50, 0.7)
        return Outcome(1 if job.n == 0 else 10, 0.5 + 0.001 * job.k)

    cfg = settings("tree")
    cfg.loop.noise_runs, cfg.loop.confirm_runs, cfg.loop.iterations = 3, 2, 6
    _, store, agent = fake_run(tmp_path / "run", cfg, FakeEngine(4, outcome))
    asked = {n: (parent, flying) for n, parent, flying in agent.asked}
    from_one = [n for n, (parent, flying) in asked.items() if parent == 1]
    assert from_one and all(1 in asked[n][1] for n in from_one)  # asked while 1 was in flight
    shown = {e["iteration"]: e for e in snapshot(store)["iterations"]}
    assert shown[1]["status"] == KEEP and {shown[n]["parent"] for n in from_one} == {1}
    store.close()
    greedy = settings("greedy")
    greedy.loop = cfg.loop
    _, store, agent = fake_run(tmp_path / "greedy", greedy, FakeEngine(4, outcome))
    assert [n for n, parent, flying in agent.asked if parent == 1 and 1 in flying] == []
    store.close()


def test_tree_merges_the_best_with_another_line_every_nth_proposal():
    history = History([
        it(0, BASELINE, 0.50, None, 0.49, 0.50, 0.51),
        it(1, KEEP, 0.60, 0), it(2, DISCARD, 0.595, 0), it(3, KEEP, 0.62, 1),
    ])  # fmt: skip
    cfg = settings("tree", combine_every=2)
    start = choose(cfg, history, [], 4)
    assert (start.parent.iteration, start.other.iteration) == (3, 2)  # 2 is not on 3's line
    assert choose(cfg, history, [], 5).other is None  # not the 2nd
    merged = Iteration(4, KEEP, value=0.63, parent=3, second_parent=2, train_py="N = 4\n")
    history.append(merged)
    assert choose(cfg, history, [], 6).other is None  # the two were merged already
    # the prompt gives the agent the other line's change to merge in
    prompt = render_prompt("# program", start.parent, history, cfg, (), start.other)
    assert "merges two lines" in prompt and "-N = 0\n+N = 2" in prompt


def test_each_iteration_records_its_parents_and_status_json_shows_them(tmp_path):
    # 1 is kept, 2 (from 1) is a near miss, 3 (from 1) is kept: 4 merges 2 into 3
    values = {0: (0.49, 0.5, 0.51), 1: (0.6,), 2: (0.595,), 3: (0.62,), 4: (0.66,)}
    engine = FakeEngine(1, lambda job: Outcome(1, values[job.n][job.k]))
    cfg = settings("tree", combine_every=4)
    cfg.loop.noise_runs = 3
    _, store, agent = fake_run(tmp_path / "run", cfg, engine, True)
    shown = {e["iteration"]: e for e in snapshot(store)["iterations"]}
    assert [shown[n]["parent"] for n in range(5)] == [None] + [p for _, p, _ in agent.asked]
    assert [shown[n]["parent"] for n in range(5)] == [None, 0, 1, 1, 3]
    assert shown[4]["second_parent"] == 2 and shown[4]["repairs"] == 0
    store.close()


class Repeater(InstantProposer):
    """Proposes iteration 1's code again for iteration 2, with a comment and a blank line."""

    def propose(self, request):
        if request.iteration == 2:
            return Proposal("\nN = 1  # the same again\n", explanation="again")
        return super().propose(request)


def test_a_repeat_is_recorded_with_the_earlier_result_and_is_not_trained(tmp_path):
    values = {0: 0.5, 1: 0.6, 3: 0.55, 4: 0.7}
    engine = FakeEngine(1, lambda job: Outcome(1, values[job.n]))
    cfg = settings("greedy").model_copy(update={"loop": settings("greedy").loop.model_copy(
        update={"iterations": 3})})  # fmt: skip
    result, store, agent = fake_run(tmp_path / "run", cfg, engine, True, agent=Repeater)
    history = store.iterations()
    repeat = next(i for i in history if i.iteration == 2)
    assert (repeat.status, repeat.value, repeat.train_seconds) == (DISCARD, 0.6, 0.0)
    assert "the same code as iteration 1" in repeat.reason
    assert 2 not in {job.n for job in engine.started}  # not trained
    assert [i.iteration for i in history] == [0, 1, 2, 3]  # it is one of the 3 iterations
    # the next prompt tells the agent
    prompt = render_prompt("# program", history[1], History(history[:3]), cfg)
    assert (
        "Not trained: repeats" in prompt and "iteration 2: the same code as iteration 1" in prompt
    )
    store.close()


def test_code_is_the_same_without_comments_and_blank_lines_and_not_otherwise():
    code = "import math\n\nx = 1  # one\nprint(x)\n"
    assert code_key(code) == code_key("# header\nimport math\nx = 1\n\n\nprint(x)  # shown\n")
    assert code_key(code) != code_key(code.replace("x = 1", "x = 2"))
    assert code_key(code) != code_key(code.replace("print(x)", "print('x')"))
    assert code_key("def f(:\n  # broken\n") == code_key("def f(:\n\n")  # untokenizable too
