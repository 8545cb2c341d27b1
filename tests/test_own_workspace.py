"""A workspace you already have, in the shape of karpathy/autoresearch (tests/fixtures/
karpathy_shape: its own prepare.py with the fixed evaluation, data in ~/.cache/autoresearch, a
train.py that prints the same summary block), adopted with `init --adopt` and run with the real
`uv run train.py` under the sandbox: keep and discard on minimize, a run that prints no metric
is a crash, memory from the log, the metric marked self-reported wherever it is shown."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core import config
from autoresearch.store.store import Store, list_runs
from autoresearch.training import sandbox

FIXTURE = Path(__file__).parent / "fixtures" / "karpathy_shape"
BIN = Path(sys.executable).parent  # uv is a dev dependency: it is installed beside this Python
cli = CliRunner()

needs_bwrap = pytest.mark.skipif(
    sandbox.probe() is not None and not os.environ.get("CI"),
    reason=f"bubblewrap does not work here: {sandbox.probe()}",
)


def uv(*args: str, cwd: Path) -> None:
    subprocess.run([str(BIN / "uv"), *args], cwd=cwd, check=True, capture_output=True, timeout=300)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A home of the test's own: ~/.cache/autoresearch and uv's cache go there."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    return home


@pytest.fixture
def checkout(tmp_path, home) -> Path:
    """The fixture set up as its README would say: `uv sync`, `uv run prepare.py`."""
    directory = tmp_path / "autoresearch"
    shutil.copytree(FIXTURE, directory)
    uv("sync", "--offline", "--python", sys.executable, cwd=directory)
    uv("run", "prepare.py", cwd=directory)
    assert (home / ".cache" / "autoresearch" / "data" / "val.bin").is_file()
    return directory


def hashes(directory: Path) -> dict[str, str]:
    """Every file of the checkout (its .venv included), but autoresearch's run folders."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and ".autoresearch" not in p.relative_to(directory).parts
    }


def invoke(*args: str):
    return cli.invoke(app, [str(a) for a in args])


def test_adopt_writes_only_autoresearch_toml(checkout):
    before = hashes(checkout)
    result = invoke("init", "--adopt", checkout)
    assert result.exit_code == 0, result.output
    assert "recognised a Karpathy-style autoresearch checkout" in result.output
    after = hashes(checkout)
    assert set(after) - set(before) == {"autoresearch.toml"}
    assert {k: after[k] for k in before} == before
    text = (checkout / "autoresearch.toml").read_text()
    for line in [
        'metric = "val_bpb"',
        'direction = "minimize"',
        'metric_source = "log"',
        'memory_metric = "peak_vram_mb"',
        'command = ["uv", "run", "train.py"]',
        "budget_secs = 1 ",  # the fixture's prepare.TIME_BUDGET
        "grace_secs = 60 ",
        'readonly_paths = ["~/.cache/autoresearch"]',
        r"val_bpb = '^val_bpb:\s*([-+0-9.eE]+)'",
    ]:
        assert line in text
    again = invoke("init", "--adopt", checkout)
    assert again.exit_code == 1 and "already exists" in again.output


def test_adopt_names_what_is_missing(tmp_path):
    copy = tmp_path / "no-metric"
    shutil.copytree(FIXTURE, copy)
    train = copy / "train.py"
    lines = [x for x in train.read_text().splitlines() if not re.match(r'print\(f"\w+:', x)]
    train.write_text("\n".join(lines))
    result = invoke("init", "--adopt", copy)
    assert result.exit_code == 1
    assert "train.py prints no metric line" in result.output
    assert 'print(f"val_bpb: {val_bpb:.6f}")' in result.output
    assert not (copy / "autoresearch.toml").exists()
    train.write_text("\n".join([*lines, 'print(f"val_bpx: {val_bpb}")']))
    result = invoke("init", "--adopt", copy)  # printed, but not the one program.md reads
    assert result.exit_code == 1
    assert "prints no metric line that program.md names" in result.output
    assert "program.md reads val_bpb, peak_vram_mb; train.py prints val_bpx" in result.output
    (copy / "program.md").unlink()
    result = invoke("init", "--adopt", copy)
    assert result.exit_code == 1 and "program.md missing" in result.output


def test_doctor_names_what_an_adopted_checkout_still_needs(checkout, home):
    assert invoke("init", "--adopt", checkout).exit_code == 0
    shutil.move(checkout / ".venv", checkout.parent / "venv-aside")
    shutil.rmtree(home / ".cache" / "autoresearch")
    lines = invoke("doctor", checkout, "--agent", "hpo").output.splitlines()
    interpreter = next(x for x in lines if " interpreter: " in x)
    assert interpreter.startswith("FAIL") and "run `uv sync`" in interpreter
    data = next(x for x in lines if " data: " in x)
    assert data.startswith("FAIL") and "`uv run prepare.py`" in data
    metric = next(x for x in lines if " metric: " in x)
    assert "self-reported" in metric and "inside the experiment's process" in metric
    toml = checkout / "autoresearch.toml"
    toml.write_text(toml.read_text().replace('["uv", "run"', '["no-such-uv", "run"'))
    lines = invoke("doctor", checkout, "--agent", "hpo").output.splitlines()
    interpreter = next(x for x in lines if " interpreter: " in x)
    assert "the training command's program 'no-such-uv' is not found" in interpreter


def proposals(checkout: Path, folder: Path) -> Path:
    base = (checkout / "train.py").read_text()
    bigram = base.replace("CONTEXT = 0 ", "CONTEXT = 1 ")
    folder.mkdir()
    for name, code, why in [
        ("001-bigram", bigram, "Bigram model: one byte of context."),
        ("002-smoothing", bigram.replace("SMOOTHING = 1.0 ", "SMOOTHING = 200.0 "), "Smooth."),
        ("003-no-metric", bigram.replace('f"val_bpb: ', 'f"val_bpx: '), "Rename the line."),
    ]:
        assert code != base
        (folder / f"{name}.py").write_text(code)
        (folder / f"{name}.md").write_text(why)
    return folder


def logged(log: Path, name: str) -> float | None:
    found = [x.split()[1] for x in log.read_text().splitlines() if x.startswith(f"{name}:")]
    return float(found[-1]) if found else None


@needs_bwrap
def test_an_adopted_checkout_runs_the_loop_with_uv_under_the_sandbox(checkout, tmp_path):
    assert invoke("init", "--adopt", checkout).exit_code == 0
    doctor = invoke("doctor", checkout, "--sandbox", "bwrap", "--agent", "hpo").output
    assert "ok   interpreter: command uv run train.py" in doctor, doctor
    assert "ok   sandbox: bubblewrap" in doctor, doctor
    before = hashes(checkout)
    folder = proposals(checkout, tmp_path / "proposals")
    result = invoke(
        "run", checkout, "--agent", "replay", "--replay-dir", folder, "--iterations", "3",
        "--sandbox", "bwrap",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert hashes(checkout) == before  # no __pycache__, no .venv change, nothing

    status = json.loads(invoke("status", checkout, "--json").stdout)
    assert status["metric"] == {
        "name": "val_bpb", "direction": "minimize", "source": "log", "self_reported": True,
    }  # fmt: skip
    its = status["iterations"]
    assert [it["status"] for it in its] == ["baseline", "keep", "discard", "crash"]
    assert its[1]["value"] < its[0]["value"] < its[2]["value"]  # lower is better
    assert its[3]["reason"].startswith("no val_bpb in the log: no line of the log matches")

    store = Store(list_runs(checkout)[-1], readonly=True)
    for it in store.iterations():  # memory is what train.py printed, as in Karpathy's results
        assert it.peak_memory_mb == logged(Path(it.log_path), "peak_vram_mb")
        if it.value is not None:
            assert it.value == logged(Path(it.log_path), "val_bpb")
    assert store.iterations()[1].peak_memory_mb == 0.5  # the bigram table, 256 * 256 * 8 bytes
    with open(store.dir / "results.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [r["memory_gb"] for r in rows] == [
        f"{it.peak_memory_mb / 1024:.2f}" for it in store.iterations()
    ]
    assert rows[1]["description"] == "Bigram model: one byte of context. [self-reported]"
    assert rows[3]["description"] == "Rename the line."  # a crash has no value to mark
    report = (store.dir / "report.md").read_text()  # markdown escapes the _
    assert (
        r"| val\_bpb (self-reported) |" in report
        and r"- metric: val\_bpb is self-reported" in report
    )
    table = invoke("status", checkout).output
    assert "val_bpb*" in table and "* val_bpb is self-reported" in table


CHEAT = """\
import os
import prepare
# Replace the pinned validation text with one byte repeated: any model predicts it perfectly.
with open(os.path.join(prepare.DATA_DIR, "val.bin"), "wb") as f:
    f.write(b"a" * 1000)
print("cheated")
"""


@needs_bwrap
@pytest.mark.parametrize("mode", ["none", "bwrap"])
def test_train_py_cannot_rewrite_the_data_its_evaluation_reads(checkout, home, mode):
    """~/.cache/autoresearch is shown to train.py read-only: the fixed evaluation's data stays."""
    assert invoke("init", "--adopt", checkout).exit_code == 0
    (checkout / "train.py").write_text(CHEAT)
    val = home / ".cache" / "autoresearch" / "data" / "val.bin"
    original = val.read_bytes()
    result = invoke("baseline", checkout, "--json", "--sandbox", mode)
    report = json.loads(result.stdout)
    if mode == "none":  # the attack works: train.py could make its own metric
        assert val.read_bytes() == b"a" * 1000
        assert report["status"] == "crash"  # (it printed no val_bpb)
    else:
        assert val.read_bytes() == original
        assert report["status"] == "crash"
        assert "Read-only file system" in Path(report["log"]).read_text()


def test_adopt_reads_a_checkout_of_karpathys_own_shape(tmp_path):
    """The lines of karpathy/autoresearch that adopt goes by (its prepare.py constants and cache,
    train.py's kernels and summary block, program.md's launch, grep and goal), on a GPU setup."""
    checkout = tmp_path / "autoresearch"
    checkout.mkdir()
    (checkout / "prepare.py").write_text(
        "TIME_BUDGET = 300        # training time budget in seconds (5 minutes)\n"
        'CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "autoresearch")\n'
        "def evaluate_bpb(model, tokenizer, batch_size):\n    pass\n"
    )
    (checkout / "train.py").write_text(
        "from kernels import get_kernel\n"
        'print(f"Time budget: {TIME_BUDGET}s")\n'
        'print("---")\n'
        'print(f"val_bpb:          {val_bpb:.6f}")\n'
        'print(f"training_seconds: {total_training_time:.1f}")\n'
        'print(f"peak_vram_mb:     {peak_vram_mb:.1f}")\n'
    )
    (checkout / "program.md").write_text(
        "4. **Verify data exists**: Check that `~/.cache/autoresearch/` contains the data.\n"
        "You launch it simply as: `uv run train.py`.\n"
        "**The goal is simple: get the lowest val_bpb.**\n"
        "**VRAM** is a soft constraint. Some increase is acceptable for meaningful val_bpb gains\n"
        'grep "^val_bpb:\\|^peak_vram_mb:" run.log\n'
    )
    (checkout / "pyproject.toml").write_text('[project]\nname = "autoresearch"\n')
    result = invoke("init", "--adopt", checkout)
    assert result.exit_code == 0, result.output
    cfg = config.load(checkout)
    assert (cfg.metric, cfg.direction, cfg.metric_source) == ("val_bpb", "minimize", "log")
    assert (cfg.budget_secs, cfg.grace_secs) == (300, 300)  # killed at 10 minutes, as program.md
    assert cfg.command == ["uv", "run", "train.py"] and cfg.memory_metric == "peak_vram_mb"
    assert cfg.readonly_paths == ["~/.cache/autoresearch", "~/.cache/huggingface/hub"]
    assert list(cfg.metrics) == ["val_bpb", "training_seconds", "peak_vram_mb"]
