"""The run's git repository: the objects of a commit are written without a git process per
object, and they are the very objects git makes of the same input (same SHA-1s, `git fsck
--strict` finds nothing wrong, git reads them back)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from autoresearch.store.gitrepo import ExperimentRepo, GitError, sealed_env

FILES: dict[str, str | bytes] = {
    "train.py": "print('héllo')\n# tab\there, a line without its end",
    "prepare.py": b"\xff\xfenot utf-8\x00 and a NUL\n",
    "program.md": "",
    "a-first.md": "sorts first\n",
}
MESSAGE = "iteration 3: keep 0.91\n\nFirst line.\nA control character: \x07, and a NUL: \x00."


def git(repo: Path, *args: str, stdin: bytes | None = None, **env: str) -> str:
    proc = subprocess.run(
        ["git", *args], input=stdin, capture_output=True, env={**sealed_env(repo), **env}
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode().strip()


def test_commits_are_the_objects_git_makes(tmp_path):
    ours = ExperimentRepo(tmp_path / "ours")
    first = ours.commit(FILES, MESSAGE, None)
    second = ours.commit({**FILES, "train.py": "changed\n"}, "iteration 4: discard", first)
    ours.set_refs({"refs/experiments/0004": second, "refs/heads/best": first})

    # git itself, in a repository of its own, from the same input and at the same time
    theirs = ExperimentRepo(tmp_path / "theirs").path
    entries = []
    for name, content in sorted(FILES.items()):
        data = content if isinstance(content, bytes) else content.encode()
        blob = git(theirs, "hash-object", "-w", "--stdin", stdin=data)
        entries.append(f"100644 blob {blob}\t{name}")
    tree = git(theirs, "mktree", stdin=("\n".join(entries) + "\n").encode())
    assert git(ours.path, "rev-parse", f"{first}^{{tree}}") == tree
    author = git(ours.path, "log", "-1", "--format=%ad", "--date=raw", first)
    dates = {"GIT_AUTHOR_DATE": author, "GIT_COMMITTER_DATE": author}
    message = git(ours.path, "cat-file", "commit", first).split("\n\n", 1)[1]
    assert "\x00" not in message and "First line." in message
    made = git(theirs, "commit-tree", tree, "-F", "-", stdin=message.encode(), **dates)
    assert made == first

    assert git(ours.path, "fsck", "--strict", "--no-dangling") == ""
    assert git(ours.path, "rev-parse", "best") == first
    assert git(ours.path, "rev-parse", "refs/experiments/0004^") == first
    assert git(ours.path, "show", "refs/experiments/0004:train.py") == "changed"
    assert git(ours.path, "log", "--format=%s", "refs/experiments/0004").splitlines() == [
        "iteration 4: discard",
        "iteration 3: keep 0.91",
    ]
    # git's own objects read back; nothing left half-written
    assert not [p for p in (ours.path / "objects").rglob("tmp_obj_*")]


def noting_git(tmp_path: Path, monkeypatch) -> Path:
    """The real git, first on PATH behind a script that notes each run in the file returned."""
    calls = tmp_path / "calls"
    real = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    (bin_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_a_recorded_commit_and_its_refs_start_no_git_process(tmp_path, monkeypatch):
    """A real git on PATH that notes each time it runs: one commit with its two refs (what the
    recorder does for a kept iteration) does not start it; git reads what was written."""
    calls = noting_git(tmp_path, monkeypatch)
    repo = ExperimentRepo(tmp_path / "repo")
    parent = repo.commit(FILES, "the baseline", None)
    repo.set_refs({"refs/heads/best": parent})
    calls.unlink()

    sha = repo.commit({**FILES, "train.py": "new\n"}, MESSAGE, parent)
    repo.set_refs({"refs/experiments/0001": sha, "refs/heads/best": sha})

    assert not calls.exists()
    assert repo.resolve("best") == repo.resolve("refs/experiments/0001") == sha
    assert git(repo.path, "for-each-ref", "--format=%(refname) %(objectname)").splitlines() == [
        f"refs/experiments/0001 {sha}",
        f"refs/heads/best {sha}",
    ]
    assert git(repo.path, "fsck", "--strict", "--no-dangling") == ""
    assert not list(repo.path.rglob("*.lock"))


def test_a_held_lock_refuses_every_ref_as_git_does(tmp_path):
    """git's lock-file protocol: a `.lock` that is there (another git updating the ref, or one
    killed mid-update) refuses the whole update, with a line that names it; the refs keep their
    values and no lock of ours is left."""
    repo = ExperimentRepo(tmp_path / "repo")
    first = repo.commit(FILES, "the baseline", None)
    second = repo.commit({**FILES, "train.py": "new\n"}, MESSAGE, first)
    repo.set_refs({"refs/heads/best": first})
    held = repo.path / "refs" / "heads" / "best.lock"
    held.write_text("")

    with pytest.raises(GitError, match="best.lock exists"):
        repo.set_refs({"refs/experiments/0001": second, "refs/heads/best": second})
    # git refuses the same update for the same reason
    proc = subprocess.run(
        ["git", "update-ref", "refs/heads/best", second], capture_output=True,
        env=sealed_env(repo.path),
    )  # fmt: skip
    assert proc.returncode != 0 and b"best.lock" in proc.stderr

    assert repo.resolve("best") == first and repo.resolve("refs/experiments/0001") is None
    assert sorted(p.name for p in repo.path.rglob("*.lock")) == ["best.lock"]
    held.unlink()
    repo.set_refs({"refs/experiments/0001": second, "refs/heads/best": second})
    assert repo.resolve("best") == repo.resolve("refs/experiments/0001") == second


def test_a_reftable_repository_gets_its_refs_from_git(tmp_path, monkeypatch):
    """A newer git may make reftable repositories, whose refs are not files: there the refs
    go through `git update-ref` (shown here by a `reftable` folder, as such a repository has)."""
    calls = noting_git(tmp_path, monkeypatch)
    repo = ExperimentRepo(tmp_path / "repo")
    sha = repo.commit(FILES, "the baseline", None)
    (repo.path / "reftable").mkdir()
    calls.unlink()
    repo.set_refs({"refs/experiments/0000": sha, "refs/heads/best": sha})
    assert [line.split()[-2:] for line in calls.read_text().splitlines()] == [
        ["update-ref", "--stdin"]
    ]
    assert repo.resolve("best") == repo.resolve("refs/experiments/0000") == sha
