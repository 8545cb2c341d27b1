"""Memory, process-count and disk limits for a training process tree.

A cgroup per experiment where this machine lets us make one (cgroup v2, or the v1 `memory` and
`pids` controllers), so the kernel enforces the limits on the whole tree and says which one was
hit. Elsewhere RLIMIT_AS (per process) and RLIMIT_NPROC; the runner also watches the tree's
memory and process count and kills it past either limit, whatever the mechanism. Disk: no file
may grow past the limit (RLIMIT_FSIZE), and the runner measures what the experiment folder
holds (FolderWatch) and kills the tree past the limit.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import resource
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

MB = 2**20
# What a process says when RLIMIT_AS refuses it memory (Python, numpy, PyTorch, C++).
ALLOCATION_FAILED = re.compile(
    r"MemoryError|Unable to allocate|can't allocate memory|Cannot allocate memory|std::bad_alloc"
)
FILE_TOO_LARGE = re.compile(r"File too large|EFBIG")  # a write past RLIMIT_FSIZE
DISK_POLL_SECS = 1.0  # the experiment folder is measured at most this often
DISK_POLL_SHARE = 10  # and a walk that takes t seconds waits t * this before the next one
DEFAULT_MEMORY_SHARE = 0.75  # of the machine's memory, when max_memory_mb is not set
_counter = itertools.count()


@dataclass
class Limits:
    memory_mb: int | None  # None: no limit
    processes: int | None
    disk_mb: int | None = None  # what the tree may write in its experiment folder

    def describe(self) -> str:
        memory = f"{self.memory_mb} MB memory" if self.memory_mb else "no memory limit"
        procs = f"{self.processes} processes" if self.processes else "no process limit"
        disk = f"{self.disk_mb} MB disk" if self.disk_mb else "no disk limit"
        return f"{memory}, {procs}, {disk}"


def default_memory_mb() -> int:
    return int(psutil.virtual_memory().total * DEFAULT_MEMORY_SHARE / MB)


def memory_reason(limits: Limits) -> str:
    return f"memory limit reached: the training tree used over max_memory_mb = {limits.memory_mb}"


def process_reason(limits: Limits) -> str:
    return f"process limit reached: the training tree tried to run over max_processes = {limits.processes}"


def disk_reason(limits: Limits) -> str:
    return f"disk limit reached: train.py wrote over [resources] disk_mb = {limits.disk_mb}"


def folder_bytes(folder: Path) -> int:
    """The disk space the files under folder take (their blocks: a sparse file counts what it
    holds, a file linked twice counts once), links not followed, folders it cannot read not
    counted (open_up() them first)."""
    total, seen, stack = 0, set(), [str(folder)]
    while stack:
        path = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def open_up(folder: Path) -> None:
    """Read, write and search for the owner on folder and every folder under it (train.py may
    have taken them away to hide or keep what it wrote). Only once nothing else writes there:
    a folder swapped for a link between the look and the chmod would give its target away."""
    _owner_rwx(str(folder))
    for parent, folders, _ in os.walk(folder):  # top-down: each opened before it is walked
        for name in folders:
            _owner_rwx(os.path.join(parent, name))


def _owner_rwx(path: str) -> None:
    with contextlib.suppress(OSError):
        mode = os.lstat(path).st_mode
        if stat.S_ISDIR(mode):  # never a link
            os.chmod(path, stat.S_IMODE(mode) | stat.S_IRWXU)


def clear_folder(folder: Path, keep: tuple[str, ...]) -> None:
    """Remove what is in folder but the names in keep (links are removed, never followed)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.name in keep:
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)


class FolderWatch:
    """What a training tree wrote in its experiment folder, against the disk limit: the folder's
    growth since the start, measured at most every DISK_POLL_SECS, and never for more than a
    tenth of the time (a walk over a million files is slow)."""

    def __init__(self, folder: Path, limit_mb: int):
        self.folder, self.limit = folder, limit_mb * MB
        self.start = folder_bytes(folder)
        self.due = time.monotonic() + DISK_POLL_SECS

    def over(self, now: bool = False) -> bool:
        """Past the limit? Measured when due, or at once (now)."""
        began = time.monotonic()
        if not now and began < self.due:
            return False
        grown = folder_bytes(self.folder) - self.start
        took = time.monotonic() - began
        self.due = time.monotonic() + max(DISK_POLL_SECS, took * DISK_POLL_SHARE)
        return grown > self.limit


def _mounts() -> dict[str, Path]:
    """Mount points of the cgroup hierarchies: 'v2', and v1 controllers by name."""
    found: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fstype, _source, options = (right.split() + ["", "", ""])[:3]
        mount = Path(left.split()[4])
        if fstype == "cgroup2":
            found.setdefault("v2", mount)
        elif fstype == "cgroup":
            for option in options.split(","):
                if option in ("memory", "pids"):
                    found.setdefault(option, mount)
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per hierarchy: 'v2' and v1 controller names."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        if controllers == "":
            paths["v2"] = path
        for name in controllers.split(","):
            if name in ("memory", "pids"):
                paths[name] = path
    return paths


class Enforcer:
    """The limits of one training tree: set up before it starts, read and removed after."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.groups: dict[str, Path] = {}  # 'v2' or controller name -> cgroup folder
        if limits.memory_mb or limits.processes:
            self._make_groups()

    @property
    def kernel_enforced(self) -> bool:
        return bool(self.groups)

    def _make_groups(self) -> None:
        mounts, own = _mounts(), _own_paths()
        name = f"autoresearch-{os.getpid()}-{next(_counter)}"
        if "v2" in mounts and "v2" in own:
            parent = mounts["v2"] / own["v2"].lstrip("/")
            try:
                enabled = (parent / "cgroup.subtree_control").read_text().split()
            except OSError:
                enabled = []
            if {"memory", "pids"} <= set(enabled) and self._try("v2", parent / name):
                self._write("v2", "memory.max", self.limits.memory_mb, MB)
                self._write("v2", "memory.swap.max", self.limits.memory_mb and 0)
                self._write("v2", "pids.max", self.limits.processes)
                return
        for controller in ("memory", "pids"):
            if controller in mounts and controller in own:
                self._try(controller, mounts[controller] / own[controller].lstrip("/") / name)
        self._write("memory", "memory.limit_in_bytes", self.limits.memory_mb, MB)
        self._write("pids", "pids.max", self.limits.processes)
        if set(self.groups) != {"memory", "pids"}:
            self.close()  # half a set of limits is no better than the fallback

    def _try(self, key: str, folder: Path) -> bool:
        try:
            folder.mkdir()
        except OSError:
            return False
        self.groups[key] = folder
        return True

    def _write(self, key: str, filename: str, value: int | None, unit: int = 1) -> None:
        if key in self.groups and value is not None:
            try:
                (self.groups[key] / filename).write_text(str(value * unit))
            except OSError:
                pass

    def preexec(self) -> None:
        """In the child, before exec: join the cgroups, or set the rlimits; no file it writes
        may grow past the disk limit (a write past it fails with EFBIG, or SIGXFSZ kills)."""
        if self.limits.disk_mb:
            size = self.limits.disk_mb * MB
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        if self.groups:
            for folder in self.groups.values():
                with open(folder / "cgroup.procs", "w") as f:
                    f.write(str(os.getpid()))
            return
        if self.limits.memory_mb and not Path("/dev/nvidiactl").exists():  # CUDA maps huge VA
            size = self.limits.memory_mb * MB
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        if self.limits.processes and os.getuid() != 0:  # root is exempt from RLIMIT_NPROC
            mine = sum(
                1 for p in psutil.process_iter(["uids"]) if p.info["uids"].real == os.getuid()
            )
            allowed = mine + self.limits.processes
            resource.setrlimit(resource.RLIMIT_NPROC, (allowed, allowed))

    def exceeded(self, failed: bool, log_tail: str) -> str | None:
        """Which limit the kernel enforced on the tree, if any. A failed run whose log ends in a
        write refused for its size hit RLIMIT_FSIZE; without a cgroup, one whose log ends in an
        allocation failure hit RLIMIT_AS."""
        if failed and self.limits.disk_mb and FILE_TOO_LARGE.search(log_tail):
            return f"{disk_reason(self.limits)} ({log_tail})"
        if not self.groups:
            if failed and self.limits.memory_mb and ALLOCATION_FAILED.search(log_tail):
                return f"{memory_reason(self.limits)} ({log_tail})"
            return None
        if self._event("oom_kill", ("v2", "memory.events"), ("memory", "memory.oom_control")):
            return memory_reason(self.limits)
        if self._event("max", ("v2", "pids.events"), ("pids", "pids.events")):
            return process_reason(self.limits)
        return None

    def _event(self, key: str, *places: tuple[str, str]) -> bool:
        """Does a counter named key in one of the (group, file) places exceed 0?"""
        for group, filename in places:
            if group not in self.groups:
                continue
            try:
                text = (self.groups[group] / filename).read_text()
            except OSError:
                continue
            for line in text.splitlines():
                name, _, count = line.partition(" ")
                if name == key and count.strip().isdigit() and int(count) > 0:
                    return True
        return False

    def close(self) -> None:
        """Remove the cgroups (their processes are dead by now; retry briefly while they go)."""
        for folder in self.groups.values():
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self.groups = {}
