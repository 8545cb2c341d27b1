"""The memory limit counts what a training tree really uses. Pages that forked workers share
copy-on-write (a PyTorch DataLoader's) count once, as the kernel counts them, not once per
worker; memory that the tree really allocates past max_memory_mb still ends it with the memory
reason. Both ways of enforcing: a kernel cgroup (root here) and the fallback without one
(rlimits and the runner's watchdog)."""

from __future__ import annotations

import re

import pytest
from conftest import train
from sandboxing import SANDBOXED, without_cgroups

pytestmark = SANDBOXED
LIMIT_MB = 2000
# 600 MB written by the parent, then read by 8 forked children: each child's RSS holds all of it.
SHARED = """
    import os, time, numpy as np, prepare
    shared = np.ones(600 * 2**20 // 8)
    ready_r, ready_w = os.pipe()
    children = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            total = float(shared.sum())  # reads every page, writes none
            os.write(ready_w, b"x")
            time.sleep(3)
            os._exit(0)
        children.append(pid)
    for _ in children:
        os.read(ready_r, 1)
    def rss_mb(pid):
        status = open(f"/proc/{pid}/status").read()
        return int(re.search(r"VmRSS:\\s+(\\d+)", status).group(1)) / 1024
    print(f"rss of the tree: {sum(rss_mb(p) for p in [os.getpid(), *children]):.0f} MB", flush=True)
    for pid in children:
        os.waitpid(pid, 0)
    prepare.save_predictions(np.zeros(10000, dtype=np.int64))
""".replace("import os,", "import re, os,")
# 8 forked children that each write 300 MB of their own: 2,400 MB in all, each under the limit.
PRIVATE = """
    import os, time, numpy as np, prepare
    children = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            own = np.ones(300 * 2**20 // 8)
            time.sleep(10)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    prepare.save_predictions(np.zeros(10000, dtype=np.int64))
"""


@pytest.mark.parametrize("backend", ["cgroup", "fallback"])
@pytest.mark.parametrize("mode", ["none", "bwrap"])
def test_pages_shared_by_forked_workers_count_once(ws, mode, backend, monkeypatch):
    without_cgroups(monkeypatch, backend)
    outcome, _ = train(ws, SHARED, sandbox=mode, max_memory_mb=LIMIT_MB)
    assert outcome.status == "ok", outcome.reason
    log = outcome.log_path.read_text()
    summed = float(re.search(r"rss of the tree: (\d+) MB", log).group(1))
    assert summed > 8 * 600 > LIMIT_MB  # what adding up RSS makes of it
    assert 600 < outcome.peak_memory_mb < LIMIT_MB  # the array once, and the interpreters


@pytest.mark.parametrize("backend", ["cgroup", "fallback"])
def test_memory_the_workers_really_allocate_is_still_limited(ws, backend, monkeypatch):
    without_cgroups(monkeypatch, backend)
    outcome, _ = train(ws, PRIVATE, sandbox="bwrap", max_memory_mb=LIMIT_MB)
    assert outcome.status == "crash"
    assert outcome.reason.startswith("memory limit reached") and str(LIMIT_MB) in outcome.reason
