"""Greedy against tree search ([search] policy) on the real Fashion-MNIST template with the `hpo`
agent: the same number of experiments, `--workers` local workers (a Ray of its own on this
machine), each experiment with one thread, the same agent seed.

    python benchmarks/search_template.py [--workers 2] [--iterations 10] [--budget 20] [--seed 0]
        [--data-dir DIR]

For each policy: a fresh workspace (`autoresearch init`), `autoresearch run --agent hpo`, then
`status --json`; prints the best validation accuracy, the keeps, the repeats caught (proposals
not trained), the iterations proposals started from, and the run's wall time; the machine's
load average before and after. One run per policy is one sample: the noise between runs (the
noise floor's sigma, printed) is as large as the differences it can show;
benchmarks/search_policy.py measures the policies over many seeds on a surrogate.

Measured 2026-12-07 on the shared 2-core development machine (load average 1.7-3.3 while it
ran, other work going on), `--iterations 12 --budget 20`, seed 0: greedy best 0.8844
(iteration 12; 2 keeps, noise sigma 0.0065, 3.7 min), tree best 0.8917 (iteration 11; 4 keeps,
sigma 0.0029, 4.1 min); no repeats in either. See docs/benchmarks.md (search policy).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POLICIES = ("greedy", "tree")


def cli() -> str:
    return str(Path(sys.executable).with_name("autoresearch"))


def settings(policy: str, workers: int, seed: int) -> str:
    return (
        f'\n[search]\npolicy = "{policy}"\n\n[run]\nworkers = {workers}\n\n'
        f"[resources]\ncpus = 1\nthreads = 1\n\n[agent]\nseed = {seed}\n"
    )


def one_run(policy: str, args: argparse.Namespace, root: Path) -> dict:
    ws = root / policy
    subprocess.run([cli(), "init", str(ws)], check=True, capture_output=True)
    with (ws / "autoresearch.toml").open("a") as f:
        f.write(settings(policy, args.workers, args.seed))
    started = time.time()
    argv = [cli(), "run", str(ws), "--agent", "hpo", "--iterations", str(args.iterations)]
    argv += [
        "--budget",
        str(args.budget),
        *(["--data-dir", args.data_dir] if args.data_dir else []),
    ]
    run = subprocess.run(argv, capture_output=True, text=True)
    wall = time.time() - started
    if run.returncode != 0:
        sys.exit(f"{policy}: autoresearch run failed: {run.stderr.strip()[-2000:]}")
    status = subprocess.run([cli(), "status", str(ws), "--json"], capture_output=True, text=True)
    snap = json.loads(status.stdout)
    its = snap["iterations"]
    return {
        "best": snap["best"]["value"],
        "best_iteration": snap["best"]["iteration"],
        "keeps": sum(it["status"] == "keep" for it in its),
        "repeats": sum("the same code as" in (it["reason"] or "") for it in its),
        "parents": sorted({it["parent"] for it in its if it["parent"] is not None}),
        "sigma": (snap.get("noise") or {}).get("sigma"),
        "wall_min": round(wall / 60, 1),
        "trajectory": [round(it["value"], 4) if it["value"] else None for it in its],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--budget", type=float, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-dir", help="Fashion-MNIST's four .gz files (else the task finds them)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict = {"workers": args.workers, "iterations": args.iterations, "budget": args.budget}
    report["load_before"] = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="search-template-") as tmp:
        for policy in POLICIES:
            report[policy] = one_run(policy, args, Path(tmp))
            if not args.json:
                r = report[policy]
                print(
                    f"{policy:<6} best {r['best']:.4f} (iteration {r['best_iteration']})  keeps "
                    f"{r['keeps']}  repeats {r['repeats']}  parents {r['parents']}  "
                    f"sigma {r['sigma']}  wall {r['wall_min']} min",
                    flush=True,
                )
    report["load_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(report))
    else:
        print(f"load average before {report['load_before']}, after {report['load_after']}")


if __name__ == "__main__":
    main()
