"""Scale-out on a real local Ray cluster of two 1-CPU nodes: experiments trained at once and
decided in the order they arrive, thread limits on the nodes, a worker killed mid-run, the
orchestrator SIGKILLed and resumed; and what a run without Ray (or a reachable cluster) says."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import psutil
import pytest
from clirun import AUTORESEARCH, Cli, wait_until
from sleeping_train import workspace

from autoresearch.store.runstate import RUN_ENV, run_tag
from autoresearch.training.local import SEED_ENV, THREAD_ENV
from autoresearch.training.ray.node import node_root

pytestmark = pytest.mark.usefixtures("known_labels", "reaper")

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster():
    """Two nodes of one CPU each: two experiments at once land on different nodes."""
    from ray.cluster_utils import Cluster

    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    made.add_node(num_cpus=1)
    made.wait_for_nodes()
    yield made
    made.shutdown()


@pytest.fixture
def cluster(ray_cluster) -> str:
    return ray_cluster.address


def store(ws: Path) -> sqlite3.Connection:
    (run,) = (ws / ".autoresearch" / "runs").iterdir()
    return closing(sqlite3.connect(run / "run.db"))


def live_entry(ws: Path) -> dict | None:
    """The run's `live` entry now (None before its store exists, or between phases)."""
    found = list((ws / ".autoresearch" / "runs").glob("*/run.db"))
    if not found:
        return None
    try:  # read-only: never creates the file the orchestrator is about to
        with closing(sqlite3.connect(f"file:{found[0]}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT phase FROM live").fetchone()
    except sqlite3.Error:
        return None
    return json.loads(row[0]) if row else None


def iterations(ws: Path) -> dict[int, dict]:
    with store(ws) as db:
        rows = db.execute(
            "SELECT iteration, status, value, reason, finished_at FROM iterations"
        ).fetchall()
    return {r[0]: dict(status=r[1], value=r[2], reason=r[3], finished_at=r[4]) for r in rows}


def runs(ws: Path) -> list[tuple]:
    with store(ws) as db:
        return db.execute(
            "SELECT iteration, run, status, wall_seconds, finished_at, log_path FROM training_runs"
        ).fetchall()


def test_two_workers_decide_in_arrival_order_and_the_best_never_moves_back(ws, tmp_path, cluster):
    # 1 beats the baseline but trains slowly; 2, better, arrives first and is kept: 1 is then
    # measured against 2, and discarded. Threads: [resources] threads = 2 reaches the nodes
    # (Ray's own default for a 1-CPU task, and this test process's, is 1).
    plan = [(1000, 0.1), (3000, 6.0), (5000, 0.1), (2000, 0.1)]
    flags = workspace(ws, tmp_path, plan, "\n[resources]\nthreads = 2\n")
    cli = Cli(ws, *flags, "--workers", "2", "--ray-address", cluster)
    seen: list[dict] = []  # what status and the dashboard read while it runs
    while cli.proc.poll() is None:
        seen += [live] if (live := live_entry(ws)) else []
        time.sleep(0.05)
    assert cli.finish() == 0, "\n".join(cli.seen)
    assert "training on Ray (2 nodes), 2 workers" in cli.seen
    assert any(live.get("in_flight") == [1] and live["iteration"] in (2, 3) for live in seen)
    got = iterations(ws)
    assert {n: got[n]["status"] for n in got} == {
        0: "baseline", 1: "discard", 2: "keep", 3: "discard"
    }  # fmt: skip
    assert got[1]["value"] == pytest.approx(0.3) and got[2]["value"] == pytest.approx(0.5)
    assert got[2]["finished_at"] < got[1]["finished_at"]  # recorded out of order
    trained = {r[0]: r for r in runs(ws)}
    started_1 = trained[1][4] - trained[1][3]
    assert started_1 < trained[2][4] < trained[1][4]  # 2 trained while 1 did: on the other node
    for n in got:
        log = Path(trained[n][5]).read_text()
        assert f"threads: {['2'] * len(THREAD_ENV)}" in log, log
    shown = json.loads(
        subprocess.run([AUTORESEARCH, "status", str(ws), "--json"], capture_output=True,
                       text=True, check=True).stdout
    )  # fmt: skip
    assert shown["best"] == {"iteration": 2, "value": pytest.approx(0.5)}
    (run,) = (ws / ".autoresearch" / "runs").iterdir()
    assert not node_root(run_tag(run)).exists()  # the nodes keep nothing of the run
    # proposal 2 was asked for while 1 trained: its prompt says so
    prompt = (run / "iterations" / "0002" / "prompt.md").read_text()
    assert (
        "Being trained now" in prompt
        and "iteration 1 (from iteration 0, like yours: a sibling): 3000 right" in prompt
    )


def _training(ws: Path, seed: int) -> list[psutil.Process]:
    """The processes training this workspace's run with this seed (train.py, its sandbox)."""
    found = []
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if env.get(SEED_ENV) == str(seed) and env.get(RUN_ENV, "").startswith(str(ws)):
            found.append(proc)
    return found


def _worker_of(ws: Path, seed: int) -> psutil.Process | None:
    """The Ray worker process training the run with this seed (named ray::train by Ray)."""
    for proc in _training(ws, seed):
        try:
            return next(p for p in proc.parents() if p.name().startswith("ray::"))
        except (StopIteration, psutil.Error):
            continue
    return None


def _kill_worker(ws: Path, seed: int, before: set[int]) -> int:
    """SIGKILL the worker training this seed's run (one not in before), once it is there."""
    found: list[psutil.Process] = []

    def there() -> bool:
        worker = _worker_of(ws, seed)
        if worker is not None and worker.pid not in before:
            found.append(worker)
        return bool(found)

    wait_until(there, 60)
    found[0].kill()
    return found[0].pid


def test_a_killed_worker_trains_its_run_again_once_then_records_a_crash(ws, tmp_path, cluster):
    plan = [(1000, 0.1), (3000, 5.0), (2000, 5.0)]
    cli = Cli(ws, *workspace(ws, tmp_path, plan), "--workers", "2", "--ray-address", cluster)
    first = _kill_worker(ws, 1000, set())  # iteration 1: killed once, trained again
    twice = {_kill_worker(ws, 2000, set())}  # iteration 2: killed twice
    twice.add(_kill_worker(ws, 2000, twice))
    assert first not in twice
    assert cli.finish(timeout=180) == 0, "\n".join(cli.seen)
    got = iterations(ws)
    assert got[1]["status"] == "keep" and got[1]["value"] == pytest.approx(0.3)
    assert got[2]["status"] == "crash"
    assert got[2]["reason"].startswith("its worker died 2 times: "), got[2]["reason"]
    assert any("iteration 1: run 1 lost its worker" in line for line in cli.seen), cli.seen
    assert not _training(ws, 1000) and not _training(ws, 2000)


def test_a_sigkilled_orchestrator_resumes_what_was_in_flight_once(ws, tmp_path, cluster):
    plan = [(1000, 0.1), (3000, 12.0), (2000, 12.0), (4000, 0.1)]  # killed while both train
    flags = [*workspace(ws, tmp_path, plan), "--workers", "2", "--ray-address", cluster]
    cli = Cli(ws, *flags)
    wait_until(lambda: _worker_of(ws, 1000) and _worker_of(ws, 2000), 90)  # both training
    os.killpg(cli.proc.pid, signal.SIGKILL)
    cli.finish()
    assert set(iterations(ws)) == {0}
    left = [*_training(ws, 1000), *_training(ws, 2000)]  # on the cluster, unless Ray ended them
    # the resume clears the cluster of what the dead orchestrator left, and trains it again
    again = Cli(ws, "--ray-address", cluster)
    again.wait_for("training on Ray")
    assert not [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert again.finish(timeout=240) == 0, "\n".join(again.seen)
    assert any("iteration 1: resuming the proposal recorded" in line for line in again.seen)
    got = iterations(ws)
    # 1 (0.3) is kept whenever it arrives; 2 (0.2) only if it arrives first; 3 (0.4) is kept
    second = "keep" if got[2]["finished_at"] < got[1]["finished_at"] else "discard"
    statuses = {n: got[n]["status"] for n in got}
    assert statuses == {0: "baseline", 1: "keep", 2: second, 3: "keep"}
    pairs = [(r[0], r[1]) for r in runs(ws)]
    assert sorted(pairs) == [(0, 0), (1, 0), (2, 0), (3, 0)]  # none lost, none doubled
    assert not _training(ws, 1000) and not _training(ws, 2000)


def test_workers_beyond_the_clusters_room_and_a_resource_no_node_has(ws, tmp_path, cluster):
    flags = [*workspace(ws, tmp_path, [(1000, 0.1), (2000, 0.1)]), "--ray-address", cluster]
    done = subprocess.run(
        [AUTORESEARCH, "run", str(ws), *flags, "--workers", "5", "--iterations", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "training on Ray (2 nodes; room for 2 of the 5 asked), 2 workers" in done.stderr
    with open(ws / "autoresearch.toml", "a") as f:
        f.write("\n[resources]\ngpus = 1\n")
    done = subprocess.run(
        [AUTORESEARCH, "run", str(ws), *flags, "--workers", "2", "--new"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no node of the Ray cluster has 1 CPUs and 1 GPUs" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_node_that_dies_mid_run_has_its_experiment_trained_on_another(ws, tmp_path, ray_cluster):
    extra = ray_cluster.add_node(num_cpus=1)
    ray_cluster.wait_for_nodes()
    raylet = extra.all_processes["raylet"][0].process.pid
    plan = [(1000, 0.1), (3000, 4.0), (2000, 4.0), (4000, 4.0)]
    flags = workspace(ws, tmp_path, plan)
    cli = Cli(ws, *flags, "--workers", "3", "--ray-address", ray_cluster.address)

    def on_doomed_node() -> bool:
        workers = [_worker_of(ws, seed) for seed in (1000, 2000, 3000)]
        return any(w is not None and w.ppid() == raylet for w in workers)

    wait_until(on_doomed_node, 90)
    ray_cluster.remove_node(extra, allow_graceful=False)
    assert cli.finish(timeout=180) == 0, "\n".join(cli.seen)
    got = iterations(ws)
    assert all(got[n]["status"] in ("keep", "discard") for n in (1, 2, 3)), got
    assert any("lost its worker" in line for line in cli.seen), cli.seen
