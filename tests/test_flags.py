"""A setting's flag is declared once, on its field of the config model: `run` (and doctor and
baseline, for theirs) takes exactly those flags, each with its help, each reaching its own setting
(an error names the flag; a resume refuses a frozen one and carries a mutable one), and the docs'
reference pages show them."""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex

import pytest
import typer
from conftest import REPO
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core import config
from autoresearch.loop import runs

# The options of each command that are not a setting's flag.
OWN_OPTIONS = {
    "run": {"--new", "--name", "--help"},
    "doctor": {"--help"},
    "baseline": {"--json", "--help"},
}
# A value unlike the default for every setting that has a flag (None: the switch alone, --async).
GIVEN = {
    "budget_secs": "301", "grace_secs": "31", "python": "/usr/bin/python3", "data_dir": "data",
    "sandbox": "none", "loop.iterations": "21", "loop.max_cost_usd": "7", "loop.context": "truncated",
    "loop.context_tokens": "16001", "loop.noise_runs": "4", "loop.confirm_runs": "3",
    "loop.until": "07:30", "agent.name": "hpo", "agent.model": "m1", "agent.replay_dir": "proposals",
    "run.workers": "2", "run.asynchronous": None, "run.ray_address": "127.0.0.1:6379",
}  # fmt: skip
# A value each setting refuses (settings any text may be are left out).
REFUSED = {
    "budget_secs": "1e12", "grace_secs": "1e12", "sandbox": "chroot", "loop.iterations": "10000000",
    "loop.max_cost_usd": "1e12", "loop.context": "half", "loop.context_tokens": "10",
    "loop.noise_runs": "0", "loop.confirm_runs": "1000", "loop.until": "25:00", "agent.name": "gpt",
    "run.workers": "0",
}  # fmt: skip


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})


def options(command: str) -> dict[str, str]:
    """{"--budget": its help, ...}: every option of the command, as click holds it."""
    click_command = typer.main.get_command(app).commands[command]
    params = [p for p in click_command.params if p.param_type_name == "option"]
    return {o: p.help or "" for p in params for o in p.opts + p.secondary_opts}


def gen_reference():
    spec = importlib.util.spec_from_file_location("gen_reference", REPO / "docs/gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_takes_exactly_the_configs_flags_each_with_its_help_in_help_and_docs():
    assert set(GIVEN) == set(config.FLAGS)  # a new flag needs a value in GIVEN: it is tested
    flags = {item.flag.name: item for item in config.FLAGGED.values()}
    assert set(options("run")) - OWN_OPTIONS["run"] == {*flags, "--no-async"}
    help_rows = invoke("run", "--help").output.splitlines()
    reference = gen_reference()
    cli_rows = reference.cli_reference().split("### `autoresearch run`")[1].splitlines()
    config_rows = reference.config_table().splitlines()
    for name, item in flags.items():
        row = next(line for line in help_rows if re.match(rf"│ {name}\b", line))
        assert item.flag.help in row, row
        assert any(line.startswith(f"| `{name}`") and item.flag.help in line for line in cli_rows)
        *section, key = item.key.split(".")
        shown = f"[{section[0]}] {key}" if section else key
        assert any(f"| `{shown}` |" in line and f"| `{name}` |" in line for line in config_rows)
    # the help names the flags a resume may change, as the settings say
    text = " ".join(invoke("run", "--help").output.split())
    mutable = [flags[n].flag.name for n in flags if flags[n].flag.mutable]
    assert f"({', '.join(mutable[:-1])} and {mutable[-1]} may change)" in text
    assert "--until" in mutable and "--budget" not in mutable


@pytest.mark.parametrize("command", ["run", "doctor", "baseline"])
def test_a_bad_value_of_each_flag_is_refused_naming_the_flag_and_its_setting(ws, command):
    taken = [key for key, name in config.FLAGS.items() if name in options(command)]
    assert taken and set(options(command)) - OWN_OPTIONS[command] <= {
        *config.FLAGS.values(),
        "--no-async",
    }
    for key in taken:
        if key not in REFUSED:
            continue
        result = invoke(command, str(ws), config.FLAGS[key], REFUSED[key])
        assert result.exit_code == 2, (key, result.output)
        line = result.output.strip()
        assert line.startswith(f"error: {config.FLAGS[key]} "), line
        assert f": {key}: " in line, line


def test_every_flag_reaches_its_setting_a_resume_refusing_the_frozen_ones(
    ws, tmp_path, monkeypatch
):
    """A run killed before its baseline finished, resumed with every flag: the frozen ones are
    refused, each with the value it started with; the mutable ones go into the command that
    resumes it as started, which works as it is written."""
    monkeypatch.chdir(tmp_path)
    started = config.load(ws)
    runs.create(ws, started, started).close()
    given = [word for key, value in GIVEN.items() for word in (config.FLAGS[key], value) if word]
    result = invoke("run", str(ws), *given)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    frozen, as_started, _ = re.match(r".*was started with (.*); to resume it as started: `(.*)`; "
                                     r"to start a new run with yours: `(.*)`", message).groups()  # fmt: skip
    for key, value in GIVEN.items():
        name = config.FLAGS[key]
        value = str(tmp_path / value) if key in ("data_dir", "agent.replay_dir") else value
        typed = f"{name} {value}" if value is not None else name
        if key in config.MUTABLE:  # the whole of it, followed by the next flag or the end
            assert re.search(rf" {re.escape(typed)}( --|$)", as_started), (key, as_started)
            assert name not in frozen, key
        else:
            before = runs.show_setting(functools.reduce(getattr, key.split("."), started))
            started_with, not_yours = frozen.split(", not ")
            assert f"{name} {before}," in started_with + ",", key
            assert f"{typed}," in not_yours + ",", key
    # the command offered is one that run takes as it is written
    argv = shlex.split(as_started)
    assert argv[:3] == ["autoresearch", "run", str(ws)]
    typer.main.get_command(app).commands["run"].make_context("run", argv[2:])  # no UsageError
