"""What a new user trips on first: mistakes get a plain answer, and --help reads right in an
80-column terminal."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import CLASS_0, single_run
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core import config

READ_COMMANDS = ["status", "report", "export", "strategy", "serve"]
COMMANDS = ["init", "doctor", "baseline", "run", "serve", "status", "report", "export",
            "compare", "strategy", "ablate", "bundle"]  # fmt: skip


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})


@pytest.mark.parametrize("command", READ_COMMANDS)
def test_a_read_command_on_a_mistyped_folder_says_no_such_folder(command, tmp_path):
    result = invoke(command, str(tmp_path / "my-reserch"))
    assert result.exit_code == 2  # a bad argument: refused, nothing done
    assert result.output.strip() == f"error: {tmp_path / 'my-reserch'}: no such folder"


def test_an_unknown_agent_is_refused_by_name_even_on_a_run_that_exists(ws):
    (ws / "train.py").write_text(CLASS_0)
    single_run(ws)
    assert invoke("run", str(ws), "--agent", "hpo", "--iterations", "0").exit_code == 0
    result = invoke("run", str(ws), "--agent", "gpt")
    assert result.exit_code == 2
    assert "--new" not in result.output  # no suggestion of a command that fails too
    assert "unknown agent 'gpt'; choose one of: auto, claude, codex" in result.output
    assert "did you mean 'codex'?" in invoke("run", str(ws), "--agent", "codx").output


def test_a_mistyped_key_gets_a_suggestion(ws):
    with open(ws / "autoresearch.toml", "a") as f:
        f.write("budget_sec = 60\n")
    with pytest.raises(config.ConfigError, match=r"'budget_sec' \(did you mean 'budget_secs'\?\)"):
        config.read(ws)
    (ws / "autoresearch.toml").write_text("[loop]\nnoise_run = 2\n")
    with pytest.raises(config.ConfigError, match=r"'loop.noise_run' \(did you mean 'noise_runs'"):
        config.read(ws)


def test_every_commented_setting_of_the_generated_toml_works_uncommented(ws):
    text = (ws / "autoresearch.toml").read_text()
    setting = re.compile(r"^# (\[\w+\]|\w+ = )")
    commented = [line for line in text.splitlines() if setting.match(line)]
    assert "# noise_runs = 3          # baseline runs: the noise floor" in commented
    (ws / "autoresearch.toml").write_text(
        "\n".join(line[2:] if setting.match(line) else line for line in text.splitlines())
    )
    data = tomllib.loads((ws / "autoresearch.toml").read_text())
    assert data["loop"] == {"noise_runs": 3, "confirm_runs": 2} and data["holdout"] is False
    config.parse(data)  # valid settings, not only valid TOML


def test_doctor_with_a_missing_interpreter_gives_no_sandbox_advice(ws):
    result = invoke("doctor", str(ws), "--python", "/nonexistent")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith("FAIL interpreter: training interpreter '/nonexistent'")
               for line in lines)  # fmt: skip
    sandbox = [line for line in lines if line.startswith(("ok   sandbox", "FAIL sandbox"))]
    assert sandbox == ["FAIL sandbox: not checked: it needs a working interpreter (above)"]


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_shows_flags_as_flags_at_80_columns(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())
    for name in ("--help", "--json", "--wide", "--new", "--adopt", "--markdown", "--version"):
        row = next((line for line in result.output.splitlines() if f" {name} " in line), "")
        assert not re.search(rf"{name}\s+<", row), row  # no type placeholder after it


def test_the_command_list_shows_whole_sentences():
    """Each summary is one sentence, and a row goes on to the next line only where it is full
    (the summaries used to break where the docstring's first line did: `(or, with`)."""
    listing = invoke("--help").output.split("Commands")[1]
    rows: dict[str, str] = {}
    free = 0  # room left on the row before
    for line in listing.splitlines():
        m = re.match(r"│ (\w+)?\s+(.*?)(\s*)│$", line)
        if m and m.group(1):
            rows[m.group(1)] = m.group(2)
        elif m and rows:
            assert len(m.group(2).split()[0]) >= free, f"{list(rows)[-1]}: a break with room left"
            rows[list(rows)[-1]] += " " + m.group(2)
        if m:
            free = len(m.group(3)) - 1  # one space of padding before the border
    assert set(rows) == set(COMMANDS)
    for name, summary in rows.items():
        assert summary.endswith("."), (name, summary)
        assert summary.count(". ") == 0 or name == "compare", (name, summary)  # one sentence


def test_run_help_shows_defaults_and_the_repeat_flags():
    text = " ".join(invoke("run", "--help").output.split())
    for flag, shown in [("--iterations", "[default: 20]"), ("--budget", "[default: 300]"),
                        ("--noise-runs", "[default: 3]"), ("--confirm-runs", "[default: 2]"),
                        ("--agent", "[default: auto]")]:  # fmt: skip
        assert re.search(rf"│ {flag} (?:(?!│ --).)*?{re.escape(shown)}", text), flag
    assert "A flag left out takes the workspace's autoresearch.toml" in text


def test_noise_and_confirm_runs_as_flags(ws):
    (ws / "train.py").write_text(CLASS_0)
    result = invoke("run", str(ws), "--agent", "hpo", "--iterations", "0", "--noise-runs", "1")
    assert result.exit_code == 0, result.output
    snap = invoke("status", str(ws), "--json").output
    assert '"values": [\n        0.1\n      ]' in snap  # the baseline trained once, not 3 times
    refused = invoke("run", str(ws), "--confirm-runs", "0")  # frozen: it decides keeps
    assert refused.exit_code == 2 and "--new --confirm-runs 0`" in refused.output


def test_version_has_a_short_flag():
    assert invoke("-V").output == invoke("--version").output != ""


def test_serve_on_every_address_prints_one_another_machine_can_open(ws):
    """`--host 0.0.0.0` listens everywhere; the address it prints is this machine's own (here its
    first off the loopback), not 0.0.0.0, which no other machine can open."""
    command = [str(Path(sys.executable).parent / "autoresearch"), "serve", str(ws)]
    proc = subprocess.Popen(
        [*command, "--host", "0.0.0.0", "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    try:
        url = re.search(r"http://\S+", proc.stderr.readline()).group(0)
        host = urllib.parse.urlsplit(url).hostname
        assert host not in ("0.0.0.0", "127.0.0.1", "localhost"), url
        base, token = url.split("?token=")
        request = urllib.request.Request(
            base + "api/runs", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # the address works
            assert response.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
