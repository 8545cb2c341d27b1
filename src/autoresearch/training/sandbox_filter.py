"""The seccomp filter every sandboxed process runs under, compiled with libseccomp (through
pyseccomp, a ctypes binding with the API of libseccomp's own Python module) and handed to
bubblewrap as BPF (`--seccomp FD`), which loads it right before it starts the sandboxed command.

It refuses what a process needs only to break out of the sandbox or to reach what the kernel
keeps outside the file system: (un)mounting and the new mount API, new namespaces, the kernel
keyrings, tracing other processes, BPF and perf, kernel modules and kexec. Everything else is
allowed, so training and CLI agents run as they would outside. A refused call fails with EPERM
(clone3 with ENOSYS, so that the C library falls back to clone, whose flags can be checked).
"""

from __future__ import annotations

import atexit
import errno
import functools
import os
import shutil
import tempfile
from pathlib import Path

REFUSED = (
    "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr",
    "unshare", "setns",
    "keyctl", "add_key", "request_key",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "bpf", "perf_event_open", "userfaultfd", "open_by_handle_at", "name_to_handle_at",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "syslog", "acct", "quotactl", "iopl", "ioperm",
)  # fmt: skip
# clone's flags that make a namespace (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
# NEWNET, NEWTIME): a fork or a thread never sets them.
NAMESPACE_FLAGS = (
    0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x80,
)  # fmt: skip
FILTER_NAME = "seccomp.bpf"
INSTALL_HINT = "install libseccomp (Debian/Ubuntu: apt-get install libseccomp2)"


class FilterError(Exception):
    """The filter cannot be built here: one line."""


def _compile(path: Path) -> None:
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError, RuntimeError) as err:
        raise FilterError(f"libseccomp cannot be loaded ({err}); {INSTALL_HINT}") from None
    refuse = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)  # a foreign architecture is killed
    for name in REFUSED:
        try:
            rules.add_rule(refuse, name)
        except (ValueError, RuntimeError, OSError):
            continue  # no such call on this architecture
    for flag in NAMESPACE_FLAGS:
        rules.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    with open(path, "wb") as out:
        rules.export_bpf(out)


@functools.cache
def filter_file() -> Path:
    """The compiled filter, written once per process into a folder only this user can read
    (no sandbox shows it); FilterError when libseccomp is missing."""
    folder = Path(tempfile.mkdtemp(prefix="autoresearch-seccomp-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / FILTER_NAME
    _compile(path)
    os.chmod(path, 0o400)
    return path


def wrap(bwrap_args: list[str], fd: int = 9) -> list[str]:
    """bwrap_args with the filter loaded from a descriptor that a shell opens fresh for this
    launch (bubblewrap reads the filter from a descriptor, to its end; a shared one would be
    read once), so callers run a plain argv."""
    return ["/bin/sh", "-c", f'exec "$@" {fd}<"$0"', str(filter_file()), bwrap_args[0],
            "--seccomp", str(fd), *bwrap_args[1:]]  # fmt: skip
