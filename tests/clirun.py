"""Driving the real CLI from tests: `autoresearch run` in the background, its status, its
processes; finished runs written the way the loop writes them; train.py scripts of known score."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import psutil

from autoresearch.core import config
from autoresearch.core.records import Iteration
from autoresearch.store.gitrepo import ExperimentRepo
from autoresearch.store.layout import runs_dir
from autoresearch.store.store import Store
from autoresearch.training.experiment import experiments_root

AUTORESEARCH = str(Path(sys.executable).parent / "autoresearch")


def train_script(correct: int, cls: int, wait_for: Path | None = None) -> str:
    """A train.py; with wait_for, the first run hangs (until that file exists, else for 60 s)."""
    lines = ["import os, time", "import numpy as np", "import prepare"]
    if wait_for is not None:
        flag = str(wait_for) + ".started"
        lines += [
            f"if not os.path.exists({flag!r}):",
            f"    open({flag!r}, 'w').close()",
            "    end = time.time() + 60",
            f"    while not os.path.exists({str(wait_for)!r}) and time.time() < end:",
            "        time.sleep(0.05)",
            "time.sleep(0.1)",
        ]
    lines += [
        f"preds = np.full(10000, {cls}, dtype=np.int64)",
        f"preds[:{correct}] = np.load('known.npy')[:{correct}]",
        "prepare.save_predictions(preds)",
    ]
    return "\n".join(lines) + "\n"


# Starts a command with SIGHUP at its default, as a terminal does, even where the tests themselves
# run under nohup (whose ignored SIGHUP `autoresearch run` keeps ignoring, as it should).
HANGUP_HEEDED = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


class Cli:
    """`autoresearch run` in the background, started as from a terminal, its stderr read line by
    line."""

    running: list[Cli] = []

    def __init__(self, ws: Path, *args: str):
        self.proc = subprocess.Popen(
            [*HANGUP_HEEDED, AUTORESEARCH, "run", str(ws), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        Cli.running.append(self)

    def _pump(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line {pattern!r} in {timeout}s: {self.seen}") from None
            if line is None:
                raise AssertionError(f"exited before a line {pattern!r}: {self.seen}")
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        while (line := self.lines.get(timeout=5)) is not None:
            self.seen.append(line)
        return code

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.proc.send_signal(sig)


def status(ws: Path) -> dict:
    done = subprocess.run(
        [AUTORESEARCH, "status", str(ws), "--json"], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def run_dir(ws: Path) -> Path:
    (found,) = (ws / ".autoresearch" / "runs").iterdir()
    return found


def inflight(ws: Path) -> dict | None:
    """The training process the store says is under way (the first, with its process known)."""
    with closing(sqlite3.connect(run_dir(ws) / "run.db")) as db:
        row = db.execute(
            "SELECT iteration, pid FROM training WHERE pid IS NOT NULL ORDER BY 1, 2"
        ).fetchone()
    return {"iteration": row[0], "pid": row[1]} if row else None


def wait_until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def processes_in(folder: Path) -> list[psutil.Process]:
    """Live processes working inside folder or one of its runs' experiment directories (training
    and agents do)."""
    state = folder / ".autoresearch"
    runs = [*(state / "runs").glob("*"), *(state / "baselines").glob("*")]
    roots = [str(folder.resolve()), *(str(experiments_root(run)) for run in runs)]
    found = []
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info["cwd"]
        inside = cwd and any(cwd == root or cwd.startswith(root + os.sep) for root in roots)
        if inside and alive(proc.pid):
            found.append(proc)
    return found


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([AUTORESEARCH, *args], capture_output=True, text=True, timeout=300)


def make_run(ws: Path, iterations: int = 3, prompt_size: int = 100) -> Store:
    """A finished run with a git commit per iteration, written the way the loop writes it."""
    cfg = config.load(ws)
    store = Store.create(runs_dir(ws) / "20260101-000000", cfg.model_dump())
    repo = ExperimentRepo(store.dir / "repo")
    parent = None
    for n in range(iterations):
        it = Iteration(
            iteration=n,
            status="keep" if n else "baseline",
            value=0.5 + n / 100,
            explanation=f"idea {n}",
            train_py=f"print({n})\n",
            prompt="p" * prompt_size,
        )
        it.commit = parent = repo.commit({"train.py": it.train_py}, it.explanation, parent)
        repo.set_ref("refs/heads/best", it.commit)
        store.record(it)
    store.set(state="finished", stop_reason=f"{iterations - 1} iterations done")
    return store


def snapshot_files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str, after=0) -> None:
    """Exit 1 and one error line (after `after` lines of progress), holding every word."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == after + 1 and lines[-1].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[-1]
