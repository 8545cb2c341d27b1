"""Shared fixtures: the real Fashion-MNIST data, a cache converted once, fresh workspaces."""

from __future__ import annotations

import gc
import gzip
import os
import re
import shutil
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from clirun import Cli, processes_in
from fake_llm_server import STAND_IN_KEY, FakeLLMServer

from autoresearch.core import config
from autoresearch.store import workspace
from autoresearch.training import task
from autoresearch.training.experiment import Trainer, experiments_root

REPO = Path(__file__).resolve().parents[1]
DATA_CANDIDATES = [
    os.environ.get("AUTORESEARCH_DATA_DIR", ""),
    str(REPO.parent / "shared" / "data" / "fashion-mnist"),
    "/usr/share/datasets/fashion-mnist",
]


def find_data() -> Path:
    for candidate in DATA_CANDIDATES:
        if candidate and (Path(candidate) / "t10k-labels-idx1-ubyte.gz").is_file():
            return Path(candidate)
    raise RuntimeError(
        "tests need Fashion-MNIST: ../shared/data/fashion-mnist or the Debian package"
    )


DATA_DIR = find_data()


@pytest.fixture(scope="session", autouse=True)
def data_env(tmp_path_factory):
    """Every test (and every train.py it starts) sees the real data and a shared cache."""
    cache = tmp_path_factory.mktemp("cache")
    keys = ("AUTORESEARCH_DATA_DIR", "AUTORESEARCH_CACHE_DIR", "OMP_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["AUTORESEARCH_DATA_DIR"] = str(DATA_DIR)
    os.environ["AUTORESEARCH_CACHE_DIR"] = str(cache)
    # One thread per training process: tiny models train faster, and a busy machine (two cores
    # shared with the test runner) does not stall OpenMP's spinning threads.
    os.environ["OMP_NUM_THREADS"] = "1"
    yield cache
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def single_run(ws: Path, **loop) -> None:
    """One training per iteration (no noise runs, no confirmation): for tests of the loop's
    mechanics, which count trainings or need one run's value; loop: more [loop] settings."""
    settings = {"noise_runs": 1, "confirm_runs": 0, **loop}
    with open(ws / "autoresearch.toml", "a") as f:
        f.write("\n[loop]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items()))


@pytest.fixture
def ws(tmp_path) -> Path:
    """A fresh Fashion-MNIST workspace whose training interpreter is this one (it has torch),
    its train.py the template trained at least one whole epoch (whole_first_epoch)."""
    directory = tmp_path / "ws"
    workspace.init(directory, "fashion-mnist", sys.executable)
    whole_first_epoch(directory)
    return directory


@pytest.fixture
def cfg(ws) -> config.Config:
    return config.load(ws)


@pytest.fixture
def known_labels(ws: Path) -> None:
    """The test's own answer key, in the workspace: train.py cannot reach the real labels."""
    raw = gzip.decompress((DATA_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes())
    np.save(ws / "known.npy", np.frombuffer(raw, dtype=np.uint8, offset=8))


@pytest.fixture
def reaper(tmp_path):
    """Whatever a failing test leaves behind is killed: the runs clirun.Cli started, and every
    process working in tmp_path."""
    yield
    for cli in Cli.running:
        if cli.proc.poll() is None:
            os.killpg(cli.proc.pid, signal.SIGKILL)
            cli.proc.wait()
    Cli.running.clear()
    for proc in processes_in(tmp_path):
        proc.kill()


CLOCK = re.compile(r"if [^\n]*prepare\.time_left\(\) <= reserve:")  # read every batch


def _stop_when(ws: Path, condition: str, **values) -> None:
    code = (ws / "train.py").read_text()
    assert CLOCK.search(code), "the template reads the clock every batch"
    (ws / "train.py").write_text(_set(CLOCK.sub(f"if {condition}:", code), **values))


def whole_first_epoch(ws: Path) -> None:
    """The template's train.py, its first epoch trained whole however long it takes, the clock
    read from then on: tests give budgets of a few seconds, which a busy machine may spend on
    starting alone, and many need a trained model."""
    _stop_when(ws, "epoch > 0 and prepare.time_left() <= reserve")


def one_epoch(ws: Path) -> None:
    """The template's train.py with larger batches and one whole epoch, however long it takes:
    a second of training on any machine."""
    _stop_when(ws, "epoch == 1", BATCH_SIZE=500)


def _set(code: str, **values) -> str:
    for name, value in values.items():
        old = next(line for line in code.splitlines() if line.startswith(f"{name} = "))
        code = code.replace(old, f"{name} = {value!r}{old[old.index('  #') :]}")
    return code


def started(code: str) -> str:
    """train.py that says so in its log as it starts."""
    return code.replace(
        "def main() -> None:",
        "def main() -> None:\n    print('larger batches: started', flush=True)",
    )


@pytest.fixture(scope="session")
def short_run(tmp_path_factory, data_env) -> Path:
    """A workspace with one real run made by the replay agent (baseline, a keep, a discard; a
    third proposal waits for a resume with --iterations 3). Read it, or copy it to change it."""
    from typer.testing import CliRunner

    from autoresearch.cli.app import app

    root = tmp_path_factory.mktemp("short-run")
    directory = root / "ws"
    workspace.init(directory, "fashion-mnist", sys.executable)
    _stop_when(directory, "epoch == 1")  # one whole epoch each: a keep however busy the machine
    base = (directory / "train.py").read_text()
    mlp = _set(base, OPTIMIZER="adam", LEARNING_RATE=0.001, HIDDEN_UNITS=128, NORMALIZE=True)
    proposals = root / "proposals"
    proposals.mkdir()
    for name, code, text in [
        ("001-mlp", mlp, "MLP with Adam\n\nA hidden layer and Adam converge faster."),
        ("002-tiny-lr", _set(mlp, LEARNING_RATE=1e-06), "Tiny learning rate\n\nTo see."),
        ("003-batch", started(_set(mlp, BATCH_SIZE=64)), "Larger batches\n\nMore images a second."),
    ]:
        (proposals / f"{name}.py").write_text(code)
        (proposals / f"{name}.md").write_text(text)
    argv = ["run", str(directory), "--agent", "replay", "--replay-dir", str(proposals)]
    result = CliRunner().invoke(app, [*argv, "--iterations", "2", "--budget", "3", "--grace", "30"])
    assert result.exit_code == 0, result.output
    gc.collect()  # the run's store connection, closed as when its process ends
    return directory


# A train.py without torch: every image is called class 0 (a score of 0.1), in a second.
CLASS_0 = """\
import numpy as np
import prepare

# --- hyperparameters (autoresearch: hpo) ---
PREDICTION = 0  # int[0, 9]
# --- end hyperparameters ---
prepare.save_predictions(np.full(10000, PREDICTION, dtype=np.int64))
"""


@pytest.fixture(scope="session")
def runs_to_compare(short_run, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A copy of the short run's workspace with two more real runs: its replay run (full
    context, 3 s), hpo (truncated context, 3 s) and the claude stand-in ($0.0123 a proposal,
    4 s, on a train.py without torch, as its edit changes nothing); {agent: run id}."""
    from typer.testing import CliRunner

    from autoresearch.cli.app import app
    from autoresearch.store.store import list_runs

    directory = tmp_path_factory.mktemp("compare") / "ws"
    shutil.copytree(short_run, directory, symlinks=True)
    ids = {"replay": list_runs(directory)[0].name}

    def start(*args: str) -> str:
        argv = ["run", str(directory), "--new", "--grace", "30", "--iterations", "2", *args]
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, result.output
        return list_runs(directory)[-1].name

    # batch 512: an epoch in about a second, so that a 3 s budget trains something
    train = directory / "train.py"
    train.write_text(_set(train.read_text(), BATCH_SIZE=512))
    ids["hpo"] = start("--agent", "hpo", "--context", "truncated", "--budget", "3")
    train.write_text(CLASS_0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{Path(__file__).parent / 'bin'}{os.pathsep}{os.environ['PATH']}")
        mp.setenv("FAKE_CLAUDE_MODE", "edit")
        ids["claude"] = start("--agent", "claude", "--budget", "4")
    return directory, ids


@pytest.fixture(scope="session")
def runs_named_and_crashed(runs_to_compare, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A copy of runs_to_compare's workspace with two more runs on its train.py without torch:
    one whose baseline crashed (it never scored), then one named "class 0 sweep" (--name), its
    baseline and, resumed without --name, one hpo iteration; {"crashed": id, "named": id, ...}."""
    from typer.testing import CliRunner

    from autoresearch.cli.app import app
    from autoresearch.store.store import list_runs

    source, ids = runs_to_compare
    directory = tmp_path_factory.mktemp("named") / "ws"
    shutil.copytree(source, directory, symlinks=True)
    train = directory / "train.py"
    good = train.read_text()
    argv = ["run", str(directory), "--agent", "hpo", "--budget", "3", "--grace", "30"]
    train.write_text(good.replace("prepare.save_predictions", "raise SystemExit('no model')\n#"))
    crashed = CliRunner().invoke(app, [*argv, "--new", "--iterations", "1"])
    assert crashed.exit_code == 3, crashed.output  # stopped: its baseline failed
    found = {**ids, "crashed": list_runs(directory)[-1].name}
    train.write_text(good)
    for more in (["--new", "--iterations", "0", "--name", "class 0 sweep"], ["--iterations", "1"]):
        result = CliRunner().invoke(app, [*argv, *more])
        assert result.exit_code == 0, result.output
    found["named"] = list_runs(directory)[-1].name
    return directory, found


@pytest.fixture
def api_keys(monkeypatch):
    """No real endpoint or proxy can be reached; both providers' keys are a known secret."""
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.setenv(name, STAND_IN_KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.fixture
def server():
    """The stand-in LLM API on 127.0.0.1 (fake_llm_server.py)."""
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
def sandboxed_training(ws):
    """For tests that train() in ws: the experiment folders and data view made outside it are
    removed afterwards."""
    yield
    shutil.rmtree(experiments_root(ws / "store"), ignore_errors=True)


def train(ws: Path, body: str, **settings) -> tuple[object, Path]:
    """Train body as train.py in a fresh experiment of ws through the real Trainer (sandbox,
    environment, data view, limits, trusted scoring); (outcome, experiment directory)."""
    cfg = config.load(ws, {"budget_secs": 20, "grace_secs": 2, **settings})
    task.ensure_data(ws, cfg)
    root = experiments_root(ws / "store")
    trainer = Trainer.prepare(ws, cfg, root)
    workdir = workspace.copy_for_experiment(ws, root / "0001", textwrap.dedent(body))
    return trainer.run(workdir, ws / "out"), workdir


class PeakRss:
    """This process's largest resident memory while the block runs, sampled every 10 ms."""

    def __enter__(self):
        self.me = psutil.Process()
        self.start, self.peak, self.running = self.me.memory_info().rss, 0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.me.memory_info().rss)
            time.sleep(0.01)

    def __exit__(self, *_):
        self.running = False
        self.thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


LOCAL = "http://127.0.0.1"  # the Host a local browser sends to the dashboard
TOKEN = "s3cret"


def signed_in(ws: Path, base_url: str = LOCAL):
    """The dashboard app (a TestClient) as a local browser that opened the address `serve`
    printed reaches it: with its token."""
    from fastapi.testclient import TestClient

    from autoresearch.web.app import create_app

    return TestClient(
        create_app(ws, TOKEN), base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}
    )
