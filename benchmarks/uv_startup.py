"""What `command = ["uv", "run", "train.py"]` costs per experiment over plain `python train.py`.

Sets up the workspace in karpathy/autoresearch's shape that the tests use (tests/fixtures/
karpathy_shape: `uv sync`, `uv run prepare.py`, `autoresearch init --adopt`) in a temporary home,
then times `python -c pass` run by the checkout's interpreter and by `uv run` (no sync, offline,
as an experiment gets it), each plainly and inside the training sandbox, and prints the medians.

    python benchmarks/uv_startup.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoresearch.cli.adopt import adopt
from autoresearch.core import config
from autoresearch.store.workspace import copy_for_experiment
from autoresearch.training import sandbox, task
from autoresearch.training.experiment import Trainer
from autoresearch.training.train_command import probe_argv

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "karpathy_shape"
UV = str(Path(sys.executable).parent / "uv")


def median_ms(argv: list[str], cwd: Path, env: dict[str, str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HOME"] = str(Path(tmp) / "home")
        os.environ["UV_PYTHON_DOWNLOADS"] = "never"
        os.environ["PATH"] = f"{Path(UV).parent}{os.pathsep}{os.environ['PATH']}"
        ws = Path(tmp) / "autoresearch"
        shutil.copytree(FIXTURE, ws)
        for step in (["sync", "--offline", "--python", sys.executable], ["run", "prepare.py"]):
            subprocess.run([UV, *step], cwd=ws, check=True, capture_output=True)
        adopt(ws)
        mode = "bwrap" if sandbox.probe() is None else "none"
        cfg = config.load(ws, {"sandbox": mode})
        task.ensure_data(ws, cfg)
        trainer = Trainer.prepare(ws, cfg, Path(tmp) / "exp")
        workdir = copy_for_experiment(ws, Path(tmp) / "exp" / "0001")
        trainer.prepare_home(workdir)
        env = trainer.env(workdir)
        wrap = trainer.wrap(workdir) or (lambda argv: argv)
        runs = [
            ("python -c pass", [trainer.python, "-c", "pass"]),
            ("uv run python -c pass", probe_argv(trainer.command, "pass")),
        ]
        for label, argv in runs:
            plain = median_ms(argv, workdir, env, args.repeats)
            boxed = median_ms(wrap(argv), workdir, env, args.repeats)
            print(
                f"{label:22s} plain {plain:7.1f} ms   {mode} {boxed:7.1f} ms "
                f"(median of {args.repeats})"
            )


if __name__ == "__main__":
    main()
