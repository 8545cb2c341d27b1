"""Run a short command we do not trust to behave (an interpreter, a sandboxed one): its own
process group, output to files (a child that outlives it cannot hold a pipe open), and
whatever it started is killed when it ends or times out."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

OUTPUT_CAP = 100_000


def run_quietly(
    argv: list[str], timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[int | None, str, str]:
    """(exit code, or None after the timeout; stdout; the tail of stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        out.seek(0)
        err.seek(max(0, err.seek(0, os.SEEK_END) - OUTPUT_CAP))  # its last lines say why
        return (
            status,
            out.read(OUTPUT_CAP).decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
