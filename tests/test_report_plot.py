"""progress.png keeps the progress readable: the y-axis on the useful range (an outlier drawn
at the edge, not squashing the keeps), each keep labelled with its description, drawn as written
(no mathtext); a picture that cannot be drawn never costs report.md or compare's table."""

import os
import subprocess
from pathlib import Path

from clirun import AUTORESEARCH, cli

from autoresearch.core import config
from autoresearch.core.records import Iteration
from autoresearch.store.gitrepo import ExperimentRepo
from autoresearch.store.layout import runs_dir
from autoresearch.store.store import Store
from autoresearch.views.report import figure, plot, useful_range


def history() -> list[Iteration]:
    made = [Iteration(0, "baseline", value=0.840, explanation="Baseline")]
    values = [0.846, 0.843, 0.40, 0.851, 0.849, None, 0.855]
    statuses = ["keep", "discard", "discard", "keep", "discard", "crash", "keep"]
    for n, (value, status) in enumerate(zip(values, statuses, strict=True), start=1):
        made.append(Iteration(n, status, value=value, explanation=f"change {n}\n\nwhy"))
    return made


def test_an_outlier_does_not_squash_the_keeps(cfg):
    low, high = useful_range(history())
    assert 0.40 < low < 0.840 and 0.855 < high < 0.9  # every keep and discard near them
    assert (0.855 - 0.840) / (high - low) > 0.25  # the keeps span a quarter of the axis or more
    fig = figure(history(), cfg)
    ax = fig.axes[0]
    assert ax.get_ylim() == (low, high)
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["change 1", "change 4", "change 7"]  # the keeps, by their descriptions
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "off the scale" in legend and "crash / invalid" in legend
    assert plot(history(), cfg)[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_flat_run_and_an_empty_one_still_plot(cfg):
    flat = [Iteration(0, "baseline", value=0.5), Iteration(1, "discard", value=0.5)]
    low, high = useful_range(flat)
    assert low < 0.5 < high
    assert useful_range([Iteration(0, "crash")]) is None
    assert plot([Iteration(0, "crash")], cfg)[:4] == b"\x89PNG"


# What agents write: mathtext markup, an unknown macro, lone dollars and backslashes.
MARKUP = [r"$\undefinedmacro{x}$ in the loss", "$", "\\", "a_^{b", "$$", r"5$ and $\frac{1}$"]


def recorded_run(ws: Path, run_id: str, explanations: list[str], metric: str = "") -> Store:
    """A finished run: the baseline and a keep for each explanation, as the loop records them."""
    cfg = config.load(ws)
    cfg.metric = metric or cfg.metric
    store = Store.create(runs_dir(ws) / run_id, cfg.model_dump())
    repo = ExperimentRepo(store.dir / "repo")
    parent = None
    for n, text in enumerate(["Baseline", *explanations]):
        it = Iteration(n, "keep" if n else "baseline", value=0.5 + n / 100, explanation=text)
        it.train_py = f"print({n})\n"
        it.commit = parent = repo.commit({"train.py": it.train_py}, "x", parent)
        repo.set_ref("refs/heads/best", it.commit)
        store.record(it)
    store.set(state="finished", stop_reason="done")
    store.close()
    return store


def test_markup_in_descriptions_is_drawn_as_written(ws):
    store = recorded_run(ws, "20260101-000000", [f"{text}\n\nwhy" for text in MARKUP])
    done = cli("report", str(ws))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no "could not be drawn"
    assert (store.dir / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (store.dir / "report.md").read_text()
    assert "![progress](progress.png)" in report and "undefinedmacro" in report
    fig = figure(Store(store.dir).iterations(), config.load(ws))
    assert [t.get_text() for t in fig.axes[0].texts] == MARKUP  # each keep's label, as written


def test_compare_png_draws_markup_in_run_and_metric_names(ws):
    metric = r"$\undefinedmacro{x}$ acc_^{"
    for run_id in ("20260101-000000", r"run-$\undefinedmacro{y}$"):
        recorded_run(ws, run_id, MARKUP[:2], metric=metric)
    out = ws.parent / "compare.png"
    done = cli("compare", str(ws), "--plot", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == f"wrote {out}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_plot_that_cannot_be_drawn_costs_only_the_picture(ws, tmp_path):
    """A matplotlibrc asking for an image larger than Agg draws: report.md is written all the same,
    saying why there is no picture, and an older progress.png is not shown as this run's."""
    store = recorded_run(ws, "20260101-000000", ["Wider\n\nwhy"])
    (store.dir / "progress.png").write_bytes(b"an older picture")
    rc = tmp_path / "matplotlibrc"
    rc.write_text("savefig.dpi: 10000000\n")
    env = {**os.environ, "MATPLOTLIBRC": str(rc)}
    done = subprocess.run(
        [AUTORESEARCH, "report", str(ws)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("progress.png could not be drawn: ValueError: Image size")
    assert len(done.stderr.splitlines()) == 1
    report = (store.dir / "report.md").read_text()
    assert "progress.png could not be drawn" in report and "![progress]" not in report
    assert "### Iteration 1: 0.5100" in report
    assert not (store.dir / "progress.png").exists()
    compared = subprocess.run(
        [AUTORESEARCH, "compare", str(ws)], capture_output=True, text=True, env=env
    )
    assert compared.returncode == 0, compared.stderr
    assert "20260101-000000" in compared.stdout  # the table, without its picture
    assert compared.stderr.startswith("compare.png could not be drawn: ValueError")
