"""The hidden holdout: recorded with every run, in `status --json` and the report, and never in
a prompt; `holdout = false` returns to decisions on all 10,000 test images."""

from __future__ import annotations

import gzip

import numpy as np
from conftest import DATA_DIR
from noisy import loop_run, noisy_script

from autoresearch.core.text import fmt

HOLDOUT = "holdout_val_accuracy"


def test_the_holdout_is_recorded_reported_and_never_shown_to_the_agent(ws, known_labels, tmp_path):
    (ws / "train.py").write_text(noisy_script(2000))
    proposals = {
        "001-better.py": noisy_script(5000),
        "002-worse.py": noisy_script(1000),
        "003-best.py": noisy_script(6500),
    }
    snap = loop_run(ws, proposals, tmp_path)
    its = snap["iterations"]
    assert [it["status"] for it in its] == ["baseline", "keep", "discard", "keep"]
    assert all(set(it["metrics"]) == {HOLDOUT} for it in its)
    assert all(0 < it["metrics"][HOLDOUT] < 1 for it in its)

    run = next((ws / ".autoresearch" / "runs").iterdir())
    prompts = [p.read_text() for p in sorted(run.glob("iterations/*/prompt.md"))]
    assert len(prompts) == 3
    assert fmt(its[0]["value"]) in prompts[0]  # the decision metric is shown ...
    assert "Run-to-run noise" in prompts[0]  # ... with the noise floor
    for text in prompts:  # ... the holdout never, neither by name nor by value
        assert "holdout" not in text.lower()
        for it in its:
            assert fmt(it["metrics"][HOLDOUT]) not in text

    report = (run / "report.md").read_text()
    assert "## Decision and holdout" in report
    best = its[3]
    gap = best["value"] - best["metrics"][HOLDOUT]
    assert f"| 3 (best) | {fmt(best['value'])} | {fmt(best['metrics'][HOLDOUT])} |" in report
    assert f"gap {gap:+.4f}" in report
    assert "selection bias" in report
    assert "| 2 " not in report.split("## Decision and holdout")[1].split("##")[0]  # kept only


def test_holdout_false_decides_on_all_10000_images(ws, known_labels, tmp_path):
    (ws / "train.py").write_text(noisy_script(2000, sd=0))
    with open(ws / "autoresearch.toml", "a") as f:
        f.write("\nholdout = false\n")
    snap = loop_run(ws, {"001-same.py": noisy_script(2000, sd=0, tag="again")}, tmp_path)
    base, again = snap["iterations"]
    raw = gzip.decompress((DATA_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes())
    labels = np.frombuffer(raw, dtype=np.uint8, offset=8)
    expected = (2000 + (labels[2000:] == 0).sum()) / 10000
    assert base["values"] == [expected] * 3 and base["metrics"] == {}
    assert again["status"] == "discard" and again["values"] == [expected]
    run = next((ws / ".autoresearch" / "runs").iterdir())
    assert "## Decision and holdout" not in (run / "report.md").read_text()
