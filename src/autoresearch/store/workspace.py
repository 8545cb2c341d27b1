"""The user's research workspace: creating it, copying it for experiments, fingerprints."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

TASKS_DIR = Path(__file__).parents[1] / "tasks"  # autoresearch/tasks
TASKS = {"fashion-mnist": TASKS_DIR / "fashion_mnist"}
TEMPLATE_FILES = ("prepare.py", "train.py", "program.md", "autoresearch.toml")
STATE_DIR = ".autoresearch"
BUNDLE_MANIFEST = "bundle.json"  # in STATE_DIR of an unpacked bundle (bundle.py)
ORIGIN = "origin.json"  # in STATE_DIR: the bundle a workspace was started from (init --from)
# Never copied into an experiment, never fingerprinted.
IGNORED = {".git", STATE_DIR, ".venv", "venv", "__pycache__", ".ipynb_checkpoints", ".DS_Store"}


class WorkspaceError(Exception):
    """A one-line problem with the workspace."""


def init(directory: Path, task: str, python: str) -> list[Path]:
    """Copy the task's template files into directory, with the training interpreter filled in."""
    if task not in TASKS:
        raise WorkspaceError(f"unknown task '{task}'; available: {', '.join(TASKS)}")
    clashes = [name for name in TEMPLATE_FILES if (directory / name).exists()]
    if clashes:
        raise WorkspaceError(
            f"{directory} already has {', '.join(clashes)}; choose an empty folder"
        )
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TEMPLATE_FILES:
        text = (TASKS[task] / name).read_text()
        if name == "autoresearch.toml":
            text = text.replace('python = "python3"', f'python = "{python}"')
        (directory / name).write_text(text)
        written.append(directory / name)
    return written


def _ignore(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if n in IGNORED or n.endswith(".pyc")}


def _write_new(path: Path, data: bytes) -> None:
    """Write a fresh file: a symlink at path is replaced, never written through."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def snapshot(workspace: Path, dest: Path) -> Path:
    """A run's own copy of the workspace. Its key files are read through symlinks and stored
    as regular files, so that no later write can reach the user's files."""
    copy_for_experiment(workspace, dest)
    for name in TEMPLATE_FILES:
        if (dest / name).is_symlink():
            _write_new(dest / name, (workspace / name).read_bytes())
    return dest


def copy_for_experiment(workspace: Path, dest: Path, train_py: str | None = None) -> Path:
    """A fresh copy of the workspace in dest, with train_py as its train.py when given."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(workspace, dest, ignore=_ignore, symlinks=True)
    if train_py is not None:
        _write_new(dest / "train.py", train_py.encode())
    return dest


def fingerprint(directory: Path, skip: tuple[str, ...] = ("train.py",)) -> dict[str, str]:
    """sha256 of every file under directory but the skipped and ignored ones, by relative path.
    Ignored folders (the run stores among them) are not even walked."""
    out = {}
    for folder, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if d not in IGNORED]  # os.walk lists symlinked dirs, unfollowed
        for name in [*names, *(d for d in dirs if Path(folder, d).is_symlink())]:
            path = Path(folder, name)
            rel = path.relative_to(directory).as_posix()
            if name.endswith(".pyc") or rel in skip:
                continue
            if path.is_symlink():  # never read through a link: it may point at /dev/zero
                out[rel] = "symlink:" + os.readlink(path)
            elif path.is_file():
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(out.items()))


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files added, removed or modified between two fingerprints."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def read_tree(directory: Path) -> dict[str, bytes]:
    """Every regular file under directory, by relative path (links are not followed or kept):
    an experiment as it is shipped to a Ray node."""
    out = {}
    for folder, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if d not in IGNORED and not Path(folder, d).is_symlink()]
        for name in names:
            path = Path(folder, name)
            if not name.endswith(".pyc") and path.is_file() and not path.is_symlink():
                out[path.relative_to(directory).as_posix()] = path.read_bytes()
    return out


def write_tree(directory: Path, files: dict[str, bytes]) -> None:
    """read_tree's files under directory (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_new(path, data)


def origin_of(workspace: Path) -> dict | None:
    """Where the workspace was started from (`init --from`), or None."""
    try:
        found = json.loads((workspace / STATE_DIR / ORIGIN).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def bundle_manifest(folder: Path) -> dict | None:
    """What an unpacked bundle says of itself (its file, the machine it was made on); None for
    a workspace."""
    try:
        found = json.loads((folder / STATE_DIR / BUNDLE_MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def describe_origin(origin: dict) -> str:
    """ "iteration 7 (val_accuracy 0.8712) of run 20250101-120000, bundle run.tar.gz" """
    value = origin.get("value")
    score = "no score" if value is None else f"{origin.get('metric')} {value:.4f}"
    return (
        f"iteration {origin.get('iteration')} ({score}) of run {origin.get('run')}, "
        f"bundle {Path(str(origin.get('bundle'))).name}"
    )
