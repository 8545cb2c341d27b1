"""The replay agent: plays a folder of prepared proposals in order, for demos, tests and resumes.

The folder holds `NNN-name.py` (a complete train.py) or `NNN-name.patch` (a unified diff against
the train.py it is given), each with an optional `NNN-name.md` explanation. The files are played in
NNN order, each proposal and each repair of a crash taking the next: iteration k's proposal is file
k plus the repairs its earlier iterations took, its r-th repair the r-th file after it. So a
resumed run replays exactly what a fresh one would (with several workers, where a repair may come
after a later iteration's proposal, a repair takes the first file not played yet).

Patches are applied here, in pure Python, rather than with `git apply` or `patch`: no external
program, no temporary repository, and the same strict rules everywhere. Context and removed lines
must match exactly (no fuzz); a hunk may sit at another line than its header says, like git's
offset search, so a patch still applies after earlier kept proposals moved the code around.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch.agents.base import AgentError, AgentExhausted, Proposal, Request
from autoresearch.core.config import AgentConfig
from autoresearch.core.records import Usage

ENTRY = re.compile(r"^(\d+)-.+\.(py|patch)$")
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
NO_NEWLINE = "\\ No newline at end of file"


class PatchError(Exception):
    """A patch that does not apply: one line."""


@dataclass
class Hunk:
    header: str
    old_start: int  # 1-based; for a hunk that removes nothing, the line it inserts after
    old: list[str] = field(default_factory=list)  # lines without their newline
    new: list[str] = field(default_factory=list)


def _parse(patch: str) -> tuple[list[Hunk], bool | None]:
    """The hunks of a one-file unified diff, and whether the result must end with a newline
    (None: as the original does)."""
    lines = patch.splitlines()
    hunks: list[Hunk] = []
    eol: bool | None = None
    files = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("+++ "):
            files += 1
            if files > 1:
                raise PatchError("the patch changes more than one file")
        match = HUNK.match(line)
        if not match:
            continue  # headers and commentary between hunks
        old_count = 1 if match[2] is None else int(match[2])
        new_count = 1 if match[4] is None else int(match[4])
        hunk = Hunk(line, int(match[1]))
        hunks.append(hunk)
        last = ""
        while (
            len(hunk.old) < old_count
            or len(hunk.new) < new_count
            or (i < len(lines) and lines[i] == NO_NEWLINE)
        ):
            if i >= len(lines):
                raise PatchError(f"hunk {len(hunks)} ({line}) is cut short")
            body = lines[i] or " "  # an editor may strip the blank of an empty context line
            i += 1
            tag, text = body[0], body[1:]
            if tag == "\\":
                eol = last == "-"  # after a "-" only the old side lacked it
                continue
            if tag not in " -+":
                raise PatchError(f"hunk {len(hunks)} ({line}) has a line starting with {tag!r}")
            if tag in " -":
                hunk.old.append(text)
            if tag in " +":
                hunk.new.append(text)
            last = tag
        if len(hunk.old) != old_count or len(hunk.new) != new_count:
            raise PatchError(f"hunk {len(hunks)} ({line}) has more lines than its header says")
    if not hunks:
        raise PatchError("no hunks found (expected a unified diff with @@ lines)")
    return hunks, eol


def apply_patch(original: str, patch: str) -> str:
    """original with the unified diff applied; PatchError if any hunk does not match exactly."""
    hunks, eol = _parse(patch)
    lines = original.split("\n")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    out: list[str] = []
    cursor = 0  # lines before cursor are already in out
    offset = 0  # how far the previous hunk sat from where its header said
    for number, hunk in enumerate(hunks, start=1):
        expected = hunk.old_start - (1 if hunk.old else 0) + offset
        at = _find(lines, hunk.old, expected, cursor)
        if at is None:
            raise PatchError(f"hunk {number} ({hunk.header}) does not match train.py")
        offset = at - (hunk.old_start - (1 if hunk.old else 0))
        out += lines[cursor:at] + hunk.new
        cursor = at + len(hunk.old)
    out += lines[cursor:]
    if eol is None:
        eol = ends_with_newline
    return "\n".join(out) + ("\n" if eol and out else "")


def _find(lines: list[str], block: list[str], expected: int, lowest: int) -> int | None:
    """The start of block in lines at or after lowest, nearest to expected."""
    if not block:
        return expected if lowest <= expected <= len(lines) else None
    last = len(lines) - len(block)
    for distance in range(max(expected - lowest, last - expected) + 1):
        for at in (expected - distance, expected + distance):
            if lowest <= at <= last and lines[at : at + len(block)] == block:
                return at
    return None


class ReplayAgent:
    """Answers each proposal and repair with the next file of cfg.replay_dir, by its number."""

    name = "replay"
    can_repair = True  # with its next file

    def __init__(self, cfg: AgentConfig, workspace: Path):
        if not cfg.replay_dir:
            raise AgentError("agent.replay_dir is not set; point it at a folder of proposals")
        folder = Path(cfg.replay_dir).expanduser()
        folder = folder if folder.is_absolute() else workspace / folder
        if not folder.is_dir():
            raise AgentError(f"{folder}: replay folder not found")
        entries = [(ENTRY.match(p.name), p) for p in folder.iterdir() if p.is_file()]
        self.files = [p for _, p in sorted((int(m[1]), p) for m, p in entries if m)]
        if not self.files:
            raise AgentError(f"{folder}: no NNN-name.py or NNN-name.patch files to replay")
        self.played: set[int] = set()  # the files played by this process, by index

    def _index(self, request: Request) -> int:
        """The file that answers request: after those the earlier iterations and their repairs
        took (request.history), and after this iteration's earlier answers."""
        index = request.iteration - 1 + sum(it.repairs for it in request.history) + request.repair
        while request.repair and index in self.played:
            index += 1
        return index

    def propose(self, request: Request) -> Proposal:
        if request.iteration < 1:
            raise ValueError("iteration 0 is the baseline; the agent is not asked for it")
        index = self._index(request)
        if index >= len(self.files):
            raise AgentExhausted(f"replay: all {len(self.files)} proposals played")
        self.played.add(index)
        path = self.files[index]
        text = path.read_text()
        notes = path.with_suffix(".md")
        explanation = notes.read_text().strip() if notes.is_file() else f"Replayed {path.name}"
        proposal = Proposal(train_py=text, explanation=explanation, raw_output=text, usage=Usage())
        if path.suffix == ".patch":
            try:
                proposal.train_py = apply_patch(request.train_py, text)
            except PatchError as err:
                proposal.train_py = None
                proposal.invalid_reason = f"{path.name}: patch does not apply: {err}"
        return proposal

    def check(self) -> str:
        return f"replay: {len(self.files)} proposals in {self.files[0].parent}"

    def unpriced(self) -> str | None:
        return None  # prepared files cost nothing
