"""bubblewrap: what a training process or a CLI agent can see and reach, as a command line.

An allow-list: the sandbox starts from an empty root and binds in only what the process needs,
read-only: the system's programs and libraries (/usr, /bin, /lib*, a few files of /etc), the
interpreter's files, the task's training files. Its own folder is the only writable place besides
a private, size-limited /tmp; /dev and /proc are new and minimal. Nothing else exists inside: not
the user's home, not the data folders or caches, not other experiments, not /run or any socket.
Where a bound folder holds a secret path (e.g. Debian's datasets under /usr/share), that path is
emptied.

Nobody is privileged inside. Where user namespaces work, the process runs in a new one as an
unprivileged uid with every capability dropped; where they are refused (Docker's default seccomp
profile) and we are root, bubblewrap runs as root and `setpriv` drops to an unprivileged uid with
no capabilities before the command starts. Either way no-new-privileges is set and the seccomp
filter of sandbox_filter applies. Training also gets no network.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch.training import sandbox_filter
from autoresearch.training.probe import run_quietly

BWRAP, NONE = "bwrap", "none"  # the sandbox modes besides "auto" (see config.Config.sandbox)
USERNS, SEPARATE_UID = "userns", "uid"  # the two boundaries (see boundary())
UNPRIVILEGED_ID = 65534  # the uid and gid inside when we are root ("nobody")
PROBE_TIMEOUT_SECS = 15
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "passwd", "group",
    "nsswitch.conf", "hosts", "host.conf", "gai.conf", "resolv.conf", "ssl", "ca-certificates",
    "pki", "alternatives", "os-release", "mime.types",
)  # fmt: skip
# Data that system packages install (Debian's dataset-* packages): never shown.
SYSTEM_DATA = ("/usr/share/datasets",)
SETPRIV = "/usr/bin/setpriv"
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: `dnf install "
    'bubblewrap`), or set sandbox = "none" to train unsandboxed'
)


class SandboxError(Exception):
    """The sandbox was asked for and cannot work, or would show a secret: one line."""


@dataclass
class View:
    """What a sandboxed process sees besides the system: bound folders and files, and the
    secret paths emptied where a bound folder contains them."""

    readonly: list[Path] = field(default_factory=list)
    writable: list[Path] = field(default_factory=list)
    secret: list[Path] = field(default_factory=list)
    network: bool = False
    devices: list[Path] = field(default_factory=list)  # e.g. /dev/nvidia0 for CUDA
    tmp_mb: int | None = None  # the private /tmp's size; None: no limit


def _bwrap() -> str | None:
    return shutil.which("bwrap")


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def _starts(argv: list[str]) -> str | None:
    """None when argv runs, else the last line it printed."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECS)
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    if done.returncode == 0:
        return None
    return (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]


def _bare(userns: bool) -> list[str]:
    args = [_bwrap() or "bwrap", "--unshare-pid", *_system()]
    return [*args, *(_identity() if userns else []), "--", "true"]


@functools.cache
def boundary() -> str | None:
    """USERNS, SEPARATE_UID (user namespaces refused, and we are root), or None (neither)."""
    if _starts(_bare(True)) is None:
        return USERNS
    if os.geteuid() == 0 and Path(SETPRIV).exists() and _starts(_bare(False)) is None:
        return SEPARATE_UID
    return None


@functools.cache
def probe() -> str | None:
    """None when the sandbox works here, else why not (one line)."""
    if sys.platform == "darwin":
        return (
            "macOS has no sandbox yet: train.py and CLI agents run as you and CAN READ THE "
            "VALIDATION LABELS and your files; trust a result only after reading its train.py"
        )
    if _bwrap() is None:
        return f"bubblewrap (bwrap) is not installed; {INSTALL_HINT}"
    try:
        sandbox_filter.filter_file()
    except sandbox_filter.FilterError as err:
        return str(err)
    if boundary() is None:
        detail = _starts(_bare(True))
        return (
            f"bwrap cannot create namespaces here ({detail}); in a container allow user "
            "namespaces (e.g. docker run --security-opt seccomp=unconfined), run autoresearch "
            'as root there, or set sandbox = "none"'
        )
    argv = command(View(), ["true"], Path("/"))
    if (failed := _starts(argv)) is not None:
        return f"bwrap does not run with its seccomp filter ({failed})"
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


def in_force(mode: str) -> str:
    """The run's settings line: which boundary holds train.py and the CLI agents."""
    if mode == NONE:
        return 'sandbox off (sandbox = "none")'
    return f"sandbox: {describe()}" if probe() is None else "UNSANDBOXED (see the warning)"


def describe() -> str:
    """Which boundary is in force, for doctor and the run's settings line."""
    if boundary() == USERNS:
        return (
            f"a user namespace as uid {_inner_id()}, no capabilities, seccomp, allow-list of paths"
        )
    return (
        f"uid {UNPRIVILEGED_ID} with no capabilities (user namespaces are refused here), "
        "seccomp, allow-list of paths"
    )


def _inner_id() -> int:
    return UNPRIVILEGED_ID if os.getuid() == 0 else os.getuid()


def _identity() -> list[str]:
    """A new user namespace, mapped to an unprivileged uid and gid."""
    ids = [
        "--uid",
        str(_inner_id()),
        "--gid",
        str(UNPRIVILEGED_ID if os.getuid() == 0 else os.getgid()),
    ]
    return ["--unshare-user", *ids]


def _system() -> list[str]:
    args = []
    for root in SYSTEM:
        if os.path.islink(root):
            args += ["--symlink", os.readlink(root), root]
        elif os.path.isdir(root):
            args += ["--ro-bind", root, root]
    for name in ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def exposed(paths: list[Path], secret: list[Path]) -> list[tuple[Path, Path]]:
    """(path, secret) pairs where binding path would show the secret (or part of it)."""
    home = _real(os.path.expanduser("~"))
    pairs = []
    for path in map(_real, paths):
        for hidden in [*map(_real, secret), home]:
            if _inside(hidden, path) or (hidden != home and _inside(path, hidden)):
                pairs.append((path, hidden))
    return pairs


def refuse_exposure(paths: list[Path], secret: list[Path], what: str) -> None:
    """SandboxError (one line) when one of paths would show a secret path or the home."""
    found = exposed(paths, secret)
    if found:
        path, hidden = found[0]
        kind = "your home folder" if hidden == _real(os.path.expanduser("~")) else "the secret path"
        raise SandboxError(
            f"{what} {path} would show {kind} {hidden} inside the sandbox; name a narrower "
            "folder that holds neither labels, data folders nor run stores"
        )


def _folders_on_the_way(paths: list[Path]) -> list[str]:
    """The folders that lead to the bound paths, made world-traversable (bubblewrap copies a
    mode of 0700 from /root, which a separate uid could not pass)."""
    args: list[str] = []
    folders = {a for p in paths for a in p.parents if a != Path("/")}
    for folder in sorted(folders, key=lambda f: len(f.parts)):
        if not any(_inside(folder, Path(p)) for p in (*paths, *SYSTEM)):
            args += ["--perms", "0755", "--dir", str(folder)]
    return args


def _binds(view: View) -> list[str]:
    bound = [(p, "--ro-bind") for p in view.readonly] + [(p, "--bind") for p in view.writable]
    args = _folders_on_the_way([_real(p) for p, _flag in bound if os.path.lexists(p)])
    for path, flag in sorted(bound, key=lambda b: len(_real(b[0]).parts)):  # parents first
        if os.path.lexists(path):
            args += [flag, str(_real(path)), str(_real(path))]
            if os.path.islink(path):
                args += ["--symlink", str(_real(path)), str(path)]  # the name it is given by
    shown = [_real(p) for p in (*SYSTEM, *view.readonly, *view.writable)]
    for hidden in map(_real, [*map(Path, SYSTEM_DATA), *view.secret]):
        if not hidden.exists() or not any(_inside(hidden, p) for p in shown):
            continue
        args += (
            ["--tmpfs", str(hidden)] if hidden.is_dir() else ["--ro-bind", "/dev/null", str(hidden)]
        )
    return args


def bound(view: View) -> list[str]:
    """Every path the view shows on purpose, as it is named inside."""
    return sorted({str(_real(p)) for p in (*view.readonly, *view.writable) if os.path.lexists(p)})


def command(view: View, argv: list[str], cwd: Path) -> list[str]:
    """The command line that runs argv in cwd inside view."""
    args = [_bwrap() or "bwrap", "--die-with-parent", "--new-session", "--unshare-pid"]
    args += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not view.network:
        args.append("--unshare-net")
    if boundary() == USERNS:
        args += [*_identity(), "--cap-drop", "ALL"]
    args += [*_system(), "--proc", "/proc", "--dev", "/dev"]
    size = ["--size", str(view.tmp_mb * 2**20)] if view.tmp_mb else []
    args += ["--perms", "1777", *size, "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/dev/shm"]
    args += _binds(view)
    for device in view.devices:
        args += ["--dev-bind", str(device), str(device)]
    if boundary() == SEPARATE_UID:
        argv = [SETPRIV, f"--reuid={UNPRIVILEGED_ID}", f"--regid={UNPRIVILEGED_ID}",
                "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
                "--", *argv]  # fmt: skip
    args += ["--chdir", str(_real(cwd)), "--", *argv]
    return sandbox_filter.wrap(args)


def give_to_sandbox(paths: list[Path]) -> None:
    """With a separate uid, the writable folders become that uid's (we are root there)."""
    if boundary() != SEPARATE_UID:
        return
    for top in paths:
        for folder, dirs, names in os.walk(top):
            for name in [folder, *(os.path.join(folder, n) for n in (*dirs, *names))]:
                os.lchown(name, UNPRIVILEGED_ID, UNPRIVILEGED_ID)


def gpu_devices() -> list[Path]:
    """The NVIDIA device files, when this machine has them."""
    return sorted(Path("/dev").glob("nvidia*"))


@functools.cache
def interpreter_paths(python: str) -> tuple[Path, ...]:
    """Where the interpreter's files live (its prefixes and the sys.path it reports when
    isolated: never PYTHONPATH or a user site), bound read-only."""
    code = (
        "import json, sys; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix, "
        "sys.exec_prefix, *sys.path]))"
    )
    try:
        _status, out, _err = run_quietly([python, "-I", "-c", code], PROBE_TIMEOUT_SECS)
        found = json.loads(out.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return ()
    paths = [Path(python).absolute(), *(Path(p) for p in found if isinstance(p, str) and p)]
    return tuple(dict.fromkeys(_real(p) for p in paths if p.is_absolute() and p.exists()))


def program_paths(argv: list[str]) -> list[Path]:
    """What a program needs to run, read-only: its folder (and the folder of its real file),
    the whole npm tree it lies in (optional native packages sit beside it), for a script its
    interpreter's; and each file its arguments name by absolute path (a script given to an
    interpreter)."""
    found = [Path(a) for a in argv[1:] if os.path.isabs(a) and os.path.isfile(a)]
    for program in [a for a in argv[:1] if os.path.isabs(a) and os.path.exists(a)]:
        real = _real(program)
        found += [Path(program).parent, real.parent]
        if "node_modules" in real.parts:
            found.append(Path(*real.parts[: real.parts.index("node_modules") + 1]))
        interpreter = _shebang(real)
        if interpreter and "python" in Path(interpreter).name:  # not a shim that runs another
            found += [p for p in interpreter_paths(interpreter) if not _shebang(p)]
        elif interpreter:
            found.append(_real(interpreter).parent)
        if "python" in Path(program).name:
            found += interpreter_paths(program)
    return list(dict.fromkeys(found))


def _shebang(path: Path) -> str | None:
    """The interpreter a script names (`#!/usr/bin/env node` -> node found on PATH)."""
    try:
        with open(path, "rb") as f:
            first = f.readline(256)
    except OSError:  # a folder among them
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if words and Path(words[0]).name == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
        return shutil.which(words[0]) if words else None
    return words[0] if words else None


def training_view(
    workdir: Path, readonly: list[Path], secret: list[Path], python: str, tmp_mb: int | None
) -> View:
    """Training: no network; workdir writable; its fixed files, the data it may read and the
    interpreter read-only; the secret paths emptied wherever they would show."""
    return View(
        readonly=[*readonly, *interpreter_paths(python)],
        writable=[workdir],
        secret=secret,
        devices=gpu_devices(),
        tmp_mb=tmp_mb,
    )


def agent_view(workdir: Path, scratch: Path, secret: list[Path], argv: list[str]) -> View:
    """A CLI agent: network on (it calls its API); its experiment folder and a scratch folder
    (its private HOME inside) writable; its program's files read-only; nothing else."""
    shown = [p for p in program_paths(argv) if not exposed([p], secret)]
    return View(
        readonly=shown,
        writable=[workdir, scratch],
        secret=secret,
        network=True,
    )
