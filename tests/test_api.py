"""The Python API (`autoresearch.open_run`) on the real short run and on its bundle: the same
numbers as `status --json`, each iteration's code, diff and log; and docs/notebooks/
analyse_a_run.ipynb executed against that run, as CI executes it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

import autoresearch
from autoresearch.cli.app import app
from autoresearch.store.store import Store, list_runs

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "analyse_a_run.ipynb"
cli = CliRunner()


@pytest.fixture(scope="module")
def bundle(short_run, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("api") / "run.tar.gz"
    assert cli.invoke(app, ["bundle", str(short_run), "-o", str(path)]).exit_code == 0
    return path


def test_open_run_reads_what_status_says(short_run, bundle):
    snap = json.loads(cli.invoke(app, ["status", str(short_run), "--json"]).stdout)
    store = Store(list_runs(short_run)[0], readonly=True)
    for where in (short_run, bundle):
        run = autoresearch.open_run(where)
        assert run.id == snap["run"]
        assert [asdict(e) for e in run.iterations] == snap["iterations"]
        assert run.best.iteration == snap["best"]["iteration"]
        assert run.best.value == snap["best"]["value"]
        assert asdict(run.noise) == snap["noise"]
        assert run.settings == store.config()
        for n in (0, 1):
            whole = store.iteration(n)
            assert run.train_py(n) == whole.train_py
            assert run.diff(n) == whole.diff
            assert run.log(n) == (store.iteration_dir(n) / "train.log").read_text()
        assert "whole epochs trained: 1" in run.log(1)
        with pytest.raises(KeyError, match="no iteration 99"):
            run.train_py(99)


def test_to_pandas(short_run):
    pd = pytest.importorskip("pandas")
    run = autoresearch.open_run(short_run)
    df = run.iterations.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert list(df.index) == [e.iteration for e in run.iterations]
    assert list(df["status"]) == [e.status for e in run.iterations]


def test_the_notebook_runs_against_a_run(bundle, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("pandas")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("AUTORESEARCH_RUN", str(bundle))
    # the kernel imports this checkout's autoresearch, as the tests do
    src = str(Path(autoresearch.__file__).parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    printed = "".join(
        out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", [])
    )
    run = autoresearch.open_run(bundle)
    assert f"best val_accuracy: {run.best.value:.4f} at iteration {run.best.iteration}" in printed
    assert any(
        "image/png" in out.get("data", {})
        for cell in notebook.cells
        for out in cell.get("outputs", [])
    )
