"""Repairing a crash within its iteration ([loop] repairs): a proposal whose first run crashed
with an exception (records.EXCEPTION: not a timeout, a limit, a signal, an integrity failure) is
given back to the agent with its log's end (prompt/repair.py); the fixed train.py is checked like
a proposal (validation, size, room in the prompt, repeats) and trained again as the same
iteration. The attempt that crashed is kept in its own folder (layout.attempt_dir) with the
repair's prompt and answer; the iteration records how many repairs it took.

The driver (scheduler.py) asks in the agent's thread, as for a proposal; this says which crash is
repaired and what an answer does to the store. A stop while the agent repairs leaves the proposal
pending with its crashed run recorded: a resume asks for the repair again, training nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from autoresearch.agents.base import Proposal
from autoresearch.core.config import Config
from autoresearch.core.records import EXCEPTION, Iteration, TrainingRun
from autoresearch.loop.proposing import Asked, Proposer
from autoresearch.prompt.runfacts import unified_diff
from autoresearch.store.layout import REPAIR_OUTPUT, REPAIR_PROMPT
from autoresearch.store.store import Store


@dataclass
class Repairs:
    cfg: Config
    store: Store
    proposer: Proposer
    say: Callable[[str], None]

    def due(self, it: Iteration, runs: list[TrainingRun]) -> bool:
        """Whether it, with its runs recorded, is given to the agent to repair: a proposal (not
        the baseline) whose one run crashed with an exception (not a confirmation run of a
        train.py that worked), repairs left, and an agent that can repair."""
        return (
            it.iteration != 0
            and len(runs) == 1
            and runs[0].failure == EXCEPTION
            and it.repairs < self.cfg.loop.repairs
            and self.proposer.can_repair
        )

    def take(
        self,
        asked: Asked,
        proposal: Proposal,
        parent: Iteration,
        notes: list[str],
        repeat: Callable[[Iteration], bool],
    ) -> tuple[list[str], Path | None]:
        """The agent's repair of asked.parent (proposed from parent, recorded with notes): the
        notes to record it with, and the copy of the workspace it trains in again, its attempt
        set aside, its crashed run forgotten and the proposal stored again as pending; or None
        there when it is not trained (the crash stands, a note says why). repeat: whether an
        iteration is a repeat, not to be trained (the driver's rule; it sets its reason)."""
        it = asked.parent
        crashed = it.train_py
        repaired = self.proposer.accept_repair(asked, proposal, parent)
        notes = [*notes, *repaired.notes]
        probe = replace(it, train_py=repaired.train_py, reason=None)
        # a repeat's reason up to its first colon: the earlier one it names, not what it is given
        reason = repaired.reason or (probe.reason.partition(":")[0] if repeat(probe) else None)
        # what crashed, and the repair's call: kept whether or not it is trained
        files = {REPAIR_PROMPT: asked.request.prompt, REPAIR_OUTPUT: proposal.raw_output}
        self.store.keep_attempt(it.iteration, it.repairs, {"train.py": crashed, **files},
                                outputs=reason is None)  # fmt: skip
        if reason is not None:
            return [*notes, f"repair {it.repairs} not trained: {reason}"], None
        it.train_py = repaired.train_py
        it.diff = unified_diff(parent.train_py, it.train_py)
        fix = repaired.explanation.strip() or "(no explanation)"
        it.explanation = f"{it.explanation.rstrip()}\n\nRepair {it.repairs}: {fix}"
        self.say(f"iteration {it.iteration}: repair {it.repairs} of {self.cfg.loop.repairs} "
                 "accepted; training it again")  # fmt: skip
        self.store.drop_runs(it.iteration)  # the crashed run: its log is the attempt's now
        self.store.set_pending(it, notes)
        return notes, repaired.workdir
