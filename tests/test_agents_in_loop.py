"""Every agent inside the real loop, through the CLI as a user runs it: `autoresearch run`, then
`autoresearch status --json`. The API agents talk to the fake server on 127.0.0.1; the claude agent
is tests/bin/claude. Except for hpo's real torch run, train.py is a tiny numpy script, so an
iteration costs about a second."""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from conftest import single_run
from fake_llm_server import STAND_IN_KEY as KEY
from fake_llm_server import anthropic_reply, error_reply, openai_reply
from typer.testing import CliRunner

from autoresearch.agents.anthropic_api import AnthropicAgent
from autoresearch.agents.factory import choose
from autoresearch.agents.openai_api import OpenAIAgent
from autoresearch.cli.app import app
from autoresearch.core.config import AgentConfig

cli = CliRunner()
FAKE_BIN = Path(__file__).parent / "bin"
KEY_ENVS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
pytestmark = pytest.mark.usefixtures("api_keys")

# The baseline: every image is called class 0, which scores exactly 0.1 (the classes are balanced).
BASELINE = """\
import numpy as np
import prepare

PREDICTION = 0
prepare.save_predictions(np.full(10000, PREDICTION, dtype=np.int64))
"""
# A real improvement that needs no torch: nearest class mean, about 0.68.
CENTROIDS = """\
import numpy as np
import prepare

x, y, x_val = prepare.load_data()
x = x.reshape(len(x), -1).astype(np.float32)
v = x_val.reshape(len(x_val), -1).astype(np.float32)
c = np.stack([x[y == k].mean(0) for k in range(10)])
distance = (v * v).sum(1)[:, None] - 2 * v @ c.T + (c * c).sum(1)[None, :]
prepare.save_predictions(distance.argmin(1))
"""
WHOLE_REPLY = (
    "Use a nearest-centroid classifier.\n\nIt needs no training at all.\n\n"
    f"```python\n{CENTROIDS}```\n"
)
WHOLE_EXPLANATION = "Use a nearest-centroid classifier.\n\nIt needs no training at all."
SEARCH_REPLACE_REPLY = (
    "Predict class 3 instead.\n<<<<<<< SEARCH\nPREDICTION = 0\n=======\nPREDICTION = 3\n"
    ">>>>>>> REPLACE\n"
)
CLASS_3 = BASELINE.replace("PREDICTION = 0", "PREDICTION = 3")  # also 0.1: a discard
CLASS_3_REPLY = f"Predict class 3 instead.\n\n```python\n{CLASS_3}```\n"
NO_CODE = "I would lower the learning rate, but I cannot show you the code."
# The answer to the tiny request `run` sends before any training (the same check as `doctor`).
CHECK_OK = {"anthropic": anthropic_reply("OK", 10, 1), "openai": openai_reply("OK", 10, 1)}


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def tiny(ws) -> Path:
    """The workspace with the numpy-only baseline, one training per iteration."""
    (ws / "train.py").write_text(BASELINE)
    single_run(ws)
    return ws


def configure(ws: Path, **agent) -> None:
    """Append an [agent] section to the workspace's autoresearch.toml."""
    lines = ["", "[agent]", *(f"{key} = {json.dumps(value)}" for key, value in agent.items())]
    with (ws / "autoresearch.toml").open("a") as f:
        f.write("\n".join(lines) + "\n")


def run(ws: Path, *args: str, iterations: int = 1, budget: float = 30):
    argv = ["run", str(ws), "--iterations", str(iterations), "--budget", str(budget), *args]
    return cli.invoke(app, argv)


def status(ws: Path) -> dict:
    result = cli.invoke(app, ["status", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def status_table(ws: Path) -> tuple[str, str]:
    """`autoresearch status` as people see it: (the description column, unwrapped; the rest)."""
    result = cli.invoke(app, ["status", str(ws)])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    return " ".join(row.split("│")[-2].strip() for row in rows), result.stdout


def assert_key_nowhere(ws: Path, *outputs: str) -> None:
    """The API key is in no file of the run (databases and git objects included) and no output."""
    gc.collect()  # the in-process commands' SQLite connections close now, not while files are read
    files = [p for p in (ws / ".autoresearch").rglob("*") if p.is_file()]
    assert any(p.name == "run.db" for p in files)
    leaked = [str(p) for p in files if KEY.encode() in p.read_bytes()]
    assert leaked == []
    for text in outputs:
        assert KEY not in text


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def path_without_claude() -> str:
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if not shutil.which("claude", path=d))


# --- 1. one iteration with each agent ------------------------------------------------------------

# name: (agent settings, the scripted reply, status, tokens in/out, cost of iteration 1)
API_CASES = {
    # claude-sonnet-5-5 (the default): $2 / $10 per million tokens
    "anthropic": (
        {"name": "anthropic"},
        anthropic_reply(WHOLE_REPLY, input_tokens=1000, output_tokens=200),
        "keep", (1000, 200), (1000 * 2 + 200 * 10) / 1e6,
    ),
    # gpt-6.1-terra (the default): $1 / $5 per million tokens
    "openai": (
        {"name": "openai"},
        openai_reply(WHOLE_REPLY, prompt_tokens=1000, completion_tokens=200),
        "keep", (1000, 200), (1000 * 1 + 200 * 5) / 1e6,
    ),
    # a local model with no known price: tokens recorded, cost unknown
    "openai-search-replace": (
        {"name": "openai", "edit_format": "search-replace", "model": "llama-local"},
        openai_reply(SEARCH_REPLACE_REPLY, prompt_tokens=900, completion_tokens=50),
        "discard", (900, 50), None,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_one_iteration_with_an_api_agent(tiny, server, case):
    settings, reply, expected, tokens, cost = API_CASES[case]
    url = server.url + ("/v1" if settings["name"] == "openai" else "")
    configure(tiny, base_url=url, max_retries=0, request_timeout_secs=10, **settings)
    server.add(CHECK_OK[settings["name"]], reply)

    result = run(tiny)
    assert result.exit_code == 0, result.output
    assert "1 iteration done" in result.stderr

    snap = status(tiny)
    assert snap["state"] == "finished"
    base, it = snap["iterations"]
    assert (base["status"], base["value"]) == ("baseline", pytest.approx(0.1))
    assert it["status"] == expected and it["reason"] is None
    assert (it["tokens_in"], it["tokens_out"]) == tokens
    if cost is None:
        assert it["cost_usd"] is None and snap["cost_usd"] is None
    else:
        assert it["cost_usd"] == pytest.approx(cost) and snap["cost_usd"] == pytest.approx(cost)
    if expected == "keep":
        assert it["value"] > 0.5 and it["explanation"] == WHOLE_EXPLANATION
        assert snap["best"] == {"iteration": 1, "value": it["value"]}
        assert it["description"] == "Use a nearest-centroid classifier."
    else:
        assert it["value"] == pytest.approx(0.1) and it["explanation"] == "Predict class 3 instead."
        assert snap["best"]["iteration"] == 0
    assert it["train_seconds"] > 0
    run_dir = tiny / ".autoresearch" / "runs" / snap["run"]
    trained = (run_dir / "iterations" / "0001" / "train.py").read_text()
    assert trained == (CENTROIDS if expected == "keep" else CLASS_3)

    check, request = server.requests
    assert check.body["max_tokens"] == 16  # the preflight's tiny request, before any training
    assert it["agent"] == settings["name"] and it["model"] == request.body["model"]
    agent = AnthropicAgent if settings["name"] == "anthropic" else OpenAIAgent
    assert request.body["model"] == settings.get("model", agent.default_model)
    content = request.body["messages"][0]["content"]
    if settings["name"] == "anthropic":  # the stable start of the prompt is marked for caching
        head, rest = content
        assert head["cache_control"] == {"type": "ephemeral"} and "Experiment history" not in head
        assert rest["text"].startswith("# Experiment history")
        content = head["text"] + rest["text"]
    assert "PREDICTION = 0" in content  # the incumbent train.py
    assert KEY in str(request.headers)  # the key was used ...
    assert_key_nowhere(tiny, result.output)  # ... and stored nowhere


def test_one_iteration_with_the_claude_cli(tiny, monkeypatch):
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "edit")

    result = run(tiny, "--agent", "claude")
    assert result.exit_code == 0, result.output

    snap = status(tiny)
    assert snap["state"] == "finished"
    it = snap["iterations"][1]
    assert it["status"] == "discard"  # the edit is harmless: still class 0 everywhere, 0.1
    assert it["value"] == pytest.approx(0.1)
    assert it["explanation"] == "Lowered the learning rate to 0.01.\nIt should converge better."
    assert (it["tokens_in"], it["tokens_out"]) == (10 + 200 + 3000, 400)
    assert it["cost_usd"] == pytest.approx(0.0123)  # what Claude Code reported
    assert snap["cost_usd"] == pytest.approx(0.0123)
    run_dir = tiny / ".autoresearch" / "runs" / snap["run"]
    trained = (run_dir / "iterations" / "0001" / "train.py").read_text()
    assert trained == BASELINE + "LEARNING_RATE = 0.01  # fake claude\n"
    assert_key_nowhere(tiny, result.output)


# --- 2. an unusable reply ------------------------------------------------------------------------


def test_a_reply_unusable_after_the_repair_round_is_invalid_and_not_trained(tiny, server):
    configure(tiny, name="anthropic", base_url=server.url, max_retries=0, repair_rounds=1)
    server.add(
        CHECK_OK["anthropic"],
        anthropic_reply(NO_CODE, input_tokens=100, output_tokens=10),
        anthropic_reply(NO_CODE, input_tokens=200, output_tokens=10),
    )

    result = run(tiny)
    assert result.exit_code == 0, result.output
    assert len(server.requests) == 3  # the check, the reply, and the one repair round

    snap = status(tiny)
    assert snap["state"] == "finished"
    it = snap["iterations"][1]
    assert it["status"] == "invalid" and it["value"] is None
    assert it["reason"].startswith("no usable edit in 2 replies: your reply has no ```python block")
    assert it["train_seconds"] == 0
    assert (it["tokens_in"], it["tokens_out"]) == (300, 20)
    assert it["cost_usd"] > 0  # the tokens were paid for all the same
    run_dir = tiny / ".autoresearch" / "runs" / snap["run"]
    folder = run_dir / "iterations" / "0001"
    assert NO_CODE in (folder / "agent_output.txt").read_text()
    assert not (folder / "train.py").exists() and not (folder / "predictions.npy").exists()
    assert_key_nowhere(tiny, result.output)
    descriptions, _ = status_table(tiny)
    assert "[no usable edit in 2 replies:" in descriptions  # the reason, in the people's view too


# --- 3. a dead API and a bad key -------------------------------------------------------------------


def test_a_dead_api_is_refused_before_any_training(tiny):
    configure(tiny, name="openai", base_url=closed_port_url(), max_retries=0)

    result = run(tiny, iterations=2)
    assert result.exit_code == 2, result.output  # a refused start
    [line] = result.stderr.splitlines()
    assert line.startswith("error: agent: openai API: connection failed: ")
    assert line.endswith("(gave up after 1 attempt(s))")
    assert not (tiny / ".autoresearch" / "runs").exists()  # no run, no baseline trained


def test_a_key_rejected_at_the_start_is_refused_before_any_training(tiny, server):
    configure(tiny, name="anthropic", base_url=server.url, max_retries=0)
    server.add(error_reply(401, f"invalid x-api-key {KEY}"))

    result = run(tiny, iterations=3)
    assert result.exit_code == 2 and "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert "authentication failed" in line and "check ANTHROPIC_API_KEY" in line
    assert len(server.requests) == 1 and not (tiny / ".autoresearch" / "runs").exists()
    assert KEY not in result.output  # redacted


def test_a_key_rejected_mid_run_stops_the_run_with_one_line_and_keeps_the_baseline(tiny, server):
    configure(tiny, name="anthropic", base_url=server.url, max_retries=0)
    server.add(CHECK_OK["anthropic"], error_reply(401, f"invalid x-api-key {KEY}"))

    result = run(tiny, iterations=3)
    assert result.exit_code == 3  # an early stop
    assert "Traceback" not in result.output
    [line] = [line for line in result.stderr.splitlines() if "authentication failed" in line]
    assert "HTTP 401" in line and "check ANTHROPIC_API_KEY" in line
    assert (
        len(server.requests) == 2
    )  # the check, then one proposal: neither retried nor asked again

    snap = status(tiny)
    assert snap["state"] == "stopped"
    assert "check ANTHROPIC_API_KEY" in snap["stop_reason"]
    assert [it["status"] for it in snap["iterations"]] == ["baseline"]
    assert snap["iterations"][0]["value"] == pytest.approx(0.1)
    assert_key_nowhere(tiny, result.output)


# --- 4. the cost limit -----------------------------------------------------------------------------


def test_the_cost_limit_ends_the_run_before_its_iterations(tiny, server):
    configure(tiny, name="anthropic", base_url=server.url, max_retries=0)
    # 100k tokens in, 10k out on claude-sonnet-5-5: $0.20 + $0.10 per proposal
    server.add(CHECK_OK["anthropic"])
    for _ in range(3):
        server.add(anthropic_reply(CLASS_3_REPLY, input_tokens=100_000, output_tokens=10_000))

    result = run(tiny, "--max-cost", "0.25", iterations=3)
    assert result.exit_code == 0, result.output

    snap = status(tiny)
    assert snap["state"] == "finished"
    assert "cost limit" in snap["stop_reason"] and "$0.30" in snap["stop_reason"]
    assert "cost limit" in result.stderr
    assert [it["iteration"] for it in snap["iterations"]] == [0, 1]
    assert snap["cost_usd"] == pytest.approx(0.30)
    assert len(server.requests) == 2  # the check, one proposal: the agent was not asked again


def test_a_cost_limit_with_an_unpriced_model_refuses_to_start(tiny, server):
    configure(tiny, name="openai", base_url=server.url + "/v1", model="llama-local")
    result = run(tiny, "--max-cost", "1")
    assert result.exit_code == 2  # a refused start
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: --max-cost / loop.max_cost_usd (1) cannot be enforced: ")
    assert '[agent.prices."llama-local"]' in line
    assert not (tiny / ".autoresearch" / "runs").exists() and server.requests == []
    # with a price for it, the same run starts
    with (tiny / "autoresearch.toml").open("a") as f:
        f.write('[agent.prices."llama-local"]\ninput = 0.1\noutput = 0.2\n')
    server.add(
        CHECK_OK["openai"], openai_reply(CLASS_3_REPLY, prompt_tokens=2000, completion_tokens=50)
    )
    result = run(tiny, "--max-cost", "1")
    assert result.exit_code == 0, result.output
    assert status(tiny)["cost_usd"] == pytest.approx((2000 * 0.1 + 50 * 0.2) / 1e6)


def test_a_warning_from_the_agent_is_said_and_recorded_once(tiny, server):
    configure(tiny, name="anthropic", base_url=server.url, model="claude-opus-5-5", temperature=0.3)
    server.refuse("temperature", error_reply(400, "`temperature` is deprecated for this model."))
    server.add(CHECK_OK["anthropic"], anthropic_reply(CLASS_3_REPLY), anthropic_reply(WHOLE_REPLY))
    result = run(tiny, iterations=2)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("note: anthropic API: agent.temperature is not sent") == 1
    first, second = status(tiny)["iterations"][1:]
    assert "agent.temperature is not sent (claude-opus-5-5" in first["reason"]
    assert (first["status"], second["status"], second["reason"]) == ("discard", "keep", None)
    assert all("temperature" not in r.body for r in server.requests)


# --- 5. auto ---------------------------------------------------------------------------------------


def test_auto_prefers_claude_then_anthropic_then_openai_then_hpo(monkeypatch):
    for name in KEY_ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", path_without_claude())
    cfg = AgentConfig()
    assert choose(cfg)[0] == "hpo"

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert choose(cfg) == ("openai", "OPENAI_API_KEY is set")

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    assert choose(cfg) == ("anthropic", "ANTHROPIC_API_KEY is set")

    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    assert choose(cfg) == ("claude", "the claude CLI is on PATH")

    monkeypatch.setenv("PATH", path_without_claude())
    for name in KEY_ENVS:
        monkeypatch.delenv(name)
    assert choose(AgentConfig(base_url="http://127.0.0.1:8000/v1"))[0] == "openai"


def test_auto_without_any_llm_runs_hpo_on_the_real_train_py(ws, monkeypatch):
    """The fallback, end to end: the notice, then one real torch training proposed by hpo."""
    for name in KEY_ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", path_without_claude())
    # The template's first epoch, at batch 32, outlasts a 5 s budget on a small CPU; one at 512
    # takes about a second. hpo searches the same block either way.
    template = (ws / "train.py").read_text().replace("BATCH_SIZE = 32 ", "BATCH_SIZE = 512 ")
    assert "BATCH_SIZE = 512  # int[16, 1024] log" in template
    (ws / "train.py").write_text(template)
    single_run(ws)

    result = run(ws, "--agent", "auto", "--grace", "10", budget=5)
    assert result.exit_code == 0, result.output
    notice = "agent auto: using hpo, because no LLM is configured"
    assert notice in result.stderr and notice not in result.stdout

    snap = status(ws)
    assert snap["state"] == "finished"
    base, it = snap["iterations"]
    assert base["status"] == "baseline" and base["value"] is not None
    assert it["explanation"].splitlines()[0].endswith(" (hpo: random, 1 finished trial)")
    assert (ws / "train.py").read_text() == template  # proposals live in the run, not here
    if it["value"] is None:
        assert it["status"] == "crash" and it["reason"]
    else:
        assert it["status"] == ("keep" if it["value"] > base["value"] else "discard")
    assert (it["tokens_in"], it["tokens_out"]) == (0, 0)
    assert it["cost_usd"] == 0  # no LLM, nothing to pay
    assert it["train_seconds"] > 0


# --- 6. doctor -------------------------------------------------------------------------------------


def test_doctor_checks_the_agent(ws, server):
    configure(ws, base_url=server.url + "/v1", max_retries=0, request_timeout_secs=5)
    server.add(openai_reply("OK", prompt_tokens=10, completion_tokens=1))

    result = cli.invoke(app, ["doctor", str(ws), "--agent", "openai"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if "agent:" in line]
    assert line.startswith("ok") and "openai gpt-6.1-terra answered in" in line
    assert server.requests[0].body["max_tokens"] == 16  # a tiny request


def test_doctor_fails_on_a_dead_server(ws):
    configure(ws, base_url=closed_port_url(), max_retries=0, request_timeout_secs=5)

    result = cli.invoke(app, ["doctor", str(ws), "--agent", "openai"])
    assert result.exit_code == 1
    *others, last = result.output.splitlines()
    assert last.startswith("FAIL agent: openai API: connection failed")
    assert all(line.startswith("ok   ") for line in others)
    checks = list(dict.fromkeys(line.split()[1] for line in others))
    assert checks == ["workspace:", "interpreter:", "data:", "metric:", "sandbox:"]


# --- what the agent and the server say is printed as text ----------------------------------------


def test_brackets_from_the_model_and_the_server_are_printed_as_they_are(tiny, server):
    """An explanation like "[/INST] ..." and a redacted key are text, not console markup: they
    neither crash the run nor vanish from its output."""
    configure(tiny, name="anthropic", base_url=server.url, max_retries=0)
    reply = CLASS_3_REPLY.replace("Predict", "[/INST] [bold]Predict[/bold]")
    server.add(
        CHECK_OK["anthropic"], anthropic_reply(reply), error_reply(401, f"invalid x-api-key {KEY}")
    )

    result = run(tiny, iterations=2)
    assert result.exit_code == 3, result.output
    assert "iteration 1: training: [/INST] [bold]Predict[/bold] class 3 instead." in result.stderr
    assert "invalid x-api-key [redacted]); check ANTHROPIC_API_KEY" in result.stderr
    assert [it["status"] for it in status(tiny)["iterations"]] == ["baseline", "discard"]
    assert_key_nowhere(tiny, result.output)

    descriptions, table = status_table(tiny)
    assert "[/INST] [bold]Predict" in descriptions  # (a narrow column may cut the rest short)
    assert "[redacted]); check ANTHROPIC_API_KEY" in table  # the stop reason
