"""CommandAgent against the fake `claude` and `codex` in tests/bin and small scripted commands."""

import json
import os
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import PeakRss

from autoresearch.agents.base import AgentError, Request
from autoresearch.agents.command import CommandAgent
from autoresearch.core.config import AgentConfig

BIN = Path(__file__).parent / "bin"
TRAIN = "EPOCHS = 3\nLEARNING_RATE = 0.1\n"
FILES = {
    "train.py": TRAIN,
    "prepare.py": "def score():\n    return 1.0\n",
    "program.md": "# Program\n",
    "autoresearch.toml": 'metric = "val_accuracy"\n',
}


@pytest.fixture(autouse=True)
def fake_path(monkeypatch):
    path = os.pathsep.join([str(BIN), str(Path(sys.executable).parent), os.environ["PATH"]])
    monkeypatch.setenv("PATH", path)


@pytest.fixture
def workdir(tmp_path):
    folder = tmp_path / "exp"
    folder.mkdir()
    for name, text in FILES.items():
        (folder / name).write_text(text)
    return folder


def request(workdir):
    return Request(iteration=1, prompt="Improve the model.", train_py=TRAIN, workdir=workdir)


def test_claude_edits_train_py(workdir, tmp_path, monkeypatch):
    log = tmp_path / "log.json"
    monkeypatch.setenv("FAKE_CLAUDE_LOG", str(log))
    agent = CommandAgent(AgentConfig(name="claude", model="sonnet"), tmp_path)
    proposal = agent.propose(request(workdir))
    assert agent.name == "claude"
    assert proposal.invalid_reason is None
    assert proposal.train_py == TRAIN + "LEARNING_RATE = 0.01  # fake claude\n"
    assert proposal.explanation.startswith("Lowered the learning rate")
    assert json.loads(proposal.raw_output)["type"] == "result"
    assert proposal.usage.cost_usd == pytest.approx(0.0123)
    assert (proposal.usage.tokens_in, proposal.usage.tokens_out) == (3210, 400)
    assert proposal.usage.tokens_cached == 3000
    assert proposal.reverted == []
    sent = json.loads(log.read_text())
    assert sent["prompt"].startswith("Improve the model.")
    assert "2-5 sentence explanation" in sent["prompt"]
    assert sent["argv"][:3] == ["-p", "--output-format", "json"]
    assert sent["argv"][-2:] == ["--model", "sonnet"]
    assert "Edit(./train.py)" in sent["argv"]


def test_400_mb_of_output_is_read_capped_and_the_result_at_its_end_still_found(
    workdir, tmp_path, monkeypatch
):
    monkeypatch.setenv("FAKE_CLAUDE_FLOOD_MB", "400")
    with PeakRss() as rss:
        proposal = CommandAgent(AgentConfig(name="claude"), tmp_path).propose(request(workdir))
    assert rss.growth_mb < 300, f"the orchestrator grew by {rss.growth_mb:.0f} MB"
    assert proposal.invalid_reason is None
    assert proposal.train_py == TRAIN + "LEARNING_RATE = 0.01  # fake claude\n"
    assert proposal.explanation.startswith("Lowered the learning rate")
    assert proposal.usage.cost_usd == pytest.approx(0.0123)
    assert len(proposal.raw_output) < 250_000
    assert json.loads(proposal.raw_output.splitlines()[-1])["type"] == "result"


def test_changes_to_other_files_are_reverted(workdir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "touch_other")
    proposal = CommandAgent(AgentConfig(name="claude"), tmp_path).propose(request(workdir))
    assert proposal.invalid_reason is None
    assert proposal.reverted == ["notes/new.txt", "prepare.py", "program.md"]
    assert proposal.train_py.endswith("# fake claude\n")
    for name, text in FILES.items():
        if name != "train.py":
            assert (workdir / name).read_text() == text
    assert not (workdir / "notes").exists()


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("garbage", "claude printed no JSON result: I edited the file, trust me."),
        ("error", "claude reported an error: Not logged in · Please run /login"),
        ("max_turns", "claude reported an error (error_max_turns): Reached maximum turns (3)"),
        (
            "during_execution",
            "claude reported an error (error_during_execution): API Error: 529 Overloaded; "
            "Request was aborted.",
        ),
        ("delete", "the agent deleted train.py"),
    ],
)
def test_claude_failures_are_invalid(workdir, tmp_path, monkeypatch, mode, reason):
    monkeypatch.setenv("FAKE_CLAUDE_MODE", mode)
    proposal = CommandAgent(AgentConfig(name="claude"), tmp_path).propose(request(workdir))
    assert proposal.train_py is None
    assert proposal.invalid_reason == reason
    if mode == "error":  # the failed call still cost money
        assert proposal.usage.cost_usd == pytest.approx(0.0123)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_hanging_agent_is_killed_with_its_children(workdir, tmp_path, monkeypatch):
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "sleep")
    monkeypatch.setenv("FAKE_CLAUDE_PIDFILE", str(pidfile))
    agent = CommandAgent(AgentConfig(name="claude", timeout_secs=1), tmp_path)
    started = time.monotonic()
    proposal = agent.propose(request(workdir))
    assert time.monotonic() - started < 10
    assert proposal.train_py is None
    assert proposal.invalid_reason == "agent timed out after 1 s"
    pids = [int(pid) for pid in pidfile.read_text().split()]
    deadline = time.monotonic() + 5
    while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(pid) for pid in pids)


def test_missing_executable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AgentError, match="`claude` not found on PATH; install Claude Code"):
        CommandAgent(AgentConfig(name="claude"), tmp_path)
    with pytest.raises(AgentError, match="`no-such-agent` not found on PATH"):
        CommandAgent(AgentConfig(name="command", command=["no-such-agent"]), tmp_path)
    with pytest.raises(AgentError, match="agent.command is empty"):
        CommandAgent(AgentConfig(name="command"), tmp_path)


def test_check(tmp_path):
    line = CommandAgent(AgentConfig(name="claude"), tmp_path).check()
    assert line.startswith("claude: 1.0.99 (Claude Code)")
    line = CommandAgent(AgentConfig(name="command", command=["codex"]), tmp_path).check()
    assert line == f"command: {BIN / 'codex'}"


AGENT_SCRIPT = """\
#!/usr/bin/env python3
import sys
from pathlib import Path

prompt = Path(sys.argv[2]).read_text()
assert sys.stdin.read() == prompt
Path("train.py").write_text(Path("train.py").read_text() + "# generic\\n")
print("working...")
print("Added a comment to train.py.", len(prompt) > 0)
"""


def test_generic_command_with_prompt_file(workdir, tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    script = workspace / "agent.py"
    script.write_text(AGENT_SCRIPT)
    script.chmod(0o755)
    cfg = AgentConfig(name="command", command=["./agent.py", "--prompt", "{prompt_file}"])
    proposal = CommandAgent(cfg, workspace).propose(request(workdir))
    assert proposal.invalid_reason is None
    assert proposal.train_py == TRAIN + "# generic\n"
    assert proposal.explanation == "working...\nAdded a comment to train.py. True"
    assert proposal.usage.cost_usd is None


def test_generic_command_failure(workdir, tmp_path):
    code = "import sys; sys.stderr.write('Traceback\\nValueError: boom\\n'); sys.exit(3)"
    cfg = AgentConfig(name="command", command=[sys.executable, "-c", code])
    proposal = CommandAgent(cfg, tmp_path).propose(request(workdir))
    assert proposal.train_py is None
    name = Path(sys.executable).name
    assert proposal.invalid_reason == f"`{name}` exited with code 3: ValueError: boom"


def test_codex_preset(workdir, tmp_path, monkeypatch):
    log = tmp_path / "log.json"
    monkeypatch.setenv("FAKE_CODEX_LOG", str(log))
    agent = CommandAgent(AgentConfig(name="command", model="gpt-5"), tmp_path, preset="codex")
    proposal = agent.propose(request(workdir))
    assert agent.name == "codex"
    assert proposal.invalid_reason is None
    assert proposal.train_py == TRAIN + "BATCH_SIZE = 256  # fake codex\n"
    assert proposal.explanation == "Doubled the batch size.\nFaster epochs."
    usage = proposal.usage
    assert (usage.tokens_in, usage.tokens_out, usage.tokens_cached) == (1000, 50, 600)
    assert usage.cost_usd == pytest.approx((400 * 1.25 + 600 * 0.125 + 50 * 10.0) / 1e6)
    sent = json.loads(log.read_text())
    assert sent["argv"][:5] == [
        "exec",
        "--json",
        "--sandbox",
        "workspace-write",
        "--skip-git-repo-check",
    ]
    assert sent["argv"][-3:] == ["--model", "gpt-5", "-"]
    assert "2-5 sentence explanation" in sent["prompt"]


def test_verbose_output_is_an_array_with_the_result_last(workdir, tmp_path, monkeypatch):
    # "verbose": true in the user's settings turns --output-format json into an array
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text('{"verbose": true}')
    monkeypatch.setenv("HOME", str(home))
    proposal = CommandAgent(AgentConfig(name="claude"), tmp_path).propose(request(workdir))
    assert proposal.raw_output.startswith("[")
    assert proposal.invalid_reason is None
    assert proposal.explanation.startswith("Lowered the learning rate")
    assert proposal.usage.cost_usd == pytest.approx(0.0123)
    # and an error result in that shape is read as well
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "max_turns")
    proposal = CommandAgent(AgentConfig(name="claude"), tmp_path).propose(request(workdir))
    assert proposal.invalid_reason.endswith("(error_max_turns): Reached maximum turns (3)")


def test_a_denied_edit_that_left_train_py_unchanged_says_so(workdir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "denied")
    proposal = CommandAgent(AgentConfig(name="claude"), tmp_path).propose(request(workdir))
    assert proposal.train_py is None
    assert proposal.invalid_reason.startswith("claude was refused Edit(")
    assert proposal.invalid_reason.endswith("prepare.py); train.py is unchanged")
    assert (workdir / "prepare.py").read_text() == FILES["prepare.py"]


def test_a_denied_call_beside_a_good_edit_is_a_note(workdir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "denied_other")
    proposal = CommandAgent(AgentConfig(name="claude"), tmp_path).propose(request(workdir))
    assert proposal.invalid_reason is None
    assert proposal.train_py.endswith("# fake claude\n")
    [note] = proposal.notes
    assert note.startswith("claude was refused Edit(") and note.endswith("prepare.py)")


def test_codex_in_a_container_without_user_namespaces(workdir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CODEX_USERNS", "blocked")
    log = tmp_path / "log.json"
    monkeypatch.setenv("FAKE_CODEX_LOG", str(log))
    # autoresearch's sandbox off too: codex's own fails, and going without it is not suggested
    proposal = CommandAgent(AgentConfig(name="codex"), tmp_path).propose(request(workdir))
    assert proposal.train_py is None
    reason = proposal.invalid_reason
    assert reason.startswith(
        "codex's own sandbox cannot run here (bwrap: No permissions to create a new namespace"
    )
    assert "make autoresearch's sandbox work" in reason and "\n" not in reason
    assert "danger-full-access" not in reason
    # inside autoresearch's sandbox codex always runs without its own, whatever the setting
    contained = request(workdir)
    contained.wrap = lambda argv, scratch: argv  # as if inside autoresearch's agent sandbox
    proposal = CommandAgent(AgentConfig(name="codex"), tmp_path).propose(contained)
    assert proposal.invalid_reason is None
    assert proposal.train_py == TRAIN + "BATCH_SIZE = 256  # fake codex\n"
    assert json.loads(log.read_text())["argv"][2:4] == ["--sandbox", "danger-full-access"]


def test_codex_failure(workdir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CODEX_MODE", "fail")
    proposal = CommandAgent(AgentConfig(name="codex"), tmp_path).propose(request(workdir))
    assert proposal.train_py is None
    assert proposal.invalid_reason == "codex failed: stream disconnected"
    assert proposal.usage.cost_usd is None  # no model configured: its price is unknown
