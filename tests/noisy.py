"""train.py scripts whose score depends on the seed (they need the known_labels fixture), and a
replay run of them through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from autoresearch.cli.app import app

cli = CliRunner()


def noisy_script(correct: int, sd: int = 150, tag: str = "") -> str:
    """Predicts the true label of about `correct` images; how many varies with the seed."""
    return (
        f"TAG = {tag!r}  # a change that does nothing (code: a comment alone would be a repeat)\n"
        "import numpy as np\nimport prepare\n"
        "rng = np.random.default_rng(prepare.seed())\n"
        f"n = max(0, {correct} + int(rng.normal(0, {sd})))\n"
        "preds = np.zeros(10000, dtype=np.int64)\n"
        "preds[:n] = np.load('known.npy')[:n]\n"
        "prepare.save_predictions(preds)\n"
    )


def loop_run(ws: Path, proposals: dict[str, str], tmp_path: Path, *settings: str) -> dict:
    folder = tmp_path / "proposals"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for name, code in proposals.items():
        (folder / name).write_text(code)
    if settings:
        with open(ws / "autoresearch.toml", "a") as f:
            f.write("\n[loop]\n" + "\n".join(settings) + "\n")
    args = ["run", str(ws), "--agent", "replay", "--replay-dir", str(folder), "--new"]
    args += ["--iterations", str(len(proposals)), "--budget", "5", "--grace", "5"]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    status = cli.invoke(app, ["status", str(ws), "--json"])
    assert status.exit_code == 0, status.output
    return json.loads(status.stdout)
