"""Training runs logged to MLflow as they are recorded: `[tracking] mlflow = "URI"` (a folder, a
SQLite database or a tracking server; pip install 'autoresearch[mlflow]').

One MLflow parent run per autoresearch run, one nested run per training run (an iteration
trained with several seeds has several). The store remembers what was logged, so a resume logs
only what is new, and a tracking failure (a server down) never stops the run: one warning line,
and what was missed is logged with the next recorded iteration.

The hook is `recorded(store, iteration)`, called once, by Store.record after the row is written.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from autoresearch.core.records import OK

if TYPE_CHECKING:
    from autoresearch.core.records import Iteration, TrainingRun
    from autoresearch.store.store import Store

STATE = "mlflow"  # the store's meta entry: {uri, experiment_id, parent, logged}
MAX_PARAM = 500  # characters of a description kept as a parameter
_failing: set[str] = set()  # stores whose tracking failed and has not caught up yet


class TrackingError(Exception):
    """MLflow cannot be used: one line."""


def _uri(store: Store, uri: str) -> str:
    """A plain folder is relative to the workspace, as paths in autoresearch.toml are."""
    if "://" in uri or uri.startswith("file:") or Path(uri).is_absolute():
        return uri
    return str((store.dir.parents[2] / uri).absolute())


def _name(metric: str) -> str:
    """A metric name MLflow accepts (letters, digits and _-. /)."""
    return re.sub(r"[^\w\-. /]", "_", metric)


def recorded(store: Store, it: Iteration) -> None:
    """Log what the store has and MLflow has not (this iteration, and any missed before)."""
    uri = store.config().tracking.mlflow
    if not uri:
        return
    key = str(store.dir)
    try:
        count = log_new(store)
    except Exception as err:  # noqa: BLE001 - tracking never stops a run
        if key not in _failing:
            _failing.add(key)
            print(
                f"warning: mlflow ({uri}) failed at iteration {it.iteration}: "
                f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}; "
                "the run goes on, and what is missed is logged with a later iteration",
                file=sys.stderr,
                flush=True,
            )
        return
    if key in _failing:
        _failing.discard(key)
        print(f"mlflow ({uri}): caught up, {count} iterations logged", file=sys.stderr, flush=True)


def _client(uri: str):
    # a server that is down answers at once, not after minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # our terminal's
    if "://" not in uri or uri.startswith("file:"):
        # a folder, as the README offers it: MLflow keeps its file store, in maintenance mode
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise TrackingError(
            "[tracking] mlflow needs MLflow: pip install 'autoresearch[mlflow]'"
        ) from None
    return MlflowClient(tracking_uri=uri)


def log_new(store: Store) -> int:
    """Log every recorded iteration not logged yet; returns how many were logged now."""
    cfg = store.config()
    uri = _uri(store, cfg.tracking.mlflow)
    client = _client(uri)
    state = store.get(STATE) or {}
    if state.get("uri") != uri or state.get("experiment") != cfg.tracking.experiment:
        state = {"uri": uri, "experiment": cfg.tracking.experiment, "logged": []}
    if not state.get("parent"):
        found = client.get_experiment_by_name(cfg.tracking.experiment)
        experiment = found.experiment_id if found else None
        experiment = experiment or client.create_experiment(cfg.tracking.experiment)
        parent = client.create_run(
            experiment, run_name=store.run_id, tags={"autoresearch.run": store.run_id}
        )
        state.update(experiment_id=experiment, parent=parent.info.run_id)
        _params(client, parent.info.run_id, {"metric": cfg.metric, "direction": cfg.direction,
                                             "budget_secs": cfg.budget_secs})  # fmt: skip
        store.set(**{STATE: state})
    logged = set(state["logged"])
    new = [it for it in store.iterations() if it.iteration not in logged]
    for light in new:
        it = store.iteration(light.iteration)  # whole: its train.py and diff
        for k, run in enumerate(it.runs or [None]):
            _log_run(client, state, store, it, k, run)
        state["logged"] = sorted(logged | {it.iteration})
        logged.add(it.iteration)
        store.set(**{STATE: state})
    if new:
        client.set_terminated(state["parent"], "FINISHED")  # as of the last iteration recorded
    return len(new)


def _params(client, run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])


def _log_run(
    client, state: dict, store: Store, it: Iteration, k: int, run: TrainingRun | None
) -> None:
    from mlflow.entities import Metric
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    cfg = store.config()
    name = f"iteration {it.iteration}" + (f" run {k + 1}" if k else "")
    tags = {
        MLFLOW_PARENT_RUN_ID: state["parent"],
        "status": it.status,
        "parent": "" if it.parent is None else str(it.parent),
        "autoresearch.run": store.run_id,
        "autoresearch.iteration": str(it.iteration),
    }
    if run is not None:
        tags["training"] = run.status
    child = client.create_run(state["experiment_id"], run_name=name, tags=tags).info.run_id
    _params(client, child, {
        "iteration": it.iteration, "run": k + 1, "seed": None if run is None else run.seed,
        "agent": it.agent, "model": it.model, "description": it.description[:MAX_PARAM],
    })  # fmt: skip
    if run is not None:
        now = int(time.time() * 1000)
        values = {cfg.metric: run.value, **run.metrics, "train_seconds": run.train_seconds,
                  "peak_memory_mb": run.peak_memory_mb}  # fmt: skip
        metrics = [Metric(_name(m), v, now, 0) for m, v in values.items() if v is not None]
        client.log_batch(child, metrics=metrics)
    for text, path in [(it.train_py, "train.py"), (it.diff, "diff.patch")]:
        if text:
            client.log_text(child, text, path)
    log = Path(run.log_path) if run is not None and run.log_path else None
    if log is not None and log.is_file():
        client.log_text(child, log.read_bytes().decode("utf-8", "replace"), "train.log")
    ok = run is None or run.status == OK
    client.set_terminated(child, "FINISHED" if ok else "FAILED")
