"""The command that trains an experiment, and what it needs to read besides its own folder.

By default it is `[python, "train.py"]` with the configured interpreter. Any argv may be set
instead, e.g. `command = ["uv", "run", "train.py"]`, which is how Karpathy's autoresearch launches
an experiment (program.md: `uv run train.py > run.log 2>&1`; github.com/karpathy/autoresearch).
uv then runs the workspace's own environment, the `.venv` the user synced beforehand (its
README: `uv sync`), never a new one: an experiment runs in a copy of the workspace that has no
`.venv`, and inside the sandbox there is no network to install one. So uv is told where the
environment is, not to sync it and not to go online, and the sandbox shows it that environment
and uv's cache read-only.

`readonly_paths` are folders train.py may read, e.g. `~/.cache/autoresearch` (where Karpathy's
prepare.py keeps the data and tokenizer: `CACHE_DIR = os.path.join(os.path.expanduser("~"),
".cache", "autoresearch")`) and `~/.cache/huggingface/hub` (where its train.py's
`kernels.get_kernel(...)` finds the flash-attention kernels). train.py's HOME is in its
experiment folder, so each one under the user's home is linked there too: `~` in train.py
finds it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch.core.config import Config

UV = "uv"
SCRIPT = "train.py"


@dataclass
class TrainCommand:
    argv: list[str]  # what runs, in the experiment folder
    python: str  # the interpreter it ends up running (its files are shown read-only)
    env: dict[str, str] = field(default_factory=dict)  # added to train.py's environment
    readonly: list[Path] = field(default_factory=list)  # what else the command reads
    uses_uv: bool = False


def python_path(workspace: Path, cfg: Config) -> str:
    """The training interpreter; a path with a slash is taken relative to the workspace."""
    if "/" in cfg.python:
        return str((workspace / Path(cfg.python).expanduser()).absolute())
    return shutil.which(cfg.python) or cfg.python


def program_path(workspace: Path, program: str) -> str | None:
    """The command's program: a path with a slash relative to the workspace, else on PATH."""
    if "/" in program:
        path = (workspace / Path(program).expanduser()).absolute()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(program)


def uv_cache_dir() -> Path:
    """uv's cache, where uv itself looks for it on Linux and macOS."""
    if os.environ.get("UV_CACHE_DIR"):
        return Path(os.environ["UV_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / UV


def project_environment(workspace: Path) -> Path:
    """The workspace's uv environment: UV_PROJECT_ENVIRONMENT if the user sets one, else .venv."""
    given = Path(os.environ.get("UV_PROJECT_ENVIRONMENT") or ".venv").expanduser()
    return (workspace / given).absolute()


def resolve(workspace: Path, cfg: Config) -> TrainCommand:
    """The command of this configuration (a program not found stays as written: the preflight
    says so before anything trains)."""
    if not cfg.command:
        python = python_path(workspace, cfg)
        return TrainCommand([python, SCRIPT], python)
    program, *args = cfg.command
    found = program_path(workspace, program) or program
    shown = [Path(found)] if os.path.isabs(found) else []
    if shown and not shown[0].is_relative_to(workspace.absolute()):
        shown.insert(0, shown[0].parent)  # its folder (links beside it), never the workspace's
    if Path(program).name == UV:
        venv = project_environment(workspace)
        env = {
            "UV_PROJECT_ENVIRONMENT": str(venv),
            "UV_NO_SYNC": "1",  # run the environment as the user synced it
            "UV_OFFLINE": "1",  # the sandbox has no network
            "UV_PYTHON_DOWNLOADS": "never",
        }
        readonly = [*shown, venv, uv_cache_dir()]
        return TrainCommand([found, *args], str(venv / "bin" / "python"), env, readonly, True)
    if "python" in Path(program).name:
        return TrainCommand([found, *args], found, {}, shown)
    return TrainCommand([found, *args], python_path(workspace, cfg), {}, shown)


def probe_argv(command: TrainCommand, code: str) -> list[str]:
    """A command line that runs `python -c code` the way the training command runs train.py."""
    if command.uses_uv:
        return [command.argv[0], "run", "python", "-c", code]
    return [command.python, "-c", code]


def readonly_paths(cfg: Config) -> list[Path]:
    """The configured folders train.py may read, `~` expanded to the user's home."""
    return [Path(p).expanduser().absolute() for p in cfg.readonly_paths]


def link_into_home(home: Path, paths: list[Path]) -> None:
    """Make each path under the user's home reachable at the same place under train.py's HOME."""
    real_home = Path(os.path.expanduser("~")).absolute()
    for path in paths:
        if not path.is_relative_to(real_home) or path == real_home:
            continue
        link = home / path.relative_to(real_home)
        if link.is_symlink() or link.exists():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
