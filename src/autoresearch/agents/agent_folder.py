"""A CLI agent's folders: the fresh HOME each call gets (only what its CLI needs to
authenticate), and the experiment folder put back as it was, but for train.py (no link written
through, no bytecode left behind)."""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

from autoresearch.training.experiment import read_plain

SKIPPED_DIRS = {"__pycache__"}
# What each CLI needs in its HOME to authenticate (claude: its settings and OAuth credentials;
# codex: config.toml with the model providers, auth.json), copied into a fresh HOME for each call:
# the agent never sees the user's dotfiles, and what it writes there is discarded. The folder's
# variable, when the user set it (CLAUDE_CONFIG_DIR, CODEX_HOME), says where they are instead.
AUTH_FILES = {
    "claude": (
        "CLAUDE_CONFIG_DIR",
        ".claude",
        (".credentials.json", "settings.json"),
        ".claude.json",
    ),
    "codex": ("CODEX_HOME", ".codex", ("config.toml", "auth.json"), None),
}
# Variables that would lead a program back into the user's own configuration.
UNSET_ENV = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME",
             "XDG_RUNTIME_DIR", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_DIR")  # fmt: skip


def skipped(_folder: str, names: list[str]) -> set[str]:
    return SKIPPED_DIRS & set(names)


def fresh_home(home: Path, preset: str | None) -> dict[str, str]:
    """Fill home with what preset's CLI needs to authenticate (copies of regular files only);
    the agent's environment: ours, with HOME there and nothing that leads back to ours."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    env["HOME"] = str(home)
    if preset not in AUTH_FILES:
        return env
    variable, folder, names, beside = AUTH_FILES[preset]
    source = Path(os.environ.get(variable) or Path.home() / folder)
    copies = [(source / name, home / folder / name) for name in names]
    if beside:
        copies.append((Path.home() / beside, home / beside))
    for src, dest in copies:
        data = read_plain(src)
        if data is not None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            dest.chmod(0o600)
    if os.environ.get(variable):
        env[variable] = str(home / folder)
    return env


def _tree(root: Path) -> tuple[set[str], set[str]]:
    """The regular files and the folders under root; symlinks are neither listed nor followed."""
    files, folders = set(), set()
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not Path(folder, d).is_symlink()]
        folders.update(Path(folder, d).relative_to(root).as_posix() for d in dirs)
        for name in names:
            path = Path(folder, name)
            if not path.is_symlink() and path.is_file():
                files.add(path.relative_to(root).as_posix())
    return files, folders


def _same(a: Path, b: Path) -> bool:
    return a.stat().st_mode == b.stat().st_mode and filecmp.cmp(a, b, shallow=False)


def restore(root: Path, saved: Path) -> list[str]:
    """Undo every change under root to a file other than train.py, from saved (a copy of root
    taken before); return the files that were changed."""
    before, before_dirs = _tree(saved)
    after, after_dirs = _tree(root)
    reverted = []
    for rel in sorted(before | after):
        if rel == "train.py" or (rel in before and rel in after and _same(saved / rel, root / rel)):
            continue
        reverted.append(rel)
        path = root / rel
        for place in [*reversed(Path(rel).parents[:-1]), Path(rel)]:
            _remove(root / place)  # a link in a file's or a folder's place: never followed
        if path.is_dir():
            shutil.rmtree(path)
        if rel in before:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(saved / rel, path, follow_symlinks=False)
    for rel in sorted(after_dirs - before_dirs):  # a parent sorts before its children
        if (root / rel).is_dir():
            shutil.rmtree(root / rel)
    for folder, dirs, _names in os.walk(root):  # bytecode never travels into an experiment
        for name in SKIPPED_DIRS & set(dirs):
            _remove(Path(folder, name))
    return reverted


def _remove(path: Path) -> None:
    """A link or a file at path removed, and a bytecode folder; any other folder stays."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir() and path.name in SKIPPED_DIRS:
        shutil.rmtree(path)


# --- the agent ---------------------------------------------------------------------------------
