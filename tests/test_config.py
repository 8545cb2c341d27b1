import pytest

from autoresearch.core import config
from autoresearch.core.config import ConfigError


def write(ws, text):
    (ws / "autoresearch.toml").write_text(text)


def test_template_config_loads_with_the_defaults_the_issue_names(ws):
    cfg = config.load(ws)
    assert (cfg.metric, cfg.direction, cfg.budget_secs, cfg.grace_secs) == (
        "val_accuracy",
        "maximize",
        300,
        30,
    )


def test_broken_toml_names_the_file_and_line(ws):
    write(ws, 'metric = "val_accuracy"\nbudget_secs = = 3\n')
    with pytest.raises(ConfigError) as err:
        config.load(ws)
    assert "autoresearch.toml" in str(err.value) and "line 2" in str(err.value)


def test_unknown_key_lists_the_valid_ones(ws):
    write(ws, 'metric = "val_accuracy"\nbudgt_secs = 3\n')
    with pytest.raises(ConfigError) as err:
        config.load(ws)
    message = str(err.value)
    assert "budgt_secs" in message and "line 2" in message
    assert "budget_secs" in message and "grace_secs" in message


def test_unknown_key_in_a_section_lists_that_sections_keys(ws):
    write(ws, "[loop]\niteratons = 3\n")
    with pytest.raises(ConfigError) as err:
        config.load(ws)
    assert "loop.iteratons" in str(err.value) and "iterations" in str(err.value)


@pytest.mark.parametrize("budget", [0, -5])
def test_budget_must_be_positive(ws, budget):
    write(ws, f"budget_secs = {budget}\n")
    with pytest.raises(ConfigError) as err:
        config.load(ws)
    assert "budget_secs" in str(err.value) and "greater than 0" in str(err.value)


def test_flags_override_keys_and_are_validated_too(ws):
    cfg = config.load(ws, {"budget_secs": 12, "loop.iterations": 3, "python": None})
    assert cfg.budget_secs == 12 and cfg.loop.iterations == 3 and cfg.python != "None"
    with pytest.raises(ConfigError):
        config.load(ws, {"budget_secs": 0})


def test_missing_workspace_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such workspace"):
        config.load(tmp_path / "nope")
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path)


def test_direction_decides_better(ws):
    cfg = config.load(ws)
    assert cfg.better(0.9, 0.8) and not cfg.better(0.8, 0.8) and cfg.better(0.1, None)
    cfg.direction = "minimize"
    assert cfg.better(0.1, 0.2) and not cfg.better(0.3, 0.2)


def test_min_improvement_guards_keep_against_noise(ws):
    cfg = config.load(ws, {"loop.min_improvement": 0.002})
    assert not cfg.better(0.9015, 0.9, cfg.loop.min_improvement)
    assert cfg.better(0.9025, 0.9, cfg.loop.min_improvement)
    cfg.direction = "minimize"
    assert cfg.better(0.2, 0.21, 0.002) and not cfg.better(0.209, 0.21, 0.002)


@pytest.mark.parametrize(
    "text, line, words",
    [
        ('[loop]\niterations = "3"\n', 2, "loop.iterations: Input should be a valid integer"),
        ("budget_secs = inf\n", 1, "budget_secs: Input should be a finite number"),
        ("grace_secs = nan\n", 1, "grace_secs: Input should be a finite number"),
        ("budget_secs = 1e308\n", 1, "budget_secs: Input should be less than or equal to 604800"),
        ("[agent]\nmax_tokens = 1.5\n", 2, "agent.max_tokens: Input should be a valid integer"),
        ("[loop]\ncontext = 'full'\n[agent]\nseed = '1'\n", 4, "agent.seed: Input should be"),
    ],
)
def test_types_are_strict_and_numbers_finite_with_file_and_line(ws, text, line, words):
    write(ws, text)
    with pytest.raises(ConfigError) as err:
        config.load(ws)
    assert str(err.value).startswith(f"{ws / 'autoresearch.toml'}, line {line}: {words}")


def test_a_table_that_is_not_a_table_with_a_flag_is_one_line_on_the_file(ws):
    write(ws, 'metric = "val_accuracy"\nloop = 5\n')
    with pytest.raises(ConfigError) as err:
        config.load(ws, {"loop.iterations": 3})
    assert str(err.value).startswith(f"{ws / 'autoresearch.toml'}, line 2: loop: ")


def test_non_utf8_bytes_name_the_file_and_line(ws):
    (ws / "autoresearch.toml").write_bytes(b'metric = "val_accuracy"\n# caf\xe9\n')
    with pytest.raises(ConfigError) as err:
        config.load(ws)
    assert str(err.value) == (
        f"{ws / 'autoresearch.toml'}, line 2: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"budget_secs": -5.0}, "--budget -5: budget_secs: Input should be greater than 0"),
        ({"budget_secs": float("inf")}, "--budget inf: budget_secs: Input should be a finite"),
        ({"loop.max_cost_usd": 0.0}, "--max-cost 0: loop.max_cost_usd: Input should be greater"),
        ({"loop.context": "some"}, "--context some: loop.context: Input should be 'full' or"),
    ],
)
def test_a_bad_flag_is_named_not_the_file(ws, flags, message):
    write(ws, "# five\n# lines\n# of\n# comments\nbudget_secs = 60\n")
    with pytest.raises(ConfigError) as err:
        config.load(ws, flags)
    assert str(err.value).startswith(message) and "autoresearch.toml" not in str(err.value)


def test_every_agent_the_configuration_accepts_is_one_the_factory_builds():
    from importlib import import_module

    from autoresearch.agents.factory import AGENTS
    from autoresearch.core.config import AGENT_NAMES

    assert set(AGENTS) == set(AGENT_NAMES) - {"auto"}
    for module, cls in AGENTS.values():
        agent = getattr(import_module(f"autoresearch.agents.{module}"), cls)
        assert callable(agent.propose)  # what the loop asks every agent (agents/base.py)
