"""The real `claude` and `codex` CLIs in the real loop (`autoresearch run`, as a user runs it),
against the stand-ins of their APIs in tests/model_apis.py. scripts/bootstrap installs the pinned
CLIs in .tools/npm; these tests copy that install under /tmp (hard links) and put it first on
PATH, and give the orchestrator a HOME under /tmp that holds the CLI's settings: the places
containers and CI use, where the agent sandbox once lost both. train.py is a tiny numpy script,
so an iteration trains in about a second; each CLI answers in under a second.

Skipped where the CLIs are not installed, except under CI=true, where that fails."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import single_run
from model_apis import INPUT_TOKENS, OUTPUT_TOKENS, Call, ModelAPI, Text
from typer.testing import CliRunner

from autoresearch.agents.pricing import cost
from autoresearch.cli import app
from autoresearch.records import Usage
from autoresearch.store import runs_dir

cli = CliRunner()
NPM = Path(__file__).resolve().parents[1] / ".tools" / "npm" / "node_modules"
KEY = "sk-stand-in-0123456789"
BASELINE = "import numpy as np\nimport prepare\n\nPREDICTION = 0\n"
BASELINE += "prepare.save_predictions(np.full(10000, PREDICTION, dtype=np.int64))\n"
EDITED = BASELINE.replace("PREDICTION = 0", "PREDICTION = 3")  # still 0.1: a discard
EXPLANATION = "Predict class 3\n\nAll classes are equally frequent, so any class scores 0.1."
CODEX_MODEL = "gpt-5.5"  # priced in prices.toml: codex reports tokens only
PATCH = """*** Begin Patch
*** Update File: train.py
@@
-PREDICTION = 0
+PREDICTION = 3
*** End Patch
"""
SIBLING_MARKER = "SIBLING-RUN-REPORT-7f3a9c"  # in another workspace's run store
OWN_MARKER = "OWN-RUN-STORE-4b1e2d"  # in this workspace's run store


def installed(name: str) -> Path:
    if not (NPM / ".bin" / name).exists():
        why = f"the real {name} CLI is not in {NPM} (scripts/bootstrap installs it with npm)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return NPM


@pytest.fixture(scope="module")
def tmp_install():
    """The npm tree under /tmp, as hard links (a copy where /tmp is another filesystem)."""
    installed("claude"), installed("codex")
    root = Path(tempfile.mkdtemp(prefix="autoresearch-clis-", dir="/tmp"))

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(NPM, root / "node_modules", symlinks=True, copy_function=link)
    yield root / "node_modules" / ".bin"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def home(monkeypatch):
    folder = Path(tempfile.mkdtemp(prefix="autoresearch-home-", dir="/tmp"))
    monkeypatch.setenv("HOME", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tiny(ws, monkeypatch, tmp_install) -> Path:
    (ws / "train.py").write_text(BASELINE)
    single_run(ws)
    monkeypatch.setenv("PATH", f"{tmp_install}{os.pathsep}{os.environ['PATH']}")
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CODEX_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STAND_IN_KEY", KEY)  # codex's env_key
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    return ws


def configure(ws: Path, sandbox: str, **agent) -> None:
    if sandbox == "none":
        agent["unsandboxed_ok"] = True
    lines = [f"sandbox = {json.dumps(sandbox)}", (ws / "autoresearch.toml").read_text(), "[agent]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in agent.items()]
    (ws / "autoresearch.toml").write_text("\n".join(lines) + "\n")


def claude_settings(home: Path, api: ModelAPI) -> None:
    """Claude Code reads `env` from ~/.claude/settings.json (code.claude.com/docs/en/settings):
    the endpoint and key, and no traffic but the API calls (no telemetry, no update checks)."""
    env = {
        "ANTHROPIC_BASE_URL": api.url,
        "ANTHROPIC_API_KEY": KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_text(json.dumps({"env": env}))


def codex_config(home: Path, api: ModelAPI) -> None:
    """A model provider in ~/.codex/config.toml (developers.openai.com/codex/config-reference):
    the Responses API at base_url + /responses, the key from the env_key variable."""
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text(
        f'model = "{CODEX_MODEL}"\nmodel_provider = "stand-in"\n\n'
        f'[model_providers.stand-in]\nname = "stand-in"\nbase_url = "{api.url}/v1"\n'
        'env_key = "STAND_IN_KEY"\nwire_api = "responses"\n'
    )


def run(ws: Path, agent: str):
    argv = ["run", str(ws), "--iterations", "1", "--budget", "30", "--agent", agent]
    return cli.invoke(app, argv)


def status(ws: Path) -> dict:
    result = cli.invoke(app, ["status", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def trained(ws: Path, snap: dict) -> str:
    return (runs_dir(ws) / snap["run"] / "iterations" / "0001" / "train.py").read_text()


# --- one iteration with each CLI ----------------------------------------------------------------

MODES = ["none", "auto"]  # unsandboxed (opted in), and the agent sandbox


@pytest.mark.parametrize("sandbox", MODES)
def test_an_iteration_with_the_real_claude(tiny, home, sandbox):
    with ModelAPI([Call("Edit", _edit(tiny)), Text(EXPLANATION)]) as api:
        claude_settings(home, api)
        configure(tiny, sandbox)
        result = run(tiny, "claude")
    assert result.exit_code == 0, result.output
    snap = status(tiny)
    it = snap["iterations"][1]
    assert it["status"] == "discard" and it["reason"] is None, it["reason"]
    assert trained(tiny, snap) == EDITED
    assert it["explanation"] == EXPLANATION
    [edit_result] = api.tool_results()
    assert "has been updated" in edit_result
    requests = api.main_requests()
    assert len(requests) == 2 and all(r.headers["x-api-key"] == KEY for r in requests)
    assert it["model"] == requests[0].body["model"] != ""  # its default model, as it reported
    assert (it["tokens_in"], it["tokens_out"]) == (2 * INPUT_TOKENS, 2 * OUTPUT_TOKENS)
    assert it["cost_usd"] > 0  # priced by Claude Code itself (total_cost_usd)
    unsandboxed = "the claude agent runs UNSANDBOXED ([agent] unsandboxed_ok = true)"
    assert (unsandboxed in result.output) == (sandbox == "none")


@pytest.mark.parametrize("sandbox", MODES)
def test_an_iteration_with_the_real_codex(tiny, home, sandbox):
    with ModelAPI([Call("apply_patch", PATCH), Text(EXPLANATION)]) as api:
        codex_config(home, api)
        configure(tiny, sandbox, model=CODEX_MODEL)
        result = run(tiny, "codex")
    assert result.exit_code == 0, result.output
    snap = status(tiny)
    it = snap["iterations"][1]
    assert it["status"] == "discard" and it["reason"] is None, it["reason"]
    assert trained(tiny, snap) == EDITED
    assert it["explanation"] == EXPLANATION
    requests = api.main_requests()
    assert len(requests) == 2 and requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert it["model"] == CODEX_MODEL == requests[0].body["model"]
    usage = Usage(tokens_in=2 * INPUT_TOKENS, tokens_out=2 * OUTPUT_TOKENS, tokens_cached=600)
    assert (it["tokens_in"], it["tokens_out"]) == (usage.tokens_in, usage.tokens_out)
    assert it["cost_usd"] == pytest.approx(cost(CODEX_MODEL, usage, {}))


def _edit(ws: Path) -> dict:
    """Claude Code's Edit tool input (file_path, relative to its working folder here)."""
    return {"file_path": "train.py", "old_string": "PREDICTION = 0", "new_string": "PREDICTION = 3"}
