"""A training's output, copied from its pipe to train.log: capped, and never in its way."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

TAIL_BYTES = 16_384  # the end of the output, always kept


class CappedLog:
    """Copies a pipe to a file: the first bytes up to the cap, then only the tail is kept. A
    write that fails (a full disk) ends the writing, never the reading: the pipe is drained to
    its end, so train.py never blocks on it, and the tail stays here for repair()."""

    def __init__(self, stream, path: Path, cap: int):
        self.stream, self.path, self.head_cap = stream, path, max(0, cap - TAIL_BYTES)
        self.read, self.written, self.tail = 0, 0, bytearray()
        self.error: str | None = None  # why the log could not be written
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        out = self._write(None, "wb", b"")
        for chunk in iter(lambda: self.stream.read1(65536), b""):
            self.read += len(chunk)
            if out is not None and self.written < self.head_cap:
                part = chunk[: self.head_cap - self.written]
                out = self._write(out, "", part)
                if out is not None:
                    self.written += len(part)
                    chunk = chunk[len(part) :]
            self.tail += chunk
            del self.tail[: max(0, len(self.tail) - TAIL_BYTES)]
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
        dropped = self.read - self.written - len(self.tail)
        note = ""
        if self.error:
            note = f"\n[... {dropped} bytes of output lost ({self.error}) ...]\n"
        elif dropped:
            note = f"\n[... {dropped} bytes of output dropped: log capped ...]\n"
        out = self._write(out, "", note.encode() + self.tail)
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
        lines = [line.strip() for line in self.tail.decode("utf-8", "replace").splitlines()]
        return next((line for line in reversed(lines) if line), "")
