"""The one driver's own cost at scale: W workers, N experiments, over the fake engine.

python benchmarks/scheduler_scale.py --workers 64 --experiments 2000 [--json] [--seed 0]

The driver (scheduler.py) runs a whole run with the real store (SQLite, on disk), trials,
decisions, stops and recorder; the agent answers at once and the engine (fake_engine.py) trains
nowhere: each training takes a random virtual time (1 to 3 minutes), so all the wall time is the
orchestrator's. Git is replaced by a dictionary here (benchmarks/loop_overhead.py times it).
Prints the scheduling overhead per experiment (wall time / experiments), experiments lost
(proposed, never recorded) or doubled (recorded or trained twice), and the throughput in
virtual time against the ideal W / mean training time (how busy the workers were kept).

Measured 2026-12-07 on the shared 2-core development machine (load about 3 from other work),
Python 3.11: see docs/benchmarks.md (The driver at scale). Before that day's changes: 38-41 ms
per experiment at 64 workers, 55 ms at 256; most of it was not the disk but the goal stop
rebuilding the whole History (tokenizing every train.py) before each proposal, then the
fake engine's O(workers^2) wait and each answer's repeat check tokenizing every proposal in
flight. The store keeps its durable commits (synchronous=FULL) and fsynced files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import tempfile
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

from autoresearch.core.config import Config
from autoresearch.training.fake_engine import FakeEngine, Outcome


class MemoryRepo:
    """ExperimentRepo's interface without git: a commit is the hash of its files."""

    def __init__(self) -> None:
        self.refs: dict[str, str] = {}

    def commit(self, files: dict, message: str, parent: str | None) -> str:
        digest = hashlib.sha1(message.encode() + (parent or "").encode())
        for name in sorted(files):
            data = files[name]
            digest.update(data if isinstance(data, bytes) else data.encode())
        return digest.hexdigest()

    def set_ref(self, ref: str, sha: str) -> None:
        self.refs[ref] = sha

    def set_refs(self, refs: dict[str, str]) -> None:
        self.refs.update(refs)


def measure(workers: int, experiments: int, seed: int) -> dict:
    from autoresearch.loop.fake_run import fake_run

    rng = random.Random(seed)
    cfg = Config.model_validate(
        {"loop": {"iterations": experiments, "noise_runs": 1, "confirm_runs": 0}}
    )
    durations: dict[tuple[int, int], float] = {}

    def script(job) -> Outcome:
        seconds = durations.setdefault((job.n, job.k), rng.uniform(60, 180))
        return Outcome(seconds, rng.uniform(0.8, 0.9))

    engine = FakeEngine(workers, script)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result, store, agent = fake_run(Path(tmp) / "run", cfg, engine, repo=MemoryRepo())
        wall = time.perf_counter() - started
        with closing(sqlite3.connect(store.path)) as db:
            rows = Counter(n for (n,) in db.execute("SELECT iteration FROM iterations"))
        store.close()
    proposed = {n for n, _, _ in agent.asked}
    trained = Counter((job.n, job.k) for job in engine.started)
    mean_train = sum(durations.values()) / len(durations)
    ideal = workers / mean_train  # experiments per virtual second, every worker always busy
    done = sum(rows.values())
    return {
        "workers": workers,
        "experiments": experiments,
        "recorded": done - 1,
        "state": result.state,
        "overhead_ms_per_experiment": round(wall * 1000 / done, 2),
        "lost": len(proposed - set(rows)),
        "doubled": sum(1 for c in rows.values() if c > 1) + sum(c > 1 for c in trained.values()),
        "virtual_hours": round(engine.clock / 3600, 2),
        "throughput_per_hour": round(done / engine.clock * 3600, 1),
        "ideal_per_hour": round(ideal * 3600, 1),
        "utilization": round(done / engine.clock / ideal, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--experiments", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    found = measure(args.workers, args.experiments, args.seed)
    if args.json:
        print(json.dumps(found))
        return
    print(
        f"{found['workers']} workers, {found['recorded']} experiments recorded ({found['state']}):"
        f" overhead {found['overhead_ms_per_experiment']} ms per experiment;"
        f" lost {found['lost']}, doubled {found['doubled']};"
        f" {found['throughput_per_hour']} experiments per (virtual) hour against"
        f" {found['ideal_per_hour']} ideal (utilization {found['utilization']:.1%})"
    )


if __name__ == "__main__":
    main()
