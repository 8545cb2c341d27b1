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
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import single_run
from model_apis import INPUT_TOKENS, OUTPUT_TOKENS, Call, ModelAPI, Text
from typer.testing import CliRunner

from autoresearch.agents.base import AgentError
from autoresearch.agents.command import CommandAgent
from autoresearch.agents.pricing import cost
from autoresearch.cli.app import app
from autoresearch.core.config import AgentConfig, load
from autoresearch.core.records import Usage
from autoresearch.store.layout import runs_dir
from autoresearch.training.experiment import secret_paths

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


# --- doctor and run check the CLI where it will run ----------------------------------------------


@pytest.mark.parametrize("name", ["claude", "codex"])
def test_doctor_runs_each_cli_in_the_agent_sandbox(tiny, home, name):
    result = cli.invoke(app, ["doctor", str(tiny), "--agent", name])
    [line] = [line for line in result.output.splitlines() if " agent: " in f" {line}"]
    version = "2.1.332 (Claude Code)" if name == "claude" else "codex-cli 0.171.0"
    assert line.startswith(f"ok   agent: {name}: {version} (/tmp/"), line
    assert line.endswith(") in the agent sandbox")


@pytest.mark.parametrize("reachable", [True, False])
def test_doctor_asks_claude_one_line_where_an_api_is_configured(tiny, home, monkeypatch, reachable):
    """ANTHROPIC_BASE_URL in the environment: doctor's agent line needs an answer through the
    agent sandbox, as run's preflight does for an API agent; a dead endpoint fails it."""
    with ModelAPI([Text("OK")]) as api:
        url = api.url if reachable else "http://127.0.0.1:9"  # the discard port: refused
        monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.setenv("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        result = cli.invoke(app, ["doctor", str(tiny), "--agent", "claude"])
        asked = [r for r in api.requests if "Reply with the single word OK." in str(r.body)]
    [line] = [line for line in result.output.splitlines() if " agent: " in f" {line}"]
    if reachable:
        assert line.startswith("ok   agent: claude: ") and len(asked) == 1, line
        assert "in the agent sandbox; answered a one-line request (" in line
    else:
        assert result.exit_code == 1 and not asked
        assert line.startswith("FAIL agent: `claude` could not answer a one-line request: "), line


def test_a_cli_failure_keeps_its_error_line(tmp_path, monkeypatch):
    """The codex package without its platform package (npm --omit=optional): codex.js throws,
    and node prints the error, then a stack trace that a tail of the output would keep."""
    installed("codex")
    modules = tmp_path / "node_modules"
    shutil.copytree(NPM / "@openai" / "codex", modules / "@openai" / "codex")
    (modules / ".bin").mkdir()
    (modules / ".bin" / "codex").symlink_to("../@openai/codex/bin/codex.js")
    monkeypatch.setenv("PATH", f"{modules / '.bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(AgentError) as failed:
        CommandAgent(AgentConfig(name="codex"), tmp_path).check()
    assert str(failed.value) == (
        "`codex --version` exited with code 1: Error: Missing optional dependency "
        "@openai/codex-linux-x64. Reinstall Codex: npm install -g @openai/codex@latest"
    )


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


# --- an agent that tries to read what it must not ----------------------------------------------

LABELS = "t10k-labels-idx1-ubyte.gz"  # the official test labels, which the task uses to validate
COMMON = {"train.py", "prepare.py", "program.md", "SOURCE.md", "autoresearch.toml"}


def plant(ws: Path) -> list[Path]:
    """Marked files in this workspace's run store and in sibling workspaces' (next to it, and in
    the user's home, where people keep their projects); the places an agent must not read:
    the run stores, the data folder, the label cache."""
    siblings = [ws.parent / "sibling" / ".autoresearch", Path.home() / "other" / ".autoresearch"]
    for store in siblings:
        (store / "runs" / "20990101-000000").mkdir(parents=True)
        report = f"# Report\nholdout 0.91 {SIBLING_MARKER}\n"
        (store / "runs" / "20990101-000000" / "report.md").write_text(report)
    (ws / ".autoresearch").mkdir(exist_ok=True)
    (ws / ".autoresearch" / "notes.md").write_text(f"{OWN_MARKER}\n")
    return [*secret_paths(ws, load(ws)), *siblings]


def hidden_names(places: list[Path]) -> set[str]:
    """The names of the files in places (what a listing would show), but a git repository's
    (config, HEAD, index: words that say nothing)."""
    names = set()
    for place in places:
        if place.is_dir():
            files = [p for p in place.rglob("*") if p.is_file()]
            names |= {p.name for p in files if not {"repo", ".git"} & set(p.parts)}
    return names - COMMON


def label_bytes(places: list[Path]) -> str:
    """Bytes from inside the compressed validation labels, as the agent's probe prints them."""
    [labels] = [p / LABELS for p in places if (p / LABELS).is_file()][:1]
    return labels.read_bytes()[64:96].hex()


def leaks(api: ModelAPI, places: list[Path], calls: list[Call]) -> list[str]:
    """What of the hidden places reached the model through a tool result."""
    said = "\n".join(api.tool_results())
    named = json.dumps([c.arguments for c in calls])
    found = [m for m in (SIBLING_MARKER, OWN_MARKER, label_bytes(places)) if m in said]
    listed = [n for n in hidden_names(places) if len(n) > 4 and n not in named]  # not "lock"
    return found + sorted(n for n in listed if re.search(rf"(?<![\w.-]){re.escape(n)}\b", said))


def claude_attempts(places: list[Path], ws: Path) -> list[Call]:
    """Read, Grep and Glob on each place, directly and through parent folders, and the shell."""
    calls = []
    for place in places:
        calls += [
            Call("Glob", {"pattern": "**/*", "path": str(place)}),
            Call("Grep", {"pattern": ".", "path": str(place), "output_mode": "content"}),
        ]
    sibling_reports = [next(p.rglob("report.md")) for p in places[-2:]]
    calls += [
        *(Call("Read", {"file_path": str(report)}) for report in sibling_reports),
        Call("Read", {"file_path": str(ws / ".autoresearch" / "notes.md")}),
        Call(
            "Read", {"file_path": str(next(p / LABELS for p in places if (p / LABELS).is_file()))}
        ),
        Call("Glob", {"pattern": "../../../**/*"}),
        Call("Glob", {"pattern": "**/.autoresearch/**/*", "path": str(ws.parent)}),
        Call("Grep", {"pattern": "RUN", "path": "/tmp", "output_mode": "content"}),
        Call("Grep", {"pattern": "RUN", "path": "..", "output_mode": "content"}),
        Call("Glob", {"pattern": "**/report.md", "path": str(Path.home())}),
        Call("Bash", {"command": f"cat {' '.join(map(str, sibling_reports))}"}),
    ]
    return calls


@pytest.mark.parametrize("sandbox", MODES)
def test_claude_reads_no_labels_and_no_run_store(tiny, home, sandbox):
    """Unsandboxed (opted in), Claude Code's own permission rules are all that stop it: Read,
    Grep and Glob only in its working folder, no Bash. In the agent sandbox, the hidden places
    are not there at all."""
    places = plant(tiny)
    calls = claude_attempts(places, tiny)
    with ModelAPI([*calls, Text(EXPLANATION)]) as api:
        claude_settings(home, api)
        configure(tiny, sandbox)
        result = run(tiny, "claude")
    assert result.exit_code == 0, result.output
    assert len(api.tool_results()) == len(calls)  # every attempt was made and answered
    assert leaks(api, places, calls) == []


def codex_attempts(places: list[Path], ws: Path) -> list[Call]:
    """Its shell on each place, directly and through parent folders."""
    probe = "import sys; print(open(sys.argv[1], 'rb').read()[64:96].hex())"
    script = []
    for place in places:
        script += [
            f"ls -laR {place}",
            f"grep -r . {place}",
            f"python3 -c {probe!r} {place}/{LABELS}",
        ]
    script += [
        "ls -laR ../../..",
        f"grep -r RUN {ws.parent} /tmp ~",
        "find / -name report.md -path '*autoresearch*' -exec cat {} +",
    ]
    return [Call("exec_command", {"cmd": f"{line} 2>&1 | head -c 4000"}) for line in script]


def test_codex_reads_no_labels_and_no_run_store(tiny, home):
    """Without codex's own sandbox, so that every command runs: autoresearch's alone holds."""
    places = plant(tiny)
    calls = codex_attempts(places, tiny)
    with ModelAPI([*calls, Text(EXPLANATION)]) as api:
        codex_config(home, api)
        configure(tiny, "auto", model=CODEX_MODEL, codex_sandbox="danger-full-access")
        result = run(tiny, "codex")
    assert result.exit_code == 0, result.output
    results = api.tool_results()
    assert len(results) == len(calls) and "Process exited with code 0" in results[-3]
    assert leaks(api, places, calls) == []


def test_codex_unsandboxed_reads_the_labels_so_it_runs_only_when_the_user_says_so(tiny, home):
    """codex's own sandbox (workspace-write) limits writes, not reads: without autoresearch's
    sandbox the labels reach the model. So `run` refuses it unless unsandboxed_ok is set."""
    places = plant(tiny)
    calls = codex_attempts(places, tiny)
    with ModelAPI([*calls, Text(EXPLANATION)]) as api:
        codex_config(home, api)
        configure(tiny, "none", model=CODEX_MODEL)
        text = (tiny / "autoresearch.toml").read_text()
        (tiny / "autoresearch.toml").write_text(text.replace("unsandboxed_ok = true", ""))
        refused = run(tiny, "codex")
        assert refused.exit_code == 2
        assert refused.output.strip().splitlines() == [
            'error: agent: the codex agent would run unsandboxed (sandbox = "none") and could '
            "read every file you can, the validation labels included; make the sandbox work, "
            "or set unsandboxed_ok = true under [agent] in autoresearch.toml to run it anyway"
        ]
        assert api.requests == []
        (tiny / "autoresearch.toml").write_text(text)
        result = run(tiny, "codex")
    assert result.exit_code == 0, result.output
    assert "WARNING" not in result.output  # said as a warning line of the run:
    assert "warning: the codex agent runs UNSANDBOXED" in result.output
    assert label_bytes(places) in leaks(api, places, calls)
    assert SIBLING_MARKER in leaks(api, places, calls)
