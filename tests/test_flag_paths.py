"""Paths given as flags are relative to the current directory; in autoresearch.toml, to the
workspace. (--replay-dir: see test_loop's whole loop, run from another folder.)"""

from typer.testing import CliRunner

from autoresearch.cli.app import app

cli = CliRunner()


def test_a_relative_python_flag_is_found_from_the_current_directory(ws, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli.invoke(app, ["baseline", str(ws), "--python", "venv/bin/python"])
    assert result.exit_code == 2  # refused before training
    assert f"'{tmp_path}/venv/bin/python' not found" in result.output
    # a bare name is a program on PATH, as before
    result = cli.invoke(app, ["baseline", str(ws), "--python", "no-such-python3"])
    assert "'no-such-python3' not found" in result.output
