"""Training runs on a Ray cluster, each a task asking for [resources] (cpus, gpus): the
experiment's files and the task's training files go out, the log, the predictions and the fixed
files come back, and are scored here. A task that dies with its worker or node is WorkerLost."""

from __future__ import annotations

import dataclasses
import hashlib
import math

from autoresearch.core.config import Config
from autoresearch.core.records import TrainingRun
from autoresearch.store.layout import LOG_NAME, PREDICTIONS_NAME
from autoresearch.store.workspace import read_tree, write_tree
from autoresearch.training.engines import Job, WorkerLost, first_done
from autoresearch.training.experiment import Trainer
from autoresearch.training.local import RunResult
from autoresearch.training.ray import cluster, node

SWEEP_SECS = 60  # to clear every node of what a killed orchestrator left training


class RayEngine:
    def __init__(self, trainer: Trainer, cfg: Config, tag: str):
        self.ray = ray = cluster.connect(cfg.run.ray_address)
        res = cfg.resources
        self.trainer = dataclasses.replace(
            trainer, threads=trainer.threads or math.ceil(res.cpus), tag=tag
        )
        live = cluster.nodes(ray)
        room = sum(cluster.fits(n, res) for n in live)
        self.slots = min(cfg.run.workers, room)  # no proposal waits for a worker that is not
        self.where = f"Ray ({len(live)} node{'s' if len(live) != 1 else ''})"
        if 0 < room < cfg.run.workers:
            self.where = f"{self.where[:-1]}; room for {room} of the {cfg.run.workers} asked)"
        if not room:
            raise cluster.ClusterError(
                f"no node of the Ray cluster has {res.cpus:g} CPUs and {res.gpus:g} GPUs for an "
                f"experiment ([resources]); its nodes: "
                + ", ".join(f"{n.host} ({n.cpus:g} CPUs, {n.gpus:g} GPUs)" for n in live)
            )
        self.task = ray.remote(node.train).options(
            num_cpus=res.cpus, num_gpus=res.gpus, max_retries=0
        )
        self.data, self.data_key = None, None
        if trainer.data is not None:
            files = read_tree(trainer.data)
            digest = hashlib.sha256()
            for rel in sorted(files):
                digest.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
            self.data, self.data_key = [ray.put(files)], digest.hexdigest()
        self.tag = tag
        try:
            self._sweep()
        except Exception as err:  # noqa: BLE001 - a node without autoresearch, or not answering
            first = (str(err).strip().splitlines() or [type(err).__name__])[-1]
            raise cluster.ClusterError(
                f"not every node of the Ray cluster can train ({first[:300]}); "
                "`autoresearch doctor --ray-address ...` checks each"
            ) from None

    def _sweep(self) -> None:
        """Every node: what this run left training there killed, its files there removed."""
        sweep = self.ray.remote(node.sweep)
        live = cluster.nodes(self.ray)
        pinned = [cluster.on_node(sweep, n.node_id, num_cpus=0, max_retries=0) for n in live]
        self.ray.get([task.remote(self.tag) for task in pinned], timeout=SWEEP_SECS)

    wait = staticmethod(first_done)

    def start(self, job: Job) -> None:
        shipment = node.Shipment(
            self.trainer, job.workdir.name, read_tree(job.workdir), job.seed, self.data_key
        )
        job.handle = self.task.remote(shipment, self.data)
        job.future = job.handle.future()

    def collect(self, job: Job) -> TrainingRun:
        """The run, scored here from what the node sent back; WorkerLost when it died."""
        try:
            sent: node.NodeResult = job.future.result()
        except Exception as err:  # noqa: BLE001 - Ray's errors: a dead worker, node, raylet...
            first = (str(err).strip().splitlines() or [type(err).__name__])[-1]
            raise WorkerLost(f"{type(err).__name__}: {first[:300]}") from None
        job.out_dir.mkdir(parents=True, exist_ok=True)
        log = job.out_dir / LOG_NAME
        log.write_bytes(sent.log)
        predictions = job.workdir / PREDICTIONS_NAME
        predictions.unlink(missing_ok=True)
        if sent.predictions is not None:
            predictions.write_bytes(sent.predictions)
        for name, data in sent.fixed.items():  # as train.py left them: Trials checks them
            (job.workdir / name).unlink(missing_ok=True)
            if data is not None:
                write_tree(job.workdir, {name: data})
        result: RunResult = dataclasses.replace(
            sent.result, log_path=log, predictions_path=predictions
        )
        return self.trainer.conclude(result, job.workdir, job.out_dir, job.seed, job.started)

    def cancel(self, job: Job) -> None:
        if job.handle is not None:
            try:
                self.ray.cancel(job.handle, force=True)
            except Exception:  # noqa: BLE001 - finished or gone already
                pass

    def close(self) -> None:
        try:
            self._sweep()
        except Exception:  # noqa: BLE001 - a node gone: the next start of the run sweeps again
            pass
        self.ray.shutdown()
