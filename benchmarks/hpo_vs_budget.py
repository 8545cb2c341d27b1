"""Run the research loop with one agent under a fixed training budget, then print the best
metric after each iteration, so the same budget can be given to an LLM agent and compared.

    python benchmarks/hpo_vs_budget.py --iterations 20 --budget 60
    python benchmarks/hpo_vs_budget.py --iterations 20 --budget 60 --agent claude

Without --workspace a fresh one is created with `autoresearch init` in a temporary folder; a
--workspace that does not exist yet is created the same way (an existing one is resumed, so
give each comparison its own). Unknown options go to `autoresearch run` unchanged, e.g.
--data-dir /path/to/fashion-mnist.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPROVED = ("baseline", "keep")  # statuses that make an iteration the new incumbent


def autoresearch() -> list[str]:
    """The CLI next to this interpreter (a venv's), else the one on PATH."""
    local = Path(sys.executable).with_name("autoresearch")
    found = str(local) if local.exists() else shutil.which("autoresearch")
    if found is None:
        sys.exit("autoresearch is not installed: run `pip install -e .` first")
    return [found]


def call(argv: list[str], capture: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=capture, text=True)
    if result.returncode != 0:
        detail = result.stderr.strip() if capture else ""
        sys.exit(f"{' '.join(argv)} failed with exit code {result.returncode}. {detail}".strip())
    return result


def show(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_table(iterations: list[dict]) -> None:
    print(f"{'iteration':>9}  {'status':<9} {'value':>8} {'best':>8}")
    best = None
    for it in iterations:
        if it["status"] in IMPROVED and it.get("value") is not None:
            best = it["value"]
        print(f"{it['iteration']:>9}  {it['status']:<9} {show(it.get('value')):>8} {show(best):>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, required=True, help="iterations after baseline")
    parser.add_argument("--budget", type=float, required=True, help="training seconds per run")
    parser.add_argument("--workspace", type=Path, help="default: a fresh temporary workspace")
    parser.add_argument("--agent", default="hpo", help="the agent to run (default: hpo)")
    args, extra = parser.parse_known_args()

    cli = autoresearch()
    ws = args.workspace or Path(tempfile.mkdtemp(prefix="hpo-vs-budget-")) / "workspace"
    if not ws.exists():
        call([*cli, "init", str(ws)])
    started = time.time()
    run_argv = [*cli, "run", str(ws), "--agent", args.agent]
    run_argv += ["--iterations", str(args.iterations), "--budget", str(args.budget), *extra]
    run = subprocess.run(run_argv)
    elapsed = time.time() - started
    report = json.loads(call([*cli, "status", str(ws), "--json"], capture=True).stdout)

    print(f"\nagent {args.agent}, budget {args.budget:g}s per run, workspace {ws}")
    print_table(report.get("iterations", []))
    best = report.get("best") or {}
    print(f"best {show(best.get('value'))} at iteration {best.get('iteration', '-')}")
    print(f"wall time {elapsed / 60:.1f} min")
    if run.returncode != 0:
        sys.exit(f"autoresearch run exited with code {run.returncode}")


if __name__ == "__main__":
    main()
