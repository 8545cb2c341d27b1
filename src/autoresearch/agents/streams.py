"""A CLI agent's prompt written to its stdin and its stdout and stderr read while it runs, each
capped to its start and its end: an agent that prints 400 MB costs the orchestrator a few MB
(subprocess.communicate would hold all of it, and more again as text)."""

from __future__ import annotations

import os
import selectors
import subprocess
import time

from autoresearch.core.capped import HeadTail

OUTPUT_HEAD = 1_000_000  # bytes kept from the start of each stream
# ... and from its end, where the CLIs put what is parsed: claude's JSON result (one object, or
# with --verbose an array of every message), codex's last JSONL events.
OUTPUT_TAIL = 16_000_000
CHUNK = 65_536


class Pipes:
    """The pipes of a process started with stdin, stdout and stderr all PIPE."""

    def __init__(self, proc: subprocess.Popen, prompt: bytes):
        self.selector = selectors.DefaultSelector()
        self.kept = {
            s: (bytearray(), HeadTail(OUTPUT_HEAD, OUTPUT_TAIL)) for s in (proc.stdout, proc.stderr)
        }
        for stream in self.kept:
            self.selector.register(stream, selectors.EVENT_READ)
        self.stdin, self.prompt, self.sent = proc.stdin, memoryview(prompt), 0
        if prompt:
            os.set_blocking(self.stdin.fileno(), False)
            self.selector.register(self.stdin, selectors.EVENT_WRITE)
        else:
            self.stdin.close()

    def pump(self, until: float) -> bool:
        """Writes the prompt and reads the output until both outputs are closed (True) or until
        the monotonic time `until` (False)."""
        while any(key.fileobj is not self.stdin for key in self.selector.get_map().values()):
            left = until - time.monotonic()
            if left <= 0:
                return False
            for key, _ in self.selector.select(left):
                if key.fileobj is self.stdin:
                    self._write()
                else:
                    self._read(key.fileobj)
        return True

    def text(self, stream) -> str:
        """What was kept of stream: its start, a line saying how much was dropped, its end."""
        head, rest = self.kept[stream]
        return (bytes(head) + rest.end("agent output")).decode(errors="replace")

    def dropped(self, stream) -> int:
        """The bytes of stream not kept."""
        return self.kept[stream][1].dropped

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            self.selector.unregister(key.fileobj)
        for stream in (self.stdin, *self.kept):
            stream.close()
        self.selector.close()

    def _write(self) -> None:
        try:
            self.sent += os.write(self.stdin.fileno(), self.prompt[self.sent : self.sent + CHUNK])
        except BlockingIOError:
            return
        except BrokenPipeError:  # it stopped reading: the rest of the prompt is not needed
            self.sent = len(self.prompt)
        if self.sent >= len(self.prompt):
            self.selector.unregister(self.stdin)
            self.stdin.close()

    def _read(self, stream) -> None:
        chunk = os.read(stream.fileno(), CHUNK)
        if not chunk:
            self.selector.unregister(stream)
            stream.close()
            return
        head, rest = self.kept[stream]
        head += rest.add(chunk)
