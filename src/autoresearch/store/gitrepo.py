"""A run's experiment history in git: one commit per experiment, a ref for each, `best` advanced
on keep. A commit's objects (blobs, tree, commit) and its refs are written here as git writes
them (loose objects; loose refs under git's lock files), so recording starts no git process, and
there is no work tree to get out of step. Text goes to git on stdin, never in argv."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import time
import zlib
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
# the refs set here: refs/heads/best, refs/heads/strategy, refs/experiments/0001
REF = re.compile(r"refs/(?:[\w-]+/)*[\w-]+")
SHA = re.compile(r"[0-9a-f]{40}")


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
        """A commit holding exactly these files, on top of parent. Returns its sha: the one
        `git hash-object`, `git mktree` and `git commit-tree` make of the same input. The message
        is shown escaped (git refuses NUL bytes); the store keeps the text as it is."""
        tree = b""
        for name, content in sorted(files.items(), key=lambda item: encode(item[0])):
            if not name or "/" in name or "\0" in name:
                raise GitError(f"git cannot hold a file named {name!r}")
            blob = self._write("blob", content if isinstance(content, bytes) else encode(content))
            tree += b"100644 " + encode(name) + b"\0" + bytes.fromhex(blob)
        offset = time.localtime().tm_gmtoff // 60
        sign, offset = ("-" if offset < 0 else "+"), abs(offset)
        when = f"{int(time.time())} {sign}{offset // 60:02d}{offset % 60:02d}"
        me = f"{IDENTITY['GIT_AUTHOR_NAME']} <{IDENTITY['GIT_AUTHOR_EMAIL']}> {when}"
        head = f"tree {self._write('tree', tree)}\n" + (f"parent {parent}\n" if parent else "")
        head += f"author {me}\ncommitter {me}\n\n"
        return self._write("commit", head.encode() + git_message(message).encode())

    def _write(self, kind: str, body: bytes) -> str:
        """A loose object as git writes one: zlib of "kind size\\0body" at objects/xx/rest,
        through a temporary file renamed into place, read-only; kept when it is there. Not
        fsynced, as git's default (core.fsync) leaves loose objects: what git did here before."""
        data = f"{kind} {len(body)}\0".encode() + body
        sha = hashlib.sha1(data).hexdigest()
        path = self.path / "objects" / sha[:2] / sha[2:]
        if path.exists():
            return sha
        try:
            path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix="tmp_obj_", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(zlib.compress(data))
                os.chmod(tmp, 0o444)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as err:
            raise GitError(f"cannot write to {self.path}: {err.strerror or err}") from None
        return sha

    def set_ref(self, ref: str, sha: str) -> None:
        self.set_refs({ref: sha})

    def set_refs(self, refs: dict[str, str]) -> None:
        """All of these refs set, or none, as `git update-ref --stdin` sets them in a repository
        of loose refs (git's lock-file protocol, without a git process): each ref's `.lock`
        made exclusively and written, then each renamed over its ref. A lock that is there
        already (another git, or one killed mid-update) refuses them all. A reftable
        repository (a newer git's) goes through git."""
        if (self.path / "reftable").exists():
            lines = "".join(f"update {ref} {sha}\n" for ref, sha in refs.items())
            self._git("update-ref", "--stdin", stdin=lines.encode())
            return
        locks: list[Path] = []
        try:
            for ref, sha in refs.items():
                if not REF.fullmatch(ref) or not SHA.fullmatch(sha):
                    raise GitError(f"git cannot set {ref!r} to {sha!r}")
                lock = self.path / f"{ref}.lock"
                lock.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                locks.append(lock)
                with os.fdopen(fd, "wb") as f:
                    f.write(f"{sha}\n".encode())
            for lock in locks:
                os.replace(lock, lock.with_suffix(""))
            locks.clear()
        except FileExistsError as err:
            raise GitError(
                f"cannot set the refs of {self.path}: {err.filename} exists (another git is "
                "updating them, or one was killed: remove it if no git is running)"
            ) from None
        except OSError as err:
            raise GitError(f"cannot write to {self.path}: {err.strerror or err}") from None
        finally:
            for lock in locks:
                lock.unlink(missing_ok=True)

    def resolve(self, ref: str) -> str | None:
        try:
            return self._git("rev-parse", "--verify", "--quiet", ref)
        except GitError:
            return None
