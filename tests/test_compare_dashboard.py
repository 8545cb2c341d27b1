"""The dashboard's comparison view on real runs (runs_to_compare in conftest.py): /api/compare
against `autoresearch compare --json`, and the page in headless Chromium (as in
test_dashboard_browser.py): the table, its highlights and the overlays, picking runs, and a run
started while the page is open, followed without a reload."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import signed_in
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.store.store import list_runs

AUTORESEARCH = str(Path(sys.executable).parent / "autoresearch")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def compared(ws: Path, *run_ids: str) -> dict:
    result = CliRunner().invoke(app, ["compare", str(ws), *run_ids, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_dashboard_api_compares_as_the_command_does(runs_to_compare):
    ws, ids = runs_to_compare
    client = signed_in(ws)
    every = client.get("/api/compare")
    assert every.status_code == 200
    body, expected = every.json(), compared(ws)
    table = body.pop("table")
    assert body.pop("has_costs") is True  # the claude stand-in's $0.0123 a proposal
    expected.pop("plot")
    assert body == expected  # what `compare --json` says
    assert [row[0] for row in table["rows"]] == [r["run"] for r in expected["runs"]]
    context = table["headers"].index("context")
    assert table["highlighted"][context] is True
    assert table["highlighted"][table["headers"].index("keeps")] is False
    assert [row[context] for row in table["rows"]] == ["full", "truncated", "full"]

    two = client.get("/api/compare", params=[("run", ids["replay"]), ("run", ids["hpo"])])
    assert [r["run"] for r in two.json()["runs"]] == [ids["replay"], ids["hpo"]]
    assert two.json()["has_costs"] is False
    for wrong in ("20990101-000000", "../ws", ".."):
        missing = client.get("/api/compare", params={"run": wrong})
        assert missing.status_code == 404 and "no run" in missing.json()["detail"]


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="no chromium")
def test_the_comparison_page_picks_runs_and_follows_a_new_one(runs_to_compare, tmp_path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "chromium is not installed (scripts/bootstrap installs it)"
    ws, ids = runs_to_compare
    copy = tmp_path / "ws"  # the test adds a run
    shutil.copytree(ws, copy, symlinks=True)
    # the new run's experiments take 5 s each: the page (refreshed every 3 s) sees it running
    train = copy / "train.py"  # the fixture's last one: no torch
    train.write_text(
        train.read_text().replace("import prepare", "import prepare, time\ntime.sleep(5)")
    )
    expected = {r["run"]: r for r in compared(copy)["runs"]}
    server = subprocess.Popen(
        [AUTORESEARCH, "serve", str(copy), "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    new_run = None
    try:
        url = re.search(r"(http://\S+)", server.stderr.readline()).group(1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.locator("a[href='/compare']").click()  # from the runs list
            page.wait_for_selector("#comparison tbody tr.compared")
            assert page.locator("#comparison tbody tr.compared").count() == 3
            for run_id, row in expected.items():
                text = page.locator(f"#comparison tr[data-run='{run_id}']").inner_text()
                assert f"{row['best']:.4f} @{row['best_iteration']}" in text
                assert row["context"] in text and f"{row['budget_secs']:g} s" in text
                line = page.locator(f"#by-iteration .run-line[data-run='{run_id}']")
                assert line.get_attribute("data-points") == str(len(row["best_so_far"]))
            differs = page.locator("#comparison th.differs").all_inner_texts()
            assert "context" in differs and "budget" in differs
            assert "keeps" not in differs
            assert page.locator("#by-cost .run-line").count() == 3  # every cost is known

            page.locator(f"#picker input[value='{ids['claude']}']").uncheck()
            page.wait_for_function(
                "document.querySelectorAll('#comparison tr.compared').length === 2"
            )
            assert f"run={ids['replay']}" in page.url and ids["claude"] not in page.url
            assert page.locator("#by-iteration .run-line").count() == 2
            assert page.locator("#by-cost").is_hidden()  # replay and hpo spent nothing
            assert "budget" not in page.locator("#comparison thead").inner_text()

            page.locator(f"#picker input[value='{ids['claude']}']").check()  # every run again
            page.wait_for_function(
                "document.querySelectorAll('#comparison tr.compared').length === 3"
            )
            page.evaluate("window.notReloaded = true")
            started = subprocess.Popen(
                [AUTORESEARCH, "run", str(copy), "--new", "--agent", "hpo", "--iterations", "1",
                 "--budget", "10", "--grace", "30"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:  # the new run joins the table while it runs, then shows its iteration
                page.wait_for_function(
                    "[...document.querySelectorAll('#comparison tr.compared')]"
                    ".some((row) => row.innerText.includes('(running)'))",
                    timeout=90_000,
                )
            finally:
                assert started.wait(timeout=180) == 0, started.stderr.read()
            new_run = list_runs(copy)[-1].name
            row = f"#comparison tr[data-run='{new_run}']"
            page.wait_for_function(
                f'document.querySelector("{row}") && '
                f"!document.querySelector(\"{row}\").innerText.includes('(running)')",
                timeout=30_000,
            )
            assert page.locator("#comparison tr.compared").count() == 4
            assert page.locator(f"#by-iteration .run-line[data-run='{new_run}']").count() == 1
            assert page.evaluate("window.notReloaded") is True
            assert errors == []
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert new_run not in expected


def round_steps(labels: list[str]) -> bool:
    """Ticks at round values: evenly spaced by 1, 2 or 5 times a power of ten."""
    values = [float(v) for v in labels]
    steps = {round(b - a, 12) for a, b in zip(values, values[1:], strict=False)}
    if len(steps) != 1:
        return False
    [step] = steps
    mantissa = step / 10 ** math.floor(math.log10(step))
    return any(abs(mantissa - m) < 1e-6 for m in (1, 2, 5))


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="no chromium")
def test_the_pages_fit_the_window_and_draw_what_a_run_has(runs_named_and_crashed):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "chromium is not installed (scripts/bootstrap installs it)"
    ws, ids = runs_named_and_crashed
    server = subprocess.Popen(
        [AUTORESEARCH, "serve", str(ws), "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    try:
        printed = re.search(r"(http://\S+)", server.stderr.readline()).group(1)
        base, token = printed.split("/?token=")  # the page keeps the token once opened
        url = base
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/compare?token={token}")
            page.wait_for_selector("#comparison tbody tr.compared")
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280
            rows = page.locator("#comparison tbody tr.compared")
            assert rows.count() == 4  # the run whose baseline crashed never scored: left out
            assert f"left out 1 run that never scored: {ids['crashed']}" in page.inner_text(
                "#notes"
            )
            assert "class 0 sweep" in page.inner_text(f"#comparison tr[data-run='{ids['named']}']")
            assert "class 0 sweep" in page.inner_text(f"#picker label[data-run='{ids['named']}']")
            assert not page.locator(f"#picker input[value='{ids['crashed']}']").is_checked()
            assert round_steps(page.locator("#by-iteration .y-tick").all_text_contents())
            page.locator(f"#picker input[value='{ids['claude']}']").uncheck()  # no costs left
            page.wait_for_function(
                "document.querySelectorAll('#comparison tr.compared').length === 3"
            )
            page.wait_for_function("document.querySelector('#by-cost').hidden")
            chart = page.locator("#by-iteration svg").bounding_box()["width"]
            section = page.locator("#by-iteration").evaluate(
                "e => e.closest('section').clientWidth"
            )
            assert chart > 0.9 * section, (chart, section)  # one panel: the whole width

            page.goto(f"{url}/runs/{ids['crashed']}")
            page.wait_for_selector("#chart p.empty")
            assert "the baseline crashed" in page.inner_text("#chart")
            assert page.locator("#chart svg").count() == 0  # not an empty 0-1 plot

            page.goto(f"{url}/runs/{ids['named']}")
            page.wait_for_selector("svg.chart .point")
            assert page.inner_text("#run-id") == f"{ids['named']} (class 0 sweep)"

            page.goto(f"{url}/runs/{ids['replay']}")  # a keep at 1 of 2 iterations
            page.wait_for_selector("svg.chart .point")
            assert round_steps(page.locator("svg.chart .y-tick").all_text_contents())
            assert round_steps(page.locator("svg.chart .x-tick").all_text_contents())
            points = page.locator("svg.chart polyline.holdout").get_attribute("points").split()
            xy = [tuple(map(float, p.split(","))) for p in points]
            assert len(xy) == 4  # the baseline's holdout, held to the keep; the keep's, to the end
            assert xy[0][1] == xy[1][1] and xy[1][0] == xy[2][0] and xy[2][1] == xy[3][1]
            legend = page.inner_text("#legend")
            assert "holdout (kept)" in legend and "noise band" in legend
            assert page.locator("svg.chart polygon.noise").count() == 1
            assert errors == []
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
