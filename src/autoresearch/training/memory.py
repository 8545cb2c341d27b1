"""How much memory a training tree uses: its proportional set size (PSS), in which a page that n
processes share counts 1/n in each. Summing RSS instead counts a page once per process: the
copy-on-write data of 10 forked DataLoader workers looks 10 times its size.

PSS costs a walk of each process's page tables (/proc/PID/smaps_rollup): about 2 ms per process
holding 600 MB, 20 to 60 ms for 9 of them sharing it, where their RSS costs 0.1 ms; at every
0.1 s poll that would take a fifth of a core or more. So RSS, an upper bound of PSS, is read at
every poll; PSS when RSS has grown by SLACK since the last reading, and every PSS_SECS, never
spending more than SHARE of the time reading it. The runner's own CPU while 9 such processes
train went from 2.8% of a core (RSS only) to 4.3-4.9% (benchmarks/pss_cost.py).
"""

from __future__ import annotations

import contextlib
import time

import psutil

SLACK = 16 * 2**20  # bytes of RSS growth that call for a fresh PSS reading
PSS_SECS = 1.0  # a fresh reading at least this often (memory shared or freed since)
SHARE = 0.05  # of a core at most spent reading PSS: the next reading waits 20 times its CPU time


def pss(p: psutil.Process) -> int:
    """A process's PSS in bytes; its RSS where the kernel has no smaps_rollup (before 4.14)."""
    try:
        with open(f"/proc/{p.pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return p.memory_info().rss


class TreeMemory:
    """The memory of a process tree, measured at each poll of the runner; the peak of it."""

    def __init__(self) -> None:
        self.pss = 0  # bytes, at the last reading
        self.peak = 0
        self._rss_then = 0
        self._soonest = self._next = 0.0  # a reading for growth, a reading in any case

    def measure(self, tree: list[psutil.Process]) -> int:
        """The tree's memory now in bytes: its PSS, or its RSS where that is lower (a reading
        from before some of it was freed)."""
        rss = 0
        for p in tree:
            with contextlib.suppress(psutil.Error):
                rss += p.memory_info().rss
        now = time.monotonic()
        if now >= self._next or (rss > self._rss_then + SLACK and now >= self._soonest):
            cpu, total = time.thread_time(), 0
            for p in tree:
                with contextlib.suppress(psutil.Error):
                    total += pss(p)
            wait = (time.thread_time() - cpu) / SHARE  # CPU spent, not time waited for locks
            self._soonest, self._next = now + wait, now + max(PSS_SECS, wait)
            self.pss, self._rss_then = total, rss
            self.peak = max(self.peak, total)
        return min(self.pss, rss)
