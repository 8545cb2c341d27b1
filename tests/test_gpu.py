"""The device the template trains on, and the memory an experiment reports: the peak GPU memory
train.py prints (peak_vram_mb, as Karpathy's results.tsv has it) when it trained on a GPU, the
peak RSS of its process tree otherwise."""

from __future__ import annotations

import csv
import sys

from conftest import CLASS_0, one_epoch, single_run
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core import config
from autoresearch.core.log_metrics import GPU_MEMORY, pattern_for, read_metrics
from autoresearch.core.records import OK
from autoresearch.store import workspace
from autoresearch.store.store import Store, list_runs
from autoresearch.training.experiment import run_experiment


def test_the_template_names_its_device_and_threads_and_reports_the_right_memory(tmp_path):
    import torch

    ws = tmp_path / "ws"
    workspace.init(ws, "fashion-mnist", sys.executable)
    one_epoch(ws)
    with open(ws / "autoresearch.toml", "a") as f:
        f.write("\n[resources]\nthreads = 2\n")  # the tests' own OMP_NUM_THREADS is 1
    cfg = config.with_flags(config.load(ws), {"budget_secs": 30.0, "grace_secs": 30.0})
    workdir = workspace.snapshot(ws, tmp_path / "work")
    result = run_experiment(ws, cfg, workdir, tmp_path / "out", seed=1)
    assert result.status == OK and result.value > 0.6, result.reason

    log = result.log_path.read_text()
    gpu = torch.cuda.is_available()
    device = "cuda" if gpu else "mps" if torch.backends.mps.is_available() else "cpu"
    assert log.startswith(f"device: {device}"), log
    assert "; torch threads: 2\n" in log.splitlines(keepends=True)[0]
    printed = read_metrics(result.log_path, {GPU_MEMORY: pattern_for(GPU_MEMORY)})[0]
    if gpu:  # where a CUDA GPU is at hand: the memory is what torch.cuda measured
        assert result.peak_memory_mb == printed[GPU_MEMORY] > 0
    else:  # here: no GPU line, and the memory is the RSS of a process that imported torch
        assert GPU_MEMORY not in log and printed == {}
        assert result.peak_memory_mb > 100


def reporting(mb: float | None) -> str:
    """A train.py without torch that predicts class 0 and says it used `mb` MB of GPU memory."""
    line = "" if mb is None else f"print('{GPU_MEMORY}: 1.0')\nprint('{GPU_MEMORY}: {mb}')\n"
    return CLASS_0 + line


def test_a_printed_gpu_peak_is_the_memory_in_the_store_and_results_tsv(ws, tmp_path):
    (ws / "train.py").write_text(reporting(1234.5))
    single_run(ws)
    proposals = tmp_path / "proposals"
    proposals.mkdir()
    (proposals / "001-none.py").write_text(reporting(None))
    (proposals / "001-none.md").write_text("No GPU line\n\nAs on a CPU.")
    argv = ["run", str(ws), "--agent", "replay", "--replay-dir", str(proposals)]
    result = CliRunner().invoke(app, [*argv, "--iterations", "1", "--budget", "10"])
    assert result.exit_code == 0, result.output

    store = Store(list_runs(ws)[-1], readonly=True)
    memory = [it.peak_memory_mb for it in store.iterations()]
    assert memory[0] == 1234.5  # the last line printed wins
    assert (
        0 < memory[1] < 1000
    )  # no line: the memory measured (PSS, sampled: a short run may show little)
    with open(store.dir / "results.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [r["memory_gb"] for r in rows] == ["1.21", f"{memory[1] / 1024:.2f}"]
