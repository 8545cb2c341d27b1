"""bubblewrap: what a training process or a CLI agent can see and reach, as a command line.

A sandboxed process gets the root filesystem read-only, with the places that hold what it must
not read (the validation labels, the run stores, the user's home, the host's /tmp) replaced by
empty private folders; then what it needs is bound back: its experiment directory (writable),
the data it may read and the interpreter's files (read-only). Training also gets its own PID,
network and IPC namespaces, so it has no network and no process of it outlives the sandbox.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch.probe import run_quietly

BWRAP, NONE = "bwrap", "none"  # the sandbox modes besides "auto" (see config.Config.sandbox)
PROBE_TIMEOUT_SECS = 15
# Where people keep files a training run has no business reading; each becomes an empty folder.
PRIVATE_ROOTS = ("/home", "/root", "/tmp", "/var/tmp", "/run/user")
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: `dnf install "
    'bubblewrap`), or set sandbox = "none" to train unsandboxed'
)


class SandboxError(Exception):
    """The sandbox was asked for and cannot work: one line naming the fix."""


HIDE, WRITABLE, READONLY = "hide", "writable", "readonly"


@dataclass
class View:
    """What a sandboxed process sees: mounts applied in order over a read-only root."""

    mounts: list[tuple[str, Path]] = field(default_factory=list)  # (HIDE|WRITABLE|READONLY, path)
    network: bool = False
    devices: list[Path] = field(default_factory=list)  # e.g. /dev/nvidia0 for CUDA


def _bwrap() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def probe() -> str | None:
    """None when bubblewrap works here, else why not (one line)."""
    exe = _bwrap()
    if exe is None:
        return f"bubblewrap (bwrap) is not installed; {INSTALL_HINT}"
    argv = command(View(mounts=[(HIDE, Path("/tmp"))]), ["true"], Path("/"))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECS)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap does not run: {err}"
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return (
            f"bwrap cannot create namespaces here ({detail}); in a container allow user "
            "namespaces (e.g. docker run --security-opt seccomp=unconfined, or --privileged), "
            'or set sandbox = "none"'
        )
    return None


def resolve(mode: str) -> tuple[bool, str | None]:
    """(use bwrap?, a warning to print on every run when training goes unsandboxed)."""
    if mode == NONE:
        return False, None
    reason = probe()
    if reason is None:
        return True, None
    if mode == BWRAP:
        raise SandboxError(f'sandbox = "bwrap", but {reason}')
    return False, f"training runs UNSANDBOXED: {reason}"


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def command(view: View, argv: list[str], cwd: Path) -> list[str]:
    """The bwrap command line that runs argv in cwd inside view."""
    args = [_bwrap() or "bwrap", "--die-with-parent", "--new-session", "--unshare-pid"]
    args += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not view.network:
        args.append("--unshare-net")
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for kind, given in view.mounts:
        path = _real(given)
        if path == Path("/") or not path.exists():
            continue
        if kind == HIDE:
            args += (
                ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
            )
        else:
            args += ["--bind" if kind == WRITABLE else "--ro-bind", str(path), str(path)]
    for device in view.devices:
        args += ["--dev-bind", str(device), str(device)]
    return [*args, "--chdir", str(_real(cwd)), "--", *argv]


def gpu_devices() -> list[Path]:
    """The NVIDIA device files, when this machine has them."""
    return sorted(Path("/dev").glob("nvidia*"))


@functools.cache
def interpreter_paths(python: str) -> tuple[Path, ...]:
    """Where the interpreter's files live (prefixes, sys.path): bound read-only when they lie
    under a hidden folder, so that a virtual environment in the user's home still works."""
    code = (
        "import json, sys; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix, "
        "sys.exec_prefix, *sys.path]))"
    )
    try:
        _status, out, _err = run_quietly([python, "-c", code], PROBE_TIMEOUT_SECS)
        found = json.loads(out.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return ()
    paths = [Path(python).absolute(), *(Path(p) for p in found if isinstance(p, str) and p)]
    return tuple(dict.fromkeys(_real(p) for p in paths if p.is_absolute()))


def private_roots() -> list[Path]:
    """The user's home and the host's temporary folders."""
    return [Path(p) for p in (*PRIVATE_ROOTS, os.path.expanduser("~"))]


def training_view(workdir: Path, readonly: list[Path], secret: list[Path], python: str) -> View:
    """Training: no network; the user's private folders and the secret paths empty; workdir
    writable; its fixed files, the data it may read and the interpreter read-only."""
    return View(
        mounts=[
            *((HIDE, p) for p in (*private_roots(), *secret)),
            (WRITABLE, workdir),
            *((READONLY, p) for p in (*readonly, *interpreter_paths(python))),
        ],
        devices=gpu_devices(),
    )


def agent_view(
    workdir: Path, scratch: Path, secret: list[Path], workspace: Path, argv: list[str]
) -> View:
    """A CLI agent: network on (it calls its API), its home writable (its config and
    credentials), the host's /tmp empty, the workspace and the agent's own program folders
    read-only, the secret paths (labels, run stores) empty, its experiment directory and
    scratch folder writable."""
    programs = [Path(a) for a in argv if os.path.isabs(a) and os.path.exists(a)]
    shown = [*(p.parent for p in programs), *programs]
    if "python" in Path(argv[0]).name:  # an agent run by a Python (a venv's) needs its files
        shown += interpreter_paths(argv[0])
    return View(
        mounts=[
            (WRITABLE, Path(os.path.expanduser("~"))),
            (HIDE, Path("/tmp")),
            (READONLY, workspace),
            *((READONLY, p) for p in shown),
            *((HIDE, p) for p in secret),
            (WRITABLE, workdir),
            (WRITABLE, scratch),
        ],
        network=True,
    )
