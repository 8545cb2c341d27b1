"""What watching a training tree's memory costs the runner (runner/memory.py).

Trains two trees for --seconds each through run_training, with no limits: one process holding
600 MB, and 9 processes sharing 600 MB copy-on-write (a parent and 8 forked children that read
it, as DataLoader workers do). Prints the runner's own CPU time as a share of a core, and the
peak memory it measured (PSS: the shared array once). Then times one reading of the 9 processes'
RSS and of their PSS (/proc/PID/smaps_rollup), what the runner reads at each poll and at most
once a second.

    python benchmarks/pss_cost.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from autoresearch.training.local import run_training
from autoresearch.training.memory import pss

ONE = """
import time, numpy as np
block = np.ones(600 * 2**20 // 8)
time.sleep({seconds})
"""
SHARED = """
import os, time, numpy as np
shared = np.ones(600 * 2**20 // 8)
children = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        float(shared.sum())
        time.sleep({seconds})
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""


def watched(body: str) -> tuple[float, float]:
    """(the runner's CPU as a share of a core, the peak memory it measured in MB)."""
    folder = Path(tempfile.mkdtemp())
    (folder / "train.py").write_text(body)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.time()
    result = run_training(sys.executable, folder, 600, 5, folder / "train.log")
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu / (time.time() - started), result.peak_memory_mb


def reading_ms() -> tuple[float, float]:
    """(one RSS reading, one PSS reading) of 9 processes sharing 600 MB, in ms."""
    shared = np.ones(600 * 2**20 // 8)
    children = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            float(shared.sum())
            time.sleep(600)
            os._exit(0)
        children.append(pid)
    try:
        time.sleep(3)
        tree = [psutil.Process(), *(psutil.Process(pid) for pid in children)]
        timings = []
        for read in (lambda p: p.memory_info().rss, pss):
            started = time.perf_counter()
            for _ in range(20):
                sum(read(p) for p in tree)
            timings.append((time.perf_counter() - started) / 20 * 1000)
        return timings[0], timings[1]
    finally:
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    for name, body in (("1 process, 600 MB", ONE), ("9 processes sharing 600 MB", SHARED)):
        share, peak = watched(body.format(seconds=args.seconds))
        print(f"{name}: the runner used {share:.1%} of a core; peak memory {peak:.0f} MB")
    rss_ms, pss_ms = reading_ms()
    print(f"one reading of 9 processes: RSS {rss_ms:.2f} ms, PSS {pss_ms:.1f} ms")


if __name__ == "__main__":
    main()
