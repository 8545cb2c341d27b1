"""The dashboard in a real browser (Debian's headless Chromium, driven by Playwright) against
`autoresearch serve` on a store made by a real run: the page shows the run, its chart has a point
per iteration, a click shows an iteration's diff, and an iteration recorded while the page is open
appears without a reload, the live phase with it. The tree view of a run with the tree search
(the real driver over the fake engine): the edges, the best's line, a node picking its iteration.

DASHBOARD_SCREENSHOT=docs/dashboard.png also saves the page as the README and the docs show it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch.store.store import list_runs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs chromium (scripts/bootstrap): there a missing browser fails these tests.
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="no chromium")
AUTORESEARCH = str(Path(sys.executable).parent / "autoresearch")


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "chromium is not installed (scripts/bootstrap installs it)"
    with sync_playwright() as p:
        # --no-sandbox: Chromium's own sandbox needs user namespaces a container may not allow
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def served(short_run, tmp_path):
    """A copy of the short run's workspace (the test adds an iteration), served."""
    ws = tmp_path / "ws"
    shutil.copytree(short_run, ws, symlinks=True)
    proc = subprocess.Popen(
        [AUTORESEARCH, "serve", str(ws), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    url = re.search(r"(http://\S+)", proc.stderr.readline()).group(1)
    yield ws, url
    proc.terminate()
    proc.wait(timeout=10)


def test_the_dashboard_follows_a_run(served, browser):
    ws, url = served
    run_id = list_runs(ws)[0].name
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    link = page.locator(f"#runs a:text('{run_id}')")
    link.wait_for()
    assert "finished" in page.locator(f"tr[data-run='{run_id}']").inner_text()
    link.click()

    page.wait_for_selector("svg.chart .point")
    assert page.locator("#run-id").inner_text() == run_id
    assert page.locator("svg.chart .point").count() == 3  # baseline, keep, discard
    assert page.locator("svg.chart .point.status-keep").count() == 1
    assert "best val_accuracy" in page.locator("#summary").inner_text()
    assert page.locator("#iterations tbody tr").count() == 3
    # the run's noise floor (3 baseline runs) as a band, its hidden holdout as a kept trajectory
    assert page.locator("svg.chart polygon.noise").count() == 1
    assert page.locator("svg.chart polyline.holdout").count() == 1
    assert "noise sigma" in page.locator("#summary").inner_text()

    page.locator("#iterations tr[data-iteration='1']").click()
    diff = page.locator("#detail pre.diff")
    diff.wait_for()
    facts = page.locator("#detail").inner_text()
    assert "holdout_val_accuracy" in facts and "seeds" in facts
    assert "+LEARNING_RATE = 0.001" in diff.inner_text()
    assert "Adam converge faster." in page.locator("#detail pre.explanation").inner_text()
    assert "epoch 1" in page.locator("#detail pre.log").inner_text()
    page.locator("svg.chart .point[data-iteration='2']").click()  # a point picks one too
    page.wait_for_function("document.querySelector('#detail h2').textContent.includes('2')")
    assert "LEARNING_RATE = 1e-06" in page.locator("#detail pre.diff").inner_text()

    page.evaluate("window.notReloaded = true")
    shot = os.environ.get("DASHBOARD_SCREENSHOT")
    resume = subprocess.Popen(
        [AUTORESEARCH, "run", str(ws), "--iterations", "3"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:  # the live phase, then the new iteration's point: no reload
        page.wait_for_selector("#live:not([hidden])", timeout=60_000)
        page.wait_for_function(
            "document.querySelector('#phase').textContent.includes('iteration 3: training')",
            timeout=60_000,
        )
        assert "Larger batches" in page.locator("#phase").inner_text()
        assert "of the budget left" in page.locator("#phase").inner_text()
        if shot:  # the docs' picture: a run going on, an iteration picked
            page.locator("#iterations tr[data-iteration='1']").click()
            page.locator("#detail pre.diff").wait_for()
            page.screenshot(path=shot, full_page=True)
        page.wait_for_function(
            "document.querySelectorAll('svg.chart .point').length === 4", timeout=90_000
        )
    finally:
        assert resume.wait(timeout=120) == 0, resume.stderr.read()
    assert page.evaluate("window.notReloaded") is True
    page.wait_for_selector("#live", state="hidden", timeout=30_000)
    assert page.locator("#iterations tbody tr").count() == 4
    assert "Larger batches" in page.locator("#iterations tr[data-iteration='3']").inner_text()
    assert "3 of 3 iterations" in page.locator("#summary").inner_text()
    assert errors == []


@pytest.fixture
def tree_served(tmp_path):
    """A run with the tree search made by the real driver over the fake engine: 1 and 3 are
    kept, 2 (from 1) a near miss, 4 merges 2 into 3 and is the best (as tests/test_search.py)."""
    from autoresearch.core.config import Config
    from autoresearch.loop.fake_run import fake_run
    from autoresearch.store.layout import runs_dir
    from autoresearch.training.fake_engine import FakeEngine, Outcome

    ws = tmp_path / "ws"
    values = {0: (0.49, 0.5, 0.51), 1: (0.6,), 2: (0.595,), 3: (0.62,), 4: (0.66,)}
    cfg = Config.model_validate({
        "loop": {"noise_runs": 3, "confirm_runs": 0, "iterations": 4},
        "search": {"policy": "tree", "combine_every": 4},
    })  # fmt: skip
    engine = FakeEngine(1, lambda job: Outcome(1, values[job.n][job.k]))
    _, store, _ = fake_run(runs_dir(ws) / "20261207-000000", cfg, engine, True)
    store.close()
    proc = subprocess.Popen(
        [AUTORESEARCH, "serve", str(ws), "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    yield re.search(r"(http://\S+)", proc.stderr.readline()).group(1)
    proc.terminate()
    proc.wait(timeout=10)


def test_the_tree_view_draws_parents_marks_the_best_line_and_picks_a_node(tree_served, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(tree_served)
    page.locator("#runs a:text('20261207-000000')").click()
    page.wait_for_selector("#tree-list li")
    assert page.locator("#tree").is_visible()

    def children(n: int) -> list[int]:  # the nodes drawn right under n: its children
        return [int(x) for x in page.locator(f"#tree-list li[data-iteration='{n}'] > ul > li")
                .evaluate_all("nodes => nodes.map(n => n.dataset.iteration)")]  # fmt: skip

    roots = page.locator("#tree-list > li").evaluate_all("ns => ns.map(n => n.dataset.iteration)")
    assert roots == ["0"]
    assert (children(0), children(1), children(2), children(3)) == ([1], [2, 3], [], [4])
    merge = page.locator("#tree-list li[data-iteration='4']")
    assert "(merges 2)" in merge.inner_text()  # the second parent, named
    # the best (4) is marked, its line (0, 1, 3, 4) in bold, the near miss (2) not
    assert page.locator("#tree-list li.best").evaluate("n => n.dataset.iteration") == "4"
    assert "★ best" in merge.inner_text() and page.locator("#tree-list .best-mark").count() == 1
    line = page.locator("#tree-list li.best-line").evaluate_all(
        "ns => ns.map(n => n.dataset.iteration)"
    )
    assert sorted(line) == ["0", "1", "3", "4"]
    weight = "n => getComputedStyle(n.querySelector(':scope > span')).fontWeight"
    assert merge.evaluate(weight) == "700"
    assert page.locator("#tree-list li[data-iteration='2']").evaluate(weight) != "700"

    page.locator("#tree-list li[data-iteration='2'] > span").click()  # a node picks its iteration
    page.wait_for_function(
        "document.querySelector('#detail h2')?.textContent.includes('Iteration 2')"
    )
    assert "discard" in page.locator("#detail h2").inner_text()
    assert "parent\t1" in page.locator("#detail table.facts").last.inner_text()
    page.locator("#tree-list li[data-iteration='4'] > span").click()
    page.wait_for_function(
        "document.querySelector('#detail h2').textContent.includes('Iteration 4')"
    )
    assert page.locator("#detail pre.explanation").inner_text() == "idea 4"
    assert errors == []
