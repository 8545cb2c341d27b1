"""A training's output, copied from its pipe to train.log: capped, and never in its way."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from autoresearch.core.capped import HeadTail

TAIL_BYTES = 16_384  # the end of the output, always kept


class CappedLog:
    """Copies a pipe to a file: the first bytes up to the cap, then only the tail is kept. A
    write that fails (a full disk) ends the writing, never the reading: the pipe is drained to
    its end, so train.py never blocks on it, and the tail stays here for repair()."""

    def __init__(self, stream, path: Path, cap: int):
        self.stream, self.path = stream, path
        self.kept = HeadTail(max(0, cap - TAIL_BYTES), TAIL_BYTES)
        self.lost = 0  # head bytes that could not be written
        self.error: str | None = None  # why the log could not be written
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        out = self._write(None, "wb", b"")
        for chunk in iter(lambda: self.stream.read1(65536), b""):
            head = self.kept.add(chunk)
            if head and out is not None:
                out = self._write(out, "", head)
            if head and out is None:
                self.lost += len(head)
                self.kept.head_left = 0  # what comes next goes to the tail kept here
        if out is not None:
            self._end(out)

    def _write(self, out, mode: str, data: bytes):
        """out (or path opened in mode) with data written and flushed; None once one failed."""
        try:
            out = out if out is not None else open(self.path, mode)  # noqa: SIM115 - _end closes
            out.write(data)
            out.flush()
            return out
        except OSError as err:
            self.error = self.error or err.strerror or str(err)
            if out is not None:
                with contextlib.suppress(OSError):
                    out.close()
            return None

    def _end(self, out) -> None:
        """After the head: what was dropped (the cap, or a failed write), then the tail."""
        if self.error:
            lost = self.kept.dropped + self.lost
            ending = f"\n[... {lost} bytes of output lost ({self.error}) ...]\n".encode()
            ending += bytes(self.kept.tail)
        else:
            ending = self.kept.end("log")
        out = self._write(out, "", ending)
        if out is not None:
            with contextlib.suppress(OSError):
                out.close()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def repair(self) -> str | None:
        """After a failed write, once the pipe has ended (and space may have been freed): a note
        of what was lost and the tail, appended. Why the log was cut short, with the output's
        last line; None when it was written whole."""
        if self.error is None:
            return None
        if not self.thread.is_alive() and (out := self._write(None, "ab", b"")) is not None:
            self._end(out)
        ended = f"; its output ended: {self.ending()}" if self.ending() else ""
        return f"train.log could not be written ({self.error}){ended}"

    def ending(self) -> str:
        """The last non-empty line of the output (kept here, whatever reached the file)."""
        lines = [line.strip() for line in self.kept.tail.decode("utf-8", "replace").splitlines()]
        return next((line for line in reversed(lines) if line), "")
