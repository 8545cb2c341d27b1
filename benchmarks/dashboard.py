"""Dashboard response times for a run of many iterations (target: under 200 ms).

python benchmarks/dashboard.py [--iterations 1000] [--requests 20]

Makes a run store through the Store API (realistic explanations, train.py texts, diffs, prompts
and training logs), starts `autoresearch serve` on it in its own process, and times each page and
API route over real HTTP (median and slowest of N requests). With chromium and Playwright it also
times the run page in the browser: from navigation until the chart and table are drawn.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from autoresearch.core import config
from autoresearch.core.records import DISCARD, KEEP, TRAINING, Iteration, Usage
from autoresearch.store import workspace
from autoresearch.store.layout import runs_dir
from autoresearch.store.store import Store

TARGET_MS = 200
AUTORESEARCH = str(Path(sys.executable).parent / "autoresearch")
TEMPLATE = (workspace.TASKS["fashion-mnist"] / "train.py").read_text()


def make_run(ws: Path, count: int) -> str:
    workspace.init(ws, "fashion-mnist", sys.executable)
    cfg = config.load(ws)
    run_id = "20260101-000000"
    store = Store.create(runs_dir(ws) / run_id, cfg.model_dump())
    rng = random.Random(0)
    best = 0.80
    for n in range(count):
        value = best + rng.gauss(-0.004, 0.004)
        status = "baseline" if n == 0 else (KEEP if value > best else DISCARD)
        best = max(best, value) if status != DISCARD else best
        log = store.iteration_dir(n) / "train.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("".join(f"epoch {e} loss {1 / (e + 1):.4f} (2.1s)\n" for e in range(40)))
        explanation = f"Try change {n}: LEARNING_RATE to {rng.random():.4g}\n\n" + (
            "Why: the loss curve suggests the step size is off. " * 20
        )
        store.record(
            Iteration(
                n, status, value=value, explanation=explanation, train_py=TEMPLATE,
                diff=f"--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-x = {n - 1}\n+x = {n}\n" * 5,
                prompt="p" * 12000, raw_output="o" * 3000, usage=Usage(900, 400, 0, 0.012),
                agent_seconds=8.0, train_seconds=300.0, wall_seconds=309.0, log_path=str(log),
                parent=0, agent="claude", model="claude-sonnet-5-5", started_at=time.time(),
            )
        )  # fmt: skip
    store.set_live({"phase": TRAINING, "iteration": count, "started_at": time.time()})
    store.close()
    return run_id


def timed(url: str, requests: int) -> tuple[float, float, int]:
    """(median ms, slowest ms, bytes) of GET url."""
    times, size = [], 0
    for _ in range(requests):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            size = len(response.read())
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), size


def browser_ms(url: str, count: int, requests: int) -> float | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        for _ in range(max(3, requests // 4)):
            started = time.perf_counter()
            page.goto(url)
            page.wait_for_function(
                f"document.querySelectorAll('svg.chart .point').length === {count} && "
                f"document.querySelectorAll('#iterations tbody tr').length === {count}"
            )
            times.append((time.perf_counter() - started) * 1000)
        browser.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    try:
        started = time.time()
        run_id = make_run(root / "ws", args.iterations)
        print(f"store: {args.iterations} iterations, made in {time.time() - started:.1f}s")
        server = subprocess.Popen(
            [AUTORESEARCH, "serve", str(root / "ws"), "--port", "0"],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = re.search(r"(http://\S+)", server.stderr.readline()).group(1).rstrip("/")
            routes = {
                "page: runs": "/",
                "page: run": f"/runs/{run_id}",
                "static: chart.js": "/static/chart.js",
                "api: runs": "/api/runs",
                "api: run (= status --json)": f"/api/runs/{run_id}",
                "api: iteration (diff, log)": f"/api/runs/{run_id}/iterations/{args.iterations // 2}",
                "api: live": f"/api/runs/{run_id}/live",
            }
            timed(base + "/api/runs", 2)  # warm up (imports, first connection)
            print(f"{'route':32} {'median ms':>10} {'slowest ms':>11} {'bytes':>10}")
            over = []
            for name, path in routes.items():
                median, slowest, size = timed(base + path, args.requests)
                mark = "" if median < TARGET_MS else "  <- over target"
                over += [name] if mark else []
                print(f"{name:32} {median:10.1f} {slowest:11.1f} {size:10,}{mark}")
            page = browser_ms(f"{base}/runs/{run_id}", args.iterations, args.requests)
            if page is not None:
                print(f"{'browser: run page drawn':32} {page:10.1f}  (chart and table complete)")
            print(
                f"target: median under {TARGET_MS} ms: "
                + ("met" if not over else f"missed by {over}")
            )
        finally:
            server.terminate()
            server.wait(timeout=10)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
