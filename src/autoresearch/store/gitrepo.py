"""A run's experiment history in git: one commit per experiment, a ref for each, `best` advanced
on keep. Plumbing commands only, so there is no work tree to get out of step. Text goes to git on
stdin, never in argv (no size limit, any bytes)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from autoresearch.core.safe_text import encode, git_message

IDENTITY = {
    "GIT_AUTHOR_NAME": "autoresearch",
    "GIT_AUTHOR_EMAIL": "autoresearch@localhost",
    "GIT_COMMITTER_NAME": "autoresearch",
    "GIT_COMMITTER_EMAIL": "autoresearch@localhost",
}


# Our git reads no configuration and runs no hook: not the system's, not a global one that an
# agent could have written (core.hooksPath), and none of the caller's GIT_* variables.
SEALED = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_SYSTEM": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}
NO_HOOKS = ("-c", f"core.hooksPath={os.devnull}")


def sealed_env(git_dir: Path) -> dict[str, str]:
    """git's whole environment: PATH and a few locale variables of ours, an empty HOME."""
    kept = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    return {**kept, **IDENTITY, **SEALED, "HOME": os.devnull, "GIT_DIR": str(git_dir)}


class GitError(Exception):
    """git is missing or refused a command."""


class ExperimentRepo:
    def __init__(self, path: Path, create: bool = True):
        """The repository at path; created when missing if create, else a one-line GitError."""
        self.path = path
        self.env = sealed_env(path)
        if not (path / "HEAD").is_file():
            if not create:
                raise GitError(
                    f"the run's git repository {path} is missing; restore it from a backup, "
                    "or start a new run with --new"
                )
            path.mkdir(parents=True, exist_ok=True)
            self._git("init", "--bare", "--quiet", "--initial-branch=best", str(path))

    def _git(self, *args: str, stdin: bytes | None = None) -> str:
        try:
            proc = subprocess.run(
                ["git", *NO_HOOKS, *args], input=stdin, capture_output=True, env=self.env
            )
        except FileNotFoundError:
            raise GitError("git is not installed; install it (e.g. apt-get install git)") from None
        if proc.returncode != 0:
            error = proc.stderr.decode("utf-8", "replace").strip()
            raise GitError(f"git {args[0]} failed: {error}")
        return proc.stdout.decode("utf-8", "surrogateescape").strip()

    def commit(self, files: dict[str, str | bytes], message: str, parent: str | None) -> str:
        """A commit holding exactly these files, on top of parent. Returns its sha. The message
        is shown escaped (git refuses NUL bytes); the store keeps the text as it is."""
        entries = []
        for name, content in sorted(files.items()):
            data = content if isinstance(content, bytes) else encode(content)
            blob = self._git("hash-object", "-w", "--stdin", stdin=data)
            entries.append(f"100644 blob {blob}\t{name}")
        tree = self._git("mktree", stdin=encode("\n".join(entries) + "\n"))
        args = ["commit-tree", tree, "-F", "-"]
        if parent:
            args += ["-p", parent]
        return self._git(*args, stdin=git_message(message).encode())

    def set_ref(self, ref: str, sha: str) -> None:
        self._git("update-ref", ref, sha)

    def resolve(self, ref: str) -> str | None:
        try:
            return self._git("rev-parse", "--verify", "--quiet", ref)
        except GitError:
            return None
