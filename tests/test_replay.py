"""ReplayAgent: complete files, unified diffs, explanations, order, exhaustion."""

import difflib
from pathlib import Path

import pytest

from autoresearch.agents.base import AgentError, AgentExhausted, Request
from autoresearch.agents.replay import PatchError, ReplayAgent, apply_patch
from autoresearch.core.config import AgentConfig

TRAIN = "".join(f"line {n}\n" for n in range(1, 31))


def diff(old: str, new: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), "a/train.py", "b/train.py"
    )
    return "".join(lines)


def request(iteration: int, train_py: str = TRAIN) -> Request:
    return Request(iteration=iteration, prompt="", train_py=train_py, workdir=Path("."))


def agent(tmp_path: Path, files: dict[str, str], folder: str = "replays") -> ReplayAgent:
    (tmp_path / folder).mkdir()
    for name, text in files.items():
        (tmp_path / folder / name).write_text(text)
    return ReplayAgent(AgentConfig(name="replay", replay_dir=folder), tmp_path)


def test_plays_files_in_number_order(tmp_path):
    edited = TRAIN.replace("line 2\n", "line two\n").replace("line 29\n", "")
    replay = agent(
        tmp_path,
        {
            "010-third.py": "print('three')\n",
            "002-second.patch": diff(TRAIN, edited),
            "002-second.md": "  Renamed line two.\n\nAnd dropped line 29.\n",
            "1-first.py": "print('one')\n",
            "README.txt": "not a proposal",
        },
    )
    first, second, third = (replay.propose(request(k)) for k in (1, 2, 3))
    assert (first.train_py, first.explanation) == ("print('one')\n", "Replayed 1-first.py")
    assert second.train_py == edited
    assert second.explanation == "Renamed line two.\n\nAnd dropped line 29."
    assert second.raw_output == diff(TRAIN, edited)
    assert third.train_py == "print('three')\n"
    assert third.usage.cost_usd == 0.0 and third.usage.tokens_in == 0
    assert replay.check().startswith("replay: 3 proposals in")
    with pytest.raises(AgentExhausted, match="replay: all 3 proposals played"):
        replay.propose(request(4))


def test_patch_applies_at_an_offset(tmp_path):
    edited = TRAIN.replace("line 20\n", "line twenty\n")
    replay = agent(tmp_path, {"001-x.patch": diff(TRAIN, edited)})
    moved = "import os\nimport sys\n" + TRAIN  # an earlier kept proposal added two lines on top
    assert replay.propose(request(1, moved)).train_py == "import os\nimport sys\n" + edited


def test_patch_that_does_not_apply_is_invalid(tmp_path):
    patch = diff(TRAIN, TRAIN.replace("line 5\n", "line five\n"))
    replay = agent(tmp_path, {"001-x.patch": patch})
    proposal = replay.propose(request(1, TRAIN.replace("line 4\n", "line four\n")))
    assert proposal.train_py is None
    assert proposal.invalid_reason == (
        "001-x.patch: patch does not apply: hunk 1 (@@ -2,7 +2,7 @@) does not match train.py"
    )
    assert proposal.explanation == "Replayed 001-x.patch"


def test_patch_edge_cases():
    assert apply_patch("a\n", diff("a\n", "a\nb\n")) == "a\nb\n"
    assert apply_patch("", diff("", "new\n")) == "new\n"
    no_newline = "--- a\n+++ b\n@@ -1 +1 @@\n-a\n+b\n\\ No newline at end of file\n"
    assert apply_patch("a\n", no_newline) == "b"
    with pytest.raises(PatchError, match="no hunks found"):
        apply_patch(TRAIN, "just some text\n")
    with pytest.raises(PatchError, match="cut short"):
        apply_patch(TRAIN, "@@ -1,3 +1,3 @@\n line 1\n")
    with pytest.raises(PatchError, match="more than one file"):
        apply_patch("a\n", diff("a\n", "b\n") + diff("a\n", "c\n"))


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(AgentError, match="replay folder not found"):
        ReplayAgent(AgentConfig(name="replay", replay_dir="nowhere"), tmp_path)
    with pytest.raises(AgentError, match="replay_dir is not set"):
        ReplayAgent(AgentConfig(name="replay"), tmp_path)
    with pytest.raises(AgentError, match="no NNN-name.py or NNN-name.patch files"):
        agent(tmp_path, {"notes.md": "hello"})
