"""What an experiment leaves behind is untrusted: read only regular files, never through a link,
never more than a cap, and check a .npy header before any data is loaded. A .npy file is taken
only when its size is exactly what its header describes: what is kept is what is scored (np.load
would read the first array and ignore whatever follows it, padding or a second array)."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import numpy as np

MAX_PREDICTIONS_BYTES = 256 * 2**20
CHUNK = 2**20


class OutputError(Exception):
    """An experiment's output file is not one the orchestrator will read."""


def _open_regular(path: Path, cap: int) -> tuple[int, int]:
    """(fd, size) of path, opened without following a link or blocking on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as err:
        kind = "a symbolic link" if path.is_symlink() else f"unreadable ({err.strerror})"
        raise OutputError(f"{path.name} is {kind}; only a regular file is read") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OutputError(f"{path.name} is not a regular file; only a regular file is read")
    if info.st_size > cap:
        os.close(fd)
        raise OutputError(f"{path.name} is {info.st_size:,} bytes, over the {cap:,}-byte cap")
    return fd, info.st_size


def _check_npy_header(fd: int, size: int, name: str) -> None:
    with os.fdopen(os.dup(fd), "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            fmt = np.lib.format
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _fortran, dtype = read(f)
        except (ValueError, EOFError, SyntaxError, TypeError) as err:
            raise OutputError(f"{name} is not a .npy array: {err}") from None
        if dtype.hasobject:
            raise OutputError(f"{name} holds Python objects; save a numeric array")
        needed = f.tell() + math.prod(shape) * dtype.itemsize
    if needed > size:
        raise OutputError(
            f"{name} is truncated: its header promises {needed:,} bytes, has {size:,}"
        )
    if needed < size:  # np.save writes nothing after the array: padding, or a second array
        raise OutputError(
            f"{name} has {size - needed:,} bytes after the array its header describes "
            f"({needed:,} bytes); save the array alone"
        )


def collect_predictions(src: Path, dest: Path, cap: int = MAX_PREDICTIONS_BYTES) -> None:
    """Copy the experiment's predictions into dest after checking them; a missing file is left
    missing (the task's score() says so). Raises OutputError with a one-line reason."""
    try:
        fd, size = _open_regular(src, cap)
    except FileNotFoundError:
        return
    try:
        _check_npy_header(fd, size, src.name)
        os.lseek(fd, 0, os.SEEK_SET)
        with open(dest, "wb") as out:
            copied = 0
            while copied < size and (chunk := os.read(fd, min(CHUNK, size - copied))):
                out.write(chunk)
                copied += len(chunk)
    finally:
        os.close(fd)
