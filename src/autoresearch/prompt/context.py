"""The prompt: program.md, the incumbent train.py and how it ran, and the history, within
`[loop] context_tokens` (estimated by tokens.estimate, which errs on the high side).

`full`: exact statistics; the last `recent_window` iterations in full (explanation, metric, status,
crash reason, training seconds, peak memory, their log's first and last lines, their diff against
their parent; when not all of it fits, each gets some, the newest first, before any gets the
most); every older one as one compact line, or, when those do not fit, condensed (condense.py:
every keep listed, the others grouped by what they changed and by how they failed).
`truncated`: the seeds' poor context (first 60 characters of the first line, last 10 only),
kept so users can compare the two.

The prompt starts with what stays the same between iterations (role, program.md, the incumbent
train.py and its run: stable.py) and ends with what changes (the history), so that API
agents can have the start cached.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoresearch.agents.hpo_block import HpoBlockError
from autoresearch.core import noise
from autoresearch.core.history import History
from autoresearch.core.records import CRASH, Iteration
from autoresearch.core.repeats import REPEAT
from autoresearch.core.text import fmt
from autoresearch.core.tokens import estimate
from autoresearch.prompt.condense import (
    ONE_LINE_EACH,
    compact_line,
    digest,
    render_older,
    repaired,
    summary,
)
from autoresearch.prompt.digest import Prefix
from autoresearch.prompt.hpo_hints import hints
from autoresearch.prompt.runfacts import diff_lines, log_lines, run_line, unified_diff
from autoresearch.prompt.stable import stable_parts, stable_tokens
from autoresearch.prompt.templates import fenced, template

TRUNCATED_CHARS, TRUNCATED_WINDOW = 60, 10
RECENT_SHARE = 0.6  # of what the statistics and the older iterations leave, for the recent ones
REPEATS_SHOWN = 5  # repeats among the last this many recorded iterations are named
COMBINE_DIFF_LINES = 80  # of the other parent's change


@dataclass(frozen=True)
class Detail:
    """How much of a recent iteration is shown: explanation characters, log lines (first, last;
    a crash's last), diff lines. DETAILS goes from the least to the most."""

    explanation: int
    head: int
    tail: int
    crash_tail: int
    diff: int


DETAILS = (Detail(600, 0, 1, 5, 0), Detail(1500, 0, 2, 12, 20), Detail(4000, 1, 4, 30, 60))


class ContextTooSmall(Exception):
    """[loop] context_tokens cannot hold even the shortest prompt: one line for the user."""

    def __init__(self, message: str, needed: int):
        super().__init__(message)
        self.needed = needed  # the tokens the shortest prompt takes


def log_section(it: Iteration, head: int, tail: int) -> list[str]:
    lines = log_lines(it.log_path, head, tail)
    if it.status == CRASH and head == 0:  # what broke, so that the next proposal can fix it
        return fenced(f"The end of its training log (last {len(lines)} lines):", lines)
    return fenced("Its training log (first and last lines):", lines)


def full_entry(
    it: Iteration, metric: str, detail: Detail, parent: Iteration | None, best: Iteration | None
) -> str:
    head = f"### Iteration {it.iteration}: {it.status}{repaired(it)}, {metric} {fmt(it.value)}"
    if len(it.runs) > 1:
        head += f" (mean of {len(it.runs)} runs: {', '.join(fmt(r.value) for r in it.runs)})"
    lines = [head]
    if it.reason:
        lines.append(f"Reason: {it.reason}")
    lines.append(it.explanation.strip()[: detail.explanation] or "(no explanation)")
    if facts := run_line(it):
        lines.append(facts)
    if it is best:
        lines.append("Its training log is shown above, under How it ran.")
    elif it.status == CRASH:
        lines += log_section(it, 0, detail.crash_tail)
    else:
        lines += log_section(it, detail.head, detail.tail)
    if detail.diff and parent is not None and it.train_py:
        diff = diff_lines(it.diff or unified_diff(parent.train_py, it.train_py), detail.diff)
        lines += fenced(f"Its change to iteration {parent.iteration}'s train.py:", diff, "diff")
    return "\n".join(lines)


def truncated_entry(it: Iteration) -> str:
    first = (it.explanation.strip().splitlines() or [""])[0][:TRUNCATED_CHARS]
    return f"- {it.iteration}: {it.status} {fmt(it.value)} {first}"


def render_recent(
    recent: list[Iteration],
    tokens: int,
    metric: str,
    by_number,
    best: Iteration | None,
    made: dict | None = None,
) -> tuple[list[str], int]:
    """The recent iterations in tokens: a compact line each, then each (the newest first) with
    more and more detail while it fits, so that all of them get some before any gets the most.
    The incumbent's log is left to How it ran. Returns the entries and the tokens they take with
    their separators. made: the entries made before, with their tokens, to reuse (entry_key)."""
    made = {} if made is None else made

    def made_of(it: Iteration, detail: Detail | None) -> tuple[str, int]:
        key = entry_key(it, detail, best)
        if key not in made:
            entry = (
                compact_line(it)
                if detail is None
                else full_entry(it, metric, detail, by_number.get(it.parent), best)
            )
            made[key] = entry, estimate(entry)
        return made[key]

    entries = [made_of(it, None)[0] for it in recent]
    costs = [made_of(it, None)[1] for it in recent]
    spent = sum(cost + 2 for cost in costs)
    for detail in DETAILS:
        for index in range(len(recent) - 1, -1, -1):
            entry, cost = made_of(recent[index], detail)
            extra = cost - costs[index]
            if spent + extra <= tokens:
                entries[index], costs[index], spent = entry, cost, spent + extra
    return entries, spent


def entry_key(it: Iteration, detail: Detail | None, best: Iteration | None) -> tuple:
    """What an iteration's entry depends on that can change while it is recent."""
    return (id(it), it.iteration, it.status, it.value, len(it.runs), it.reason, detail, it is best)


def render_history(
    history: list[Iteration], policy: str, window: int, better, metric: str, tokens: int
) -> str:
    """The history in at most tokens tokens, where its shortest form fits in them."""
    if not history:
        return "No experiments yet."
    if policy == "truncated":
        recent = history[-TRUNCATED_WINDOW:]
        return template("history_truncated.txt").substitute(
            recent_count=len(recent), recent="\n".join(truncated_entry(it) for it in recent)
        )
    recent = history[-window:] if window else []
    older = Prefix(history, len(history) - len(recent))  # not copied, no facts derived again
    facts = History.of(history, better)
    by_number, best = facts.by_number, facts.incumbent
    known = facts.views.setdefault("older", digest([], better, by_number))
    stats = summary(facts, better, metric)
    frame = template("history_full.txt")
    empty = frame.substitute(summary="", older="", recent_count=len(recent), recent="")
    room = tokens - estimate(stats) - estimate(empty)
    shortest = estimate(render_older(older, 0, better, known=known))
    recent_room = max(0, room - shortest)
    # the recent entries, made once for the three tries and kept for the next prompts (the
    # check that a proposal fits, the next iteration's) while their iterations are recent
    shown = {id(it) for it in recent}
    made = {key: v for key, v in facts.views.get("recent", {}).items() if key[0] in shown}
    facts.views["recent"] = made
    whole, whole_cost = render_recent(recent, recent_room, metric, by_number, best, made)
    older_text = render_older(older, room - whole_cost, better, known=known)
    if older_text.startswith(ONE_LINE_EACH) or not older:
        entries = whole  # everything fits: the recent ones need not give way
    else:  # share what is left between the recent and the older iterations
        share = int(recent_room * RECENT_SHARE)
        entries, spent = render_recent(recent, share, metric, by_number, best, made)
        older_text = render_older(older, room - spent, better, known=known)
        # what the older ones left unused goes back to the recent ones
        left = room - estimate(older_text)
        entries, _ = render_recent(recent, left, metric, by_number, best, made)
    return frame.substitute(
        summary=stats, older=older_text, recent_count=len(recent), recent="\n\n".join(entries)
    )


def combine_text(other: Iteration | None, parent: Iteration, facts: History, metric: str) -> str:
    """What merging other's change into parent's train.py asks ("" for no second parent)."""
    if other is None:
        return ""
    base = facts.by_number.get(other.parent)
    diff = other.diff or (unified_diff(base.train_py, other.train_py) if base else "")
    return template("combine.txt").substitute(
        parent=parent.iteration,
        other=other.iteration,
        metric=metric,
        other_value=fmt(other.value),
        other_parent=other.parent,
        diff="\n".join(diff_lines(diff, COMBINE_DIFF_LINES)),
    )


def repeats_text(history: list[Iteration]) -> str:
    """The repeats among the last recorded iterations, named, so that the agent stops."""
    found = [it for it in history[-REPEATS_SHOWN:] if (it.reason or "").startswith(REPEAT)]
    if not found:
        return ""
    lines = "".join(f"- iteration {it.iteration}: {it.reason.split(';')[0]}\n" for it in found)
    return template("repeats.txt").substitute(repeats=lines)


def hpo_text(start: Iteration, history: list[Iteration], cfg) -> str:
    """[agent] hpo_hints: what a TPE study of the history says (hpo_hints.py), else ""."""
    if not cfg.agent.hpo_hints:
        return ""
    try:
        found = hints(start.train_py, history, cfg.direction, cfg.agent.seed + len(history))
    except HpoBlockError as err:
        return template("hpo_hints_none.txt").substitute(reason=err)
    return template("hpo_hints.txt").substitute(found) if found else ""


def noise_text(history: list[Iteration], metric: str) -> str:
    """What difference is real, once the noise floor is measured ("" before)."""
    floor = history.noise() if isinstance(history, History) else noise.estimate(history)
    if floor.sigma is None:
        return ""
    shown = template("noise.txt").substitute(sigma=fmt(floor.sigma), runs=floor.runs, metric=metric)
    return shown + "\n"


def in_flight_text(in_flight: list[Iteration], start: int | None = None) -> str:
    """The experiments proposed and not recorded yet (a parallel run), one line each; those that
    start from the same iteration as this proposal (start) are marked as its siblings."""
    if not in_flight:
        return ""
    lines = [
        f"- iteration {it.iteration} (from iteration {it.parent}"
        + (", like yours: a sibling" if it.parent == start else "")
        + "): "
        + ((it.explanation.strip().splitlines() or ["(no explanation)"])[0][:200])
        for it in in_flight
    ]
    return template("in_flight.txt").substitute(experiments="\n".join(lines))


def render_prompt(
    program: str,
    incumbent: Iteration,
    history: list[Iteration],
    cfg,
    in_flight=(),
    other: Iteration | None = None,
) -> str:
    """The whole prompt, at most cfg.loop.context_tokens tokens (estimated); ContextTooSmall
    where even its shortest form does not fit. incumbent: the train.py it starts from; in_flight:
    the experiments training now; other: a second parent whose change is to be merged in."""
    budget = cfg.loop.context_tokens
    facts = History.of(history, cfg.better)
    parts = stable_parts(program, incumbent, cfg, facts)
    stable = template("iteration.txt").substitute(parts)
    frame = template("iteration_history.txt")
    varying_parts = {
        "metric": cfg.metric,
        "noise": noise_text(facts, cfg.metric),
        "in_flight": in_flight_text(list(in_flight), incumbent.iteration),
        "notices": repeats_text(history),
        "combine": combine_text(other, incumbent, facts, cfg.metric),
        "hpo": hpo_text(incumbent, history, cfg),
    }
    empty = frame.substitute(history="", **varying_parts)
    start_tokens = stable_tokens(parts)
    room = budget - start_tokens - 1 - estimate(empty)
    history_text = render_history(
        history, cfg.loop.context, cfg.loop.recent_window, cfg.better, cfg.metric, room
    )
    varying = frame.substitute(history=history_text, **varying_parts)
    prompt = f"{stable}\n{varying}"
    # estimate(prompt): no token spans a newline; the fit check's history is most often the
    # same text as the prompt's it checks
    needed = start_tokens + 1 + estimate(varying)
    if needed > budget:
        raise ContextTooSmall(
            f"[loop] context_tokens = {budget} is too small: program.md, the best train.py and "
            f"the shortest history need about {needed} tokens; run again with --context-tokens "
            f"{-(-needed * 5 // 4000) * 1000} or more to resume",
            needed,
        )
    return prompt


def room_problem(program: str, candidate: Iteration, history: list[Iteration], cfg) -> str | None:
    """Why the next prompt would not fit [loop] context_tokens with candidate's train.py as the
    best one (one line), or None: no keep may leave the next prompt impossible."""
    try:
        render_prompt(program, candidate, history, cfg)
    except ContextTooSmall as err:
        return (
            f"the new train.py takes about {estimate(candidate.train_py)} tokens: kept, it would "
            f"make the prompt about {err.needed}, over [loop] context_tokens = "
            f"{cfg.loop.context_tokens}; make it shorter"
        )
    return None
