"""Flip rate: the same pair of train.py files decided many times, with and without confirmation.

python benchmarks/flip_rate.py [--decisions 8] [--budget 2] [--change MOMENTUM=0.0]

The incumbent is the Fashion-MNIST template, the candidate the template with one line changed:
by default to the value it already has (a no-op change, whose every keep is a false one; the
majority verdict is `discard` where confirmation works), or e.g. NORMALIZE=True (input
normalization, the change the seeds' own run discarded once and kept later). Each
decision trains both with fresh seeds, on real data, exactly as the loop would: without
confirmation one run of each decides (noise_runs = 1, confirm_runs = 0); with it, the incumbent
has its noise runs and a candidate whose first run would be kept is trained again (the defaults).
Both policies decide on the same trainings (the one-run policy on the first of each), so their
flip rates differ only by the policy. Printed: each policy's keeps, the share of decisions that
disagree with its majority verdict, and the training time it spent.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from autoresearch.core import config
from autoresearch.core.decide import candidate, decide
from autoresearch.core.noise import estimate
from autoresearch.core.records import BASELINE, KEEP, Iteration, TrainingRun
from autoresearch.loop.trials import seed_of
from autoresearch.store import workspace
from autoresearch.training import task
from autoresearch.training.experiment import Trainer, experiments_root


def trained(trainer: Trainer, ws: Path, code: str, n: int, k: int, out: Path) -> TrainingRun:
    work = workspace.copy_for_experiment(ws, out / f"work-{n}-{k}", code)
    return trainer.run(work, out / f"run-{n}-{k}", seed_of(n, k))


def verdict(cfg, base_runs, cand_runs) -> str:
    base = Iteration(0, BASELINE, runs=base_runs)
    base.value = sum(r.value for r in base_runs) / len(base_runs)
    cand = Iteration(1, "discard", runs=cand_runs)
    return decide(cfg, cand_runs, base, estimate([base, cand]))[0]


def report(name: str, verdicts: list[str], seconds: float) -> None:
    keeps = verdicts.count(KEEP)
    minority = min(keeps, len(verdicts) - keeps)
    print(
        f"  {name:22s} keeps {keeps}/{len(verdicts)}; flip rate (decisions against the "
        f"majority) {minority / len(verdicts):.0%}; training {seconds:.0f} s "
        f"({seconds / len(verdicts):.1f} s per decision)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=8)
    parser.add_argument("--budget", type=float, default=2)
    parser.add_argument("--grace", type=float, default=30)
    parser.add_argument("--change", default="MOMENTUM=0.0", help="NAME=VALUE in train.py")
    parser.add_argument("--data-dir", default=os.environ.get("AUTORESEARCH_DATA_DIR"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("AUTORESEARCH_CACHE_DIR", str(Path(tmp) / "cache"))
        if args.data_dir:
            os.environ["AUTORESEARCH_DATA_DIR"] = args.data_dir
        ws = Path(tmp) / "ws"
        workspace.init(ws, "fashion-mnist", sys.executable)
        cfg = config.load(ws, {"budget_secs": args.budget, "grace_secs": args.grace})
        once = config.with_flags(cfg, {"loop.noise_runs": 1, "loop.confirm_runs": 0})
        task.ensure_data(ws, cfg)
        trainer = Trainer.prepare(ws, cfg, experiments_root(Path(tmp) / "bench"))
        old = (ws / "train.py").read_text()
        name, value = args.change.split("=", 1)
        line = next(x for x in old.splitlines() if x.startswith(f"{name} = "))
        new = old.replace(line, f"{name} = {value}  # changed")
        print(f"incumbent: the template; candidate: {name} = {value}; budget {args.budget:g} s")
        out = Path(tmp) / "out"
        results: dict[str, list[str]] = {"without confirmation": [], "with confirmation": []}
        seconds = dict.fromkeys(results, 0.0)
        started = time.time()
        for d in range(args.decisions):
            base = [trained(trainer, ws, old, 2 * d, k, out) for k in range(cfg.loop.noise_runs)]
            cand = [trained(trainer, ws, new, 2 * d + 1, 0, out)]
            results["without confirmation"].append(verdict(once, base[:1], cand))
            seconds["without confirmation"] += base[0].train_seconds + cand[0].train_seconds
            base_it = Iteration(0, BASELINE, value=sum(r.value for r in base) / len(base))
            if candidate(cfg, cand[0], base_it):
                cand += [
                    trained(trainer, ws, new, 2 * d + 1, k, out)
                    for k in range(1, 1 + cfg.loop.confirm_runs)
                ]
            results["with confirmation"].append(verdict(cfg, base, cand))
            seconds["with confirmation"] += sum(r.train_seconds for r in base + cand)
            shown = ", ".join(f"{r.value:.4f}" for r in cand)
            print(
                f"decision {d + 1}: incumbent {[round(r.value, 4) for r in base]}, candidate "
                f"[{shown}] -> {results['without confirmation'][-1]} / "
                f"{results['with confirmation'][-1]}",
                flush=True,
            )
        print(f"{args.decisions} decisions in {(time.time() - started) / 60:.1f} min:")
        for policy, verdicts in results.items():
            report(policy, verdicts, seconds[policy])


if __name__ == "__main__":
    main()
