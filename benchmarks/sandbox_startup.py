"""The sandbox's start-up cost per experiment (target: under 100 ms).

Times a trivial command (`true`, and the training interpreter doing nothing) started plainly,
inside the deny-list sandbox of the release before (`--ro-bind / /`, for comparison), and inside
the training sandbox exactly as an experiment gets it (the allow-list view, the user namespace or
separate uid, no capabilities, the seccomp filter), and prints the medians and the differences.
Also times compiling the seccomp filter (once per process) and building the sandbox's command
line (once per experiment).

    python benchmarks/sandbox_startup.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoresearch.core import config
from autoresearch.store import workspace
from autoresearch.training import sandbox, sandbox_filter, task
from autoresearch.training.experiment import Trainer


def median_ms(argv: list[str], cwd: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    problem = sandbox.probe()
    if problem:
        sys.exit(f"no sandbox here: {problem}")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        workspace.init(ws, "fashion-mnist", sys.executable)
        cfg = config.load(ws, {"sandbox": "bwrap"})
        task.ensure_data(ws, cfg)
        trainer = Trainer.prepare(ws, cfg, Path(tmp) / "exp")
        workdir = workspace.copy_for_experiment(ws, Path(tmp) / "exp" / "0001")
        started = time.perf_counter()
        sandbox_filter._compile(Path(tmp) / "filter.bpf")
        print(f"compiling the seccomp filter:     {(time.perf_counter() - started) * 1000:7.1f} ms")
        started = time.perf_counter()
        wrap = trainer.wrap(workdir)
        print(f"building the command line:        {(time.perf_counter() - started) * 1000:7.1f} ms")
        print(f"boundary: {sandbox.describe()}")
        old = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
               "--unshare-net", "--tmpfs", "/tmp", "--bind", str(workdir), str(workdir), "--"]  # fmt: skip
        for label, argv in [("true", ["true"]), ("python -c pass", [sys.executable, "-c", "pass"])]:
            plain = median_ms(argv, workdir, args.repeats)
            deny = median_ms([*old, *argv], workdir, args.repeats)
            boxed = median_ms(wrap(argv), workdir, args.repeats)
            print(
                f"{label:15s} plain {plain:6.1f} ms  deny-list {deny:6.1f} ms  allow-list "
                f"{boxed:6.1f} ms  added {boxed - plain:+6.1f} ms (median of {args.repeats})"
            )


if __name__ == "__main__":
    main()
