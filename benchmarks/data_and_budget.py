"""Data load time (first and warm) and budget adherence (self-terminating vs killed train.py).

python benchmarks/data_and_budget.py [--budget 20] [--grace 5] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workspaces import fresh_workspace

from autoresearch.core import config
from autoresearch.store import workspace
from autoresearch.training import task
from autoresearch.training.experiment import run_experiment

LOAD = "import time, prepare; t = time.perf_counter(); prepare.load_data(); print(time.perf_counter() - t)"


def load_seconds(ws: Path) -> float:
    out = subprocess.run([sys.executable, "-c", LOAD], cwd=ws, capture_output=True, text=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=20)
    parser.add_argument("--grace", type=float, default=5)
    parser.add_argument("--data-dir", default=os.environ.get("AUTORESEARCH_DATA_DIR"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = fresh_workspace(Path(tmp), args.data_dir)
        cfg = config.load(ws, {"budget_secs": args.budget, "grace_secs": args.grace})
        started = time.perf_counter()
        task.ensure_data(ws, cfg)
        print(f"first load (verify md5 + convert to cache): {time.perf_counter() - started:.2f} s")
        warm = sorted(load_seconds(ws) for _ in range(5))
        print(f"warm load_data() in train.py, median of 5:   {warm[2]:.3f} s")
        print(f"budget adherence (budget {args.budget:g} s, grace {args.grace:g} s):")
        for label, body in [
            ("self-terminating template train.py", None),
            ("train.py that never stops", "import time\nwhile True:\n    time.sleep(1)\n"),
        ]:
            work = workspace.copy_for_experiment(ws, Path(tmp) / "exp", body)
            outcome = run_experiment(ws, cfg, work, Path(tmp) / "out")
            over = outcome.train_seconds - args.budget
            print(
                f"  {label:36s} ended {over:+6.2f} s past the budget "
                f"({outcome.status}, value {outcome.value})"
            )


if __name__ == "__main__":
    main()
