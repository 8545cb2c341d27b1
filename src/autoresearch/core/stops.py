"""How a run fails: the kind of a failure (to see the same one again and again), a baseline
that failed or ran out of time, the end of a training log."""

from __future__ import annotations

import re

from autoresearch.core.logs import TAIL_BYTES, tail_lines
from autoresearch.core.records import CRASH, INVALID, TIMEOUT, Iteration
from autoresearch.core.repeats import REPEAT

TAIL_LINES = 15  # of a failed baseline's log, shown
# What the template's train.py logs: as training starts, and as each epoch ends ("epoch 3 loss
# 0.4121 (12.3s)"); a timeout after either is the budget's fault, not train.py's.
_TRAINING = re.compile(r"^training: \d+ images an epoch\b")
_EPOCH = re.compile(r"^epoch \d+\b.*\((\d+(?:\.\d+)?) ?s\)$")
_EXCEPTION = re.compile(r"\b([A-Z]\w*(?:Error|Exception|Exit|Interrupt|Warning))\b")


def failure_kind(it: Iteration) -> str | None:
    """What a failed iteration has in common with others failing the same way (the same
    exception, the same API error, the same timeout); None for an iteration that did not fail."""
    if (it.reason or "").startswith(REPEAT):  # the agent proposing what was trained already
        return "repeat"
    if it.status not in (CRASH, INVALID):
        return None
    reason = (it.reason or "").split("; reverted the agent's changes")[0]
    exception = _EXCEPTION.findall(reason)
    if exception:
        return f"{it.status}: {exception[-1]}"
    # Numbers, quoted text and paths vary between attempts that fail the same way.
    reason = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", "'…'", reason)
    reason = re.sub(r"\S*/\S*", "…", reason)
    reason = re.sub(r"\d+(\.\d+)?", "N", reason)
    return f"{it.status}: {reason[:80]}"


def baseline_failed(it: Iteration) -> bool:
    return it.status == CRASH or it.value is None


def out_of_time(it: Iteration, scored: str | None) -> str | None:
    """Why a baseline that timed out shows the budget too short for this machine (or the machine
    too busy) rather than train.py broken: the epoch times in its log, its first epoch still
    going, or scored (where the same train.py scored before); None when nothing shows it."""
    run = next((r for r in it.runs if r.status == TIMEOUT), None)
    if run is None:
        return None
    lines = tail_lines(run.log_path, TAIL_BYTES)  # all of the end read
    epochs = [float(m.group(1)) for line in lines if (m := _EPOCH.match(line))]
    seen = []
    if epochs:
        seen.append(f"an epoch took up to {max(epochs):.1f} s here")
    elif any(_TRAINING.match(line) for line in lines):
        seen.append(f"its first epoch had not ended after {run.train_seconds:.1f} s")
    if scored:
        seen.append(f"the same train.py scored {scored}")
    return "; ".join(seen) or None
