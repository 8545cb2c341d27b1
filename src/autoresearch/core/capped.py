"""The start and the end of a stream too long to keep (a training log, an agent's output)."""

from __future__ import annotations


class HeadTail:
    """Keeps the first `head` bytes of a stream and its last `tail`; what lies between is
    dropped and counted, so memory stays bounded however much the stream carries."""

    def __init__(self, head: int, tail: int):
        self.head_left, self.tail_cap = max(0, head), tail
        self.tail, self.dropped = bytearray(), 0

    def add(self, chunk: bytes) -> bytes:
        """Takes the next chunk; returns its part that belongs to the head (for the caller to
        write or keep), holding the rest as the tail so far."""
        part = chunk[: self.head_left]
        self.head_left -= len(part)
        self.tail += chunk[len(part) :]
        excess = len(self.tail) - self.tail_cap
        if excess > 0:
            self.dropped += excess
            del self.tail[:excess]
        return part

    def end(self, what: str) -> bytes:
        """What follows the head: a line saying how much was dropped (if any), then the tail."""
        marker = f"\n[... {self.dropped} bytes of output dropped: {what} capped ...]\n"
        return (marker.encode() if self.dropped else b"") + bytes(self.tail)
