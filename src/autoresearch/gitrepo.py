"""A run's experiment history in git: one commit per experiment, a ref for each, `best` advanced
on keep. Plumbing commands only, so there is no work tree to get out of step."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "autoresearch",
    "GIT_AUTHOR_EMAIL": "autoresearch@localhost",
    "GIT_COMMITTER_NAME": "autoresearch",
    "GIT_COMMITTER_EMAIL": "autoresearch@localhost",
}


class GitError(Exception):
    """git is missing or refused a command."""


class ExperimentRepo:
    def __init__(self, path: Path):
        self.path = path
        self.env = {**os.environ, **IDENTITY, "GIT_DIR": str(path)}
        if not (path / "HEAD").is_file():
            path.mkdir(parents=True, exist_ok=True)
            self._git("init", "--bare", "--quiet", "--initial-branch=best", str(path))

    def _git(self, *args: str, stdin: str | None = None) -> str:
        try:
            proc = subprocess.run(
                ["git", *args], input=stdin, capture_output=True, text=True, env=self.env
            )
        except FileNotFoundError:
            raise GitError("git is not installed; install it (e.g. apt-get install git)") from None
        if proc.returncode != 0:
            raise GitError(f"git {args[0]} failed: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def commit(self, files: dict[str, str], message: str, parent: str | None) -> str:
        """A commit holding exactly these files, on top of parent. Returns its sha."""
        entries = []
        for name, text in sorted(files.items()):
            blob = self._git("hash-object", "-w", "--stdin", stdin=text)
            entries.append(f"100644 blob {blob}\t{name}")
        tree = self._git("mktree", stdin="\n".join(entries) + "\n")
        args = ["commit-tree", tree, "-m", message]
        if parent:
            args += ["-p", parent]
        return self._git(*args)

    def set_ref(self, ref: str, sha: str) -> None:
        self._git("update-ref", ref, sha)

    def resolve(self, ref: str) -> str | None:
        try:
            return self._git("rev-parse", "--verify", "--quiet", ref)
        except GitError:
            return None

    def show(self, sha: str, name: str) -> str:
        return self._git("show", f"{sha}:{name}")
