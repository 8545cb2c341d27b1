"""The start of the prompt, the same from one iteration to the next while proposals start from
the same train.py: the role, program.md, the train.py it starts from, how that ran and the line
it descends from (render_stable), so that API agents can have it cached; and what it costs."""

from __future__ import annotations

from autoresearch.core.history import History
from autoresearch.core.log_metrics import scoring_sentence
from autoresearch.core.records import Iteration
from autoresearch.core.text import fmt
from autoresearch.core.tokens import estimate
from autoresearch.prompt.runfacts import log_lines, run_line
from autoresearch.prompt.templates import fenced, template

INCUMBENT_SHARE = 0.1  # of context_tokens, at most, for the incumbent's log
INCUMBENT_LOGS = ((3, 12), (2, 6), (1, 3), (0, 1))  # its first and last lines, less and less
NO_RECORD = "No training record is kept for it."
LINE_STEPS = 8  # the start's ancestors shown at most, the nearest


def incumbent_run(incumbent: Iteration, tokens: int) -> str:
    """How the incumbent ran: its seconds, memory and log, in at most tokens tokens."""
    facts = run_line(incumbent)
    for head, tail in INCUMBENT_LOGS:
        lines = log_lines(incumbent.log_path, head, tail)
        text = "\n".join([facts, *fenced("Its training log (first and last lines):", lines)])
        if estimate(text) <= tokens:
            return text.strip() or NO_RECORD
    return facts or NO_RECORD


def render_stable(
    program: str, incumbent: Iteration, cfg, history: list[Iteration] | None = None
) -> str:
    """The start of the prompt, the same from one iteration to the next while proposals start
    from the same train.py (incumbent: the one it starts from, the best or, with the tree
    search, another line's; history: for the title and its line)."""
    return template("iteration.txt").substitute(stable_parts(program, incumbent, cfg, history))


def stable_tokens(parts: dict[str, str]) -> int:
    """estimate(the start of the prompt made of parts): train.py stands on lines of its own and
    no token spans a newline, so it counts apart from the rest, which stays the same from one
    prompt to the next (counted once) while the incumbent's run and line do not change."""
    rest = template("iteration.txt").substitute(parts, train_py="")
    return estimate(rest) + estimate(parts["train_py"])


def stable_parts(
    program: str, incumbent: Iteration, cfg, history: list[Iteration] | None = None
) -> dict[str, str]:
    """What render_stable puts in its template."""
    facts = History.of(history or [], cfg.better)
    best = facts.incumbent
    title = f"The current best train.py (iteration {incumbent.iteration}, {cfg.metric} = {fmt(incumbent.value)})"
    if (
        best is not None
        and best.iteration != incumbent.iteration
        and incumbent.iteration in facts.by_number
    ):
        title = (
            f"The train.py you start from (iteration {incumbent.iteration}, {cfg.metric} = "
            f"{fmt(incumbent.value)}; the best is iteration {best.iteration}, {fmt(best.value)})"
        )
    elif best is not None and incumbent.iteration not in facts.by_number:  # search.py
        title = (
            f"The train.py you start from (iteration {incumbent.iteration}, being confirmed: "
            f"{cfg.metric} = {fmt(incumbent.value)} in its runs so far; the best is iteration "
            f"{best.iteration}, {fmt(best.value)})"
        )
    return dict(
        program=program.strip(),
        budget=f"{cfg.budget_secs:g}",
        scoring=scoring_sentence(cfg),
        metric=cfg.metric,
        direction="higher is better" if cfg.direction == "maximize" else "lower is better",
        start_title=title,
        train_py=incumbent.train_py.rstrip(),
        incumbent_run=incumbent_run(incumbent, int(cfg.loop.context_tokens * INCUMBENT_SHARE)),
        line=line_text(incumbent, facts),
        confirmation=(
            template("confirmation.txt").substitute(confirm_runs=cfg.loop.confirm_runs)
            if cfg.loop.confirm_runs
            else ""
        ),
    )


def line_text(start: Iteration, facts: History) -> str:
    """The iterations start descends from (its history), one line each, the nearest LINE_STEPS;
    "" for the baseline."""
    steps, at, seen = [], start, set()
    while at is not None and at.parent is not None and at.iteration not in seen:
        seen.add(at.iteration)
        at = facts.by_number.get(at.parent)
        if at is not None:
            steps.append(
                f"- iteration {at.iteration}: {at.status} {fmt(at.value)}, {at.description[:120]}"
            )
    if not steps:
        return ""
    shown = steps[:LINE_STEPS][::-1]
    if len(steps) > LINE_STEPS:
        shown.insert(0, f"- ({len(steps) - LINE_STEPS} earlier)")
    return template("line.txt").substitute(steps="\n".join(shown))
