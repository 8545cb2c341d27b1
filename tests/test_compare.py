"""`autoresearch compare` on real short runs of one workspace (runs_to_compare in conftest.py:
replay, hpo with the truncated context, the claude stand-in that reports a cost), checked
against what `status --json` says of each run; runs of another metric, direction or prepare.py
are refused, by the command and the dashboard's API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import signed_in
from matplotlib.image import imread
from rich.console import Console
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core import config
from autoresearch.loop.runs import create
from autoresearch.views.compare import compare, gain_reached_at
from autoresearch.views.compare_plot import figure
from autoresearch.views.compare_table import render

cli = CliRunner()
AUTORESEARCH = str(Path(sys.executable).parent / "autoresearch")
LOCAL = "http://127.0.0.1"  # the Host a local browser sends
GRACE = ["--grace", "30"]  # a busy machine starts torch slowly


def invoke(*args: str, **env: str):
    return cli.invoke(app, [str(a) for a in args], env=env or None)


def status(ws: Path, run_id: str) -> dict:
    result = invoke("status", ws, "--run", run_id, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def start(ws: Path, *args: str) -> str:
    """A new run of the workspace, to its end; its id."""
    result = invoke("run", ws, "--new", *GRACE, *args)
    assert result.exit_code == 0, result.output
    return json.loads(invoke("status", ws, "--json").stdout)["run"]


def compared(ws: Path, *run_ids: str) -> dict:
    result = invoke("compare", ws, *run_ids, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def running_best(entries: list[dict], maximize: bool = True) -> list[float | None]:
    best, out = None, []
    for e in entries:
        if e["status"] in ("baseline", "keep") and e["value"] is not None:
            if best is None or (e["value"] > best if maximize else e["value"] < best):
                best = e["value"]
        out.append(best)
    return out


def test_the_table_holds_what_each_run_store_says(runs_to_compare):
    ws, ids = runs_to_compare
    data = compared(ws)
    assert data["metric"] == "val_accuracy" and data["direction"] == "maximize"
    assert [r["run"] for r in data["runs"]] == sorted(ids.values())  # every run, oldest first
    by_id = {r["run"]: r for r in data["runs"]}
    for name, run_id in ids.items():
        row, snap = by_id[run_id], status(ws, run_id)
        entries = snap["iterations"]
        assert row["state"] == snap["state"] == "finished"
        assert row["agent"] == name
        assert row["iterations"] == len(entries) - 1 == 2
        assert row["keeps"] == sum(e["status"] == "keep" for e in entries)
        assert (row["best_iteration"], row["best"]) == (
            snap["best"]["iteration"],
            snap["best"]["value"],
        )
        assert row["baseline"] == entries[0]["value"] is not None
        assert row["cost_usd"] == snap["cost_usd"]
        assert row["cost_per_iteration"] == pytest.approx(snap["cost_usd"] / 2)
        curve = running_best(entries)
        assert row["best_so_far"] == curve
        total, cumulative = 0.0, []
        for e in entries:
            total += e["cost_usd"]
            cumulative.append(pytest.approx(total))
        assert row["cumulative_cost"] == cumulative
        gain = curve[-1] - curve[0]
        expect = next((n for n, b in enumerate(curve) if b - curve[0] >= 0.95 * gain), None)
        assert row["iterations_to_gain"] == (expect if gain else None)
        # the template's hidden holdout, at the best iteration
        best = entries[snap["best"]["iteration"]]["metrics"]
        assert row["holdout"] == best and set(best) == {"holdout_val_accuracy"}
    assert by_id[ids["claude"]]["cost_usd"] == pytest.approx(2 * 0.0123)
    assert by_id[ids["hpo"]]["cost_usd"] == 0
    assert by_id[ids["replay"]]["context"] == "full"
    assert by_id[ids["hpo"]]["context"] == "truncated"
    assert data["plot"] is None  # --json: the numbers, no picture

    # the terminal table shows the same numbers (where it fits: 250 columns)
    result = invoke("compare", ws, COLUMNS="250")
    assert result.exit_code == 0, result.output
    costs = {"replay": ("$0.00", "$0.00"), "hpo": ("$0.00", "$0.00"),
             "claude": ("$0.0246", "$0.0123")}  # fmt: skip
    for name, run_id in ids.items():
        row = by_id[run_id]
        # its row, then the line of its settings that have no column
        line, differs = [line for line in result.stdout.splitlines() if line.startswith(run_id)]
        replay_dir = row["settings"]["agent.replay_dir"] or "(unset)"
        assert differs == f"{run_id} differs in: agent.replay_dir {replay_dir}"
        to_gain = "-" if row["iterations_to_gain"] is None else str(row["iterations_to_gain"])
        expected = [
            run_id, name, f"{row['budget_secs']:g}", "s", row["context"], "2",
            str(row["keeps"]), f"{row['best']:.4f}", f"@{row['best_iteration']}",
            f"{row['holdout']['holdout_val_accuracy']:.4f}", *costs[name], to_gain,
        ]  # fmt: skip
        cells = iter(line.split())  # in this order, with the confirmation settings among them
        assert all(any(cell == want for cell in cells) for want in expected), line
    assert "budgets differ (3 s, 4 s)" in result.stdout
    # the settings that are the same in every run: once, under the table
    assert "every run: strategist off, confirmation noise_runs 3, confirm_runs 2" in result.stdout
    assert f"wrote {ws / '.autoresearch' / 'compare.png'}" in result.stderr


def test_the_settings_in_which_runs_differ_are_named_and_highlighted(runs_to_compare):
    ws, ids = runs_to_compare
    data = compared(ws)
    differing = set(data["differing"])
    assert {"agent.name", "loop.context", "budget_secs", "agent.replay_dir"} <= differing
    assert not differing & {"metric", "direction", "grace_secs", "loop.iterations", "python"}
    assert data["budgets_differ"] is True
    by_id = {r["run"]: r for r in data["runs"]}
    assert by_id[ids["hpo"]]["settings"]["loop.context"] == "truncated"
    assert set(by_id[ids["hpo"]]["settings"]) == differing

    md = invoke("compare", ws, "--markdown")
    assert md.exit_code == 0, md.output
    header, rule, *rows = md.stdout.splitlines()[:5]
    assert "**budget**" in header and "**context**" in header
    assert "| iters |" in header  # not a differing setting: not bold
    assert rule.count("---") == header.count(" | ") + 1
    [hpo_row] = [row for row in rows if ids["hpo"] in row]
    assert "| **truncated** |" in hpo_row and "| **3 s** |" in hpo_row

    console = Console(record=True, width=250, force_terminal=True, color_system="standard")
    render(compare(ws), console)
    ansi = console.export_text(styles=True)
    assert "\x1b[1;33mtruncated" in ansi  # bold yellow
    assert "\x1b[1;33mkeeps" not in ansi


def test_a_subset_of_runs_differs_only_where_those_differ(runs_to_compare):
    ws, ids = runs_to_compare
    data = compared(ws, ids["replay"], ids["hpo"])
    assert [r["run"] for r in data["runs"]] == [ids["replay"], ids["hpo"]]
    assert "budget_secs" not in data["differing"] and data["budgets_differ"] is False
    assert "loop.context" in data["differing"]
    one = compared(ws, ids["claude"])
    assert one["differing"] == [] and len(one["runs"]) == 1

    result = invoke("compare", ws, "20990101-000000")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no run '20990101-000000'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_compare_png_has_one_line_per_run_against_iteration_and_cost(runs_to_compare):
    ws, ids = runs_to_compare
    assert invoke("compare", ws).exit_code == 0  # compare.png in the workspace, as by default
    cmp = compare(ws)
    fig = figure(cmp)
    by_iteration, by_cost = fig.axes  # the claude run has costs: the cost panel is drawn
    drawn = {line.get_label().split(" ")[0]: line for line in by_iteration.get_lines()}
    assert set(drawn) == set(ids.values())
    for row in cmp.runs:
        line = drawn[row.run]
        assert list(line.get_xdata()) == list(range(len(row.best_so_far)))
        assert list(line.get_ydata()) == row.best_so_far
    costs = {line.get_label(): line for line in by_cost.get_lines()}
    assert set(costs) == set(ids.values())  # every cost is known ($0 for replay and hpo)
    claude = next(r for r in cmp.runs if r.run == ids["claude"])
    assert list(costs[claude.run].get_xdata()) == pytest.approx([0, 0.0123, 0.0246])
    assert list(costs[claude.run].get_ydata()) == claude.best_so_far
    assert by_cost.get_xlabel() == "cumulative agent cost ($)"

    out = ws.parent / "elsewhere.png"
    result = invoke("compare", ws, ids["replay"], ids["hpo"], "--plot", out)
    assert result.exit_code == 0, result.output
    image = imread(out)
    assert image.shape[1] < 1000  # no cost panel: replay and hpo spent nothing
    wide = imread(ws / ".autoresearch" / "compare.png")
    assert wide.shape[1] > 1.8 * image.shape[1]


def test_runs_of_another_metric_direction_or_prepare_py_are_refused(runs_to_compare, tmp_path):
    ws, ids = runs_to_compare
    moved = tmp_path / "moved"
    shutil.copytree(ws, moved, symlinks=True)  # a moved workspace: its runs still compare
    assert compared(moved)["runs"][0]["best"] == compared(ws)["runs"][0]["best"]
    # a run as `run` creates it, before its loop has recorded prepare.py: named, it joins, empty
    starting = create(moved, config.load(moved), config.load(moved)).run_id
    [row] = [r for r in compared(moved, ids["hpo"], starting)["runs"] if r["run"] == starting]
    assert (row["iterations"], row["best"], row["best_so_far"]) == (0, None, [])

    toml = moved / "autoresearch.toml"
    original = toml.read_text()
    toml.write_text(original.replace('direction = "maximize"', 'direction = "minimize"'))
    assert toml.read_text() != original
    minimize = start(moved, "--agent", "hpo", "--iterations", "0", "--budget", "2")
    result = invoke("compare", moved)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: run {minimize} scores val_accuracy (minimize), run {ids['replay']} "
        "val_accuracy (maximize): compare runs of one metric and direction\n"
    )
    refused = signed_in(moved).get("/api/compare")
    assert refused.status_code == 409  # the dashboard says the same line
    assert refused.json()["detail"] == result.stderr.removeprefix("error: ").strip()

    toml.write_text(original)
    with (moved / "prepare.py").open("a") as f:
        f.write("\n# another task\n")
    other_task = start(moved, "--agent", "hpo", "--iterations", "0", "--budget", "2")
    result = invoke("compare", moved, ids["hpo"], other_task)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: run {other_task} ran another task than run ")
    assert len(result.stderr.splitlines()) == 1
    assert compared(moved, ids["hpo"], ids["claude"])["budgets_differ"] is True


def test_compare_in_80_columns_names_runs_and_leaves_out_those_that_never_scored(
    runs_named_and_crashed, tmp_path
):
    ws, ids = runs_named_and_crashed
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("FORCE_COLOR", None)
    png = ws / ".autoresearch" / "compare.png"
    png.unlink(missing_ok=True)
    shown = subprocess.run(
        [AUTORESEARCH, "compare", str(ws)], capture_output=True, text=True, env=env, check=True
    )
    lines = shown.stdout.splitlines()
    assert max(map(len, lines)) <= 80, shown.stdout  # nothing for the terminal to wrap
    assert f"{ids['named']} (class 0 sweep)" in shown.stdout or "class 0 sweep" in shown.stdout
    assert ids["crashed"] not in [line.split(" ")[0] for line in lines[:-1]]
    assert f"left out 1 run that never scored: {ids['crashed']}" in shown.stdout
    assert "loop.iterations" not in shown.stdout  # resumed with --iterations: not a difference
    for run_id in (ids["replay"], ids["hpo"], ids["claude"], ids["named"]):
        block = next(n for n, line in enumerate(lines) if line.startswith(run_id))
        assert "best" in lines[block + 1] + lines[block + 2]  # its numbers, under its id
    assert f"wrote {png}" in shown.stderr and png.is_file()

    data = json.loads(subprocess.run(
        [AUTORESEARCH, "compare", str(ws), "--json"], capture_output=True, text=True, env=env,
        check=True,
    ).stdout)  # fmt: skip
    assert ids["crashed"] not in [r["run"] for r in data["runs"]]
    assert {r["run"]: r["name"] for r in data["runs"]}[ids["named"]] == "class 0 sweep"
    png.unlink()
    for asked in ("--json", "--markdown"):  # a table asked for: no picture written
        quiet = subprocess.run(
            [AUTORESEARCH, "compare", str(ws), asked], capture_output=True, text=True, env=env
        )
        assert quiet.returncode == 0 and quiet.stderr == "" and not png.exists()
    named = compared(ws, ids["crashed"], ids["named"])  # named: compared, scored or not
    assert [r["best"] is None for r in named["runs"]] == [True, False]

    inside = subprocess.run(  # in the workspace: both are runs, not the first the folder
        [AUTORESEARCH, "compare", ids["hpo"], ids["named"], "--markdown"],
        capture_output=True, text=True, env=env, cwd=ws,
    )  # fmt: skip
    assert inside.returncode == 0, inside.stderr
    assert ids["hpo"] in inside.stdout and ids["named"] in inside.stdout
    assert "| class 0 sweep |" in inside.stdout and ids["replay"] not in inside.stdout


@pytest.mark.parametrize(
    "curve, at",
    [
        ([0.5, 0.5, 0.8, 0.9, 0.9], 3),  # 0.4 gained: 0.88 reached at 3
        ([0.5, 0.89, 0.89, 0.9], 1),  # 0.39 of 0.4 is 97.5%
        ([2.0, 1.5, 1.0, 1.0], 2),  # minimize: a gain is a fall
        ([0.5, 0.5], None),  # no gain
        ([None, None], None),  # no baseline score
    ],
)
def test_iterations_to_95_percent_of_the_gain(curve, at):
    assert gain_reached_at(curve) == at
