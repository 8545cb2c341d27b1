"""A run in one file, to share or keep: `autoresearch bundle WS -o run.tar.gz`.

A bundle is a gzipped tar with a workspace's layout, holding one run: `.autoresearch/bundle.json`
(what it is, and the machine it was made on) and `.autoresearch/runs/<run>/` with a consistent
copy of the store (SQLite's backup API, so a run that is still writing is copied whole), every
experiment's code as a git bundle of the run's repository, the logs, reports and the run's own
copy of the workspace. Reading one unpacks it into a read-only temporary folder with the same
layout, so every reader of a workspace reads a bundle unchanged.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from autoresearch import __version__
from autoresearch.store.gitrepo import NO_HOOKS, sealed_env
from autoresearch.store.layout import DB_NAME, runs_dir
from autoresearch.store.store import Store
from autoresearch.store.workspace import BUNDLE_MANIFEST as MANIFEST
from autoresearch.store.workspace import STATE_DIR
from autoresearch.training import hardware
from autoresearch.training.train_command import python_path

FORMAT = 1
GIT_BUNDLE = "repo.bundle"
REPO = "repo"
# Never bundled: the live database files (the backup stands for them), the lock, the bare
# repository (its git bundle stands for it) and files half written.
_LEFT_OUT = {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", "lock", REPO}


class BundleError(Exception):
    """A bundle that cannot be written or read: one line."""


@dataclass
class Source:
    """Where a command reads runs: a workspace folder, or a bundle unpacked read-only."""

    workspace: Path  # the folder to read (the unpacked copy for a bundle)
    bundle: Path | None = None
    manifest: dict | None = None

    @property
    def note(self) -> str | None:
        """What a command says when it reads a bundle."""
        if self.bundle is None:
            return None
        made = self.manifest or {}
        where = made.get("hardware", {}).get("host") or "an unknown machine"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(made.get("made_at", 0)))
        return f"reading bundle {self.bundle} (read-only): made on {where} at {when}"


def _git(repo: Path, *args: str) -> None:
    proc = subprocess.run(
        ["git", *NO_HOOKS, *args], capture_output=True, env=sealed_env(repo), text=True
    )
    if proc.returncode != 0:
        raise BundleError(f"git {args[0]} failed: {proc.stderr.strip()}")


def _has_refs(repo: Path) -> bool:
    proc = subprocess.run(
        ["git", *NO_HOOKS, "for-each-ref", "--count=1"],
        capture_output=True, env=sealed_env(repo), text=True,
    )  # fmt: skip
    return proc.returncode == 0 and bool(proc.stdout.strip())


def _copy_run(store: Store, dest: Path) -> None:
    """The run folder without what _LEFT_OUT names, then the store and the code."""
    shutil.copytree(
        store.dir,
        dest,
        symlinks=True,  # a link is kept as a link, never followed out of the run
        ignore=lambda folder, names: {
            n for n in names if (Path(folder) == store.dir and n in _LEFT_OUT) or n.endswith(".tmp")
        },
    )
    copy = sqlite3.connect(dest / DB_NAME)
    try:
        store.db.backup(copy)  # consistent even while the run goes on writing
        copy.execute("PRAGMA journal_mode=DELETE")  # one file, readable from a read-only folder
    finally:
        copy.close()
    repo = store.dir / REPO
    if (repo / "HEAD").is_file() and _has_refs(repo):
        _git(repo, "bundle", "create", str((dest / GIT_BUNDLE).absolute()), "--all")


def write(workspace: Path, store: Store, output: Path) -> Path:
    """Bundle one run of workspace into output (written whole or not at all)."""
    cfg = store.config()
    manifest = {
        "format": FORMAT,
        "run": store.run_id,
        "made_at": time.time(),
        "autoresearch": __version__,
        "workspace": str(workspace.absolute()),
        "hardware": hardware.fingerprint(python_path(workspace, cfg)),
    }
    output = output.absolute()
    with tempfile.TemporaryDirectory(prefix="autoresearch-bundle-") as staging:
        root = Path(staging)
        _copy_run(store, runs_dir(root) / store.run_id)
        (root / STATE_DIR / MANIFEST).write_text(json.dumps(manifest, indent=2))
        tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        try:
            with tarfile.open(tmp, "w:gz") as tar:
                tar.add(root / STATE_DIR, arcname=STATE_DIR)
            tmp.replace(output)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise BundleError(f"cannot write {output}: {err.strerror or err}") from None
    return output


_opened: dict[tuple, Source] = {}


def _remove(folder: Path) -> None:
    for path, dirs, _ in os.walk(folder):
        for d in dirs:
            os.chmod(Path(path, d), 0o755)
    os.chmod(folder, 0o755)
    shutil.rmtree(folder, ignore_errors=True)


def _read_only(folder: Path) -> None:
    for path, dirs, files in os.walk(folder):
        for name in files:
            os.chmod(Path(path, name), 0o444)
        for name in dirs:
            os.chmod(Path(path, name), 0o555)
    os.chmod(folder, 0o555)


def unpack(bundle: Path) -> Source:
    """The bundle's runs in a read-only temporary folder (removed when this process ends)."""
    key = (str(bundle.absolute()), bundle.stat().st_mtime_ns)
    if key in _opened:
        return _opened[key]
    folder = Path(tempfile.mkdtemp(prefix="autoresearch-bundle-"))
    atexit.register(_remove, folder)
    try:
        with tarfile.open(bundle, "r:*") as tar:
            tar.extractall(folder, filter="data")  # no absolute paths, no links out, no devices
        manifest = json.loads((folder / STATE_DIR / MANIFEST).read_text())
    except (tarfile.TarError, OSError, ValueError) as err:
        raise BundleError(f"{bundle}: not an autoresearch bundle ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{bundle}: a bundle format this release cannot read")
    manifest["file"] = str(bundle)  # what readers of the folder call it
    (folder / STATE_DIR / MANIFEST).write_text(json.dumps(manifest, indent=2))
    for run in runs_dir(folder).iterdir():
        if (run / GIT_BUNDLE).is_file():
            _git(run / REPO, "init", "--bare", "--quiet", str(run / REPO))
            _git(run / REPO, "fetch", "--quiet", str(run / GIT_BUNDLE), "refs/*:refs/*")
    _read_only(folder)
    _opened[key] = Source(folder, bundle, manifest)
    return _opened[key]


def resolve(path: Path) -> Source:
    """A workspace folder as it is; a bundle file unpacked (read-only)."""
    if path.is_file():
        if not tarfile.is_tarfile(path):
            raise BundleError(f"{path}: neither a workspace folder nor an autoresearch bundle")
        return unpack(path)
    return Source(path)
