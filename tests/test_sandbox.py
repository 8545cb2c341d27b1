"""Hostile train.py files against the trust boundary. Each attack is first shown working where
that is the honest result (sandbox = "none", or no limit), then failing under bubblewrap or the
limit, with a one-line reason recorded. Training goes through the real Trainer: the sandbox,
the minimal environment, the data view, the limits and trusted scoring."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import DATA_DIR, train
from sandboxing import BASELINE, SANDBOXED, run_loop, val_labels_cache, without_cgroups

from autoresearch.core import config
from autoresearch.store.store import Store, list_runs

pytestmark = SANDBOXED
MODES = ["none", "bwrap"]


PEEK_CACHE = """
    import numpy as np, prepare
    prepare.save_predictions(np.load({path!r}))
"""
PEEK_RAW = """
    import gzip, numpy as np, prepare
    raw = gzip.open({path!r}).read()
    prepare.save_predictions(np.frombuffer(raw, dtype=np.uint8, offset=8).astype(np.int64))
"""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("attack", ["cache", "raw"])
def test_reading_the_validation_labels(ws, mode, attack):
    if attack == "cache":
        body = PEEK_CACHE.format(path=str(val_labels_cache()))
    else:
        body = PEEK_RAW.format(path=str(DATA_DIR / "t10k-labels-idx1-ubyte.gz"))
    outcome, _ = train(ws, body, sandbox=mode)
    if mode == "none":
        assert outcome.status == "ok" and outcome.value == 1.0  # the attack works unsandboxed
    else:
        assert outcome.status == "crash" and outcome.value is None
        assert "No such file or directory" in outcome.reason


def test_the_sandbox_still_gives_train_py_its_training_data(ws):
    body = """
        import numpy as np, prepare
        x, y, x_val = prepare.load_data()
        assert x.shape == (60000, 28, 28) and y.shape == (60000,) and x_val.shape == (10000, 28, 28)
        prepare.save_predictions(np.zeros(10000, dtype=np.int64))
    """
    outcome, _ = train(ws, body, sandbox="bwrap")
    assert outcome.status == "ok" and outcome.value == pytest.approx(0.1)


DAEMON = """
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", {seconds!r}])
        os._exit(0)
    time.sleep(0.5)
    import numpy as np, prepare
    prepare.save_predictions(np.zeros(10000, dtype=np.int64))
"""


def sleepers(seconds: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["cmdline"] == ["sleep", seconds] and proc.info["status"] != "zombie":
            found.append(proc)
    return found


@pytest.mark.parametrize("mode", MODES)
def test_a_double_forked_daemon_does_not_outlive_the_run(ws, mode):
    seconds = f"{1000 + os.getpid() % 1000}.{time.time_ns() % 10**6}"  # names this daemon
    started = time.time()
    outcome, _ = train(ws, DAEMON.format(seconds=seconds), sandbox=mode)
    assert outcome.status == "ok", outcome.reason
    assert time.time() - started < 10  # not held up by the daemon keeping the log pipe open
    time.sleep(0.2)
    assert sleepers(seconds) == []


def test_a_daemon_outlives_a_plain_popen_which_is_why_the_runner_hunts_it(tmp_path):
    """The attack itself works: without the runner's hunt, the daemon survives its parent."""
    seconds = f"{2000 + os.getpid() % 1000}.{time.time_ns() % 10**6}"
    script = tmp_path / "daemon.py"
    script.write_text(textwrap.dedent(DAEMON.split("import numpy")[0]).format(seconds=seconds))
    subprocess.run([sys.executable, str(script)], check=True, start_new_session=True)
    survivors = sleepers(seconds)
    assert len(survivors) == 1
    survivors[0].kill()


class Listener:
    """A TCP listener on loopback that records whether anything connected."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(15)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        try:
            conn, _ = self.sock.accept()
            self.received = conn.recv(100)
            conn.close()
        except OSError:
            pass

    def close(self):
        self.sock.close()


NETWORK = """
    import socket, numpy as np, prepare
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"exfiltrated")
        print("connected")
    except OSError as err:
        print("no network:", err)
    prepare.save_predictions(np.zeros(10000, dtype=np.int64))
"""


@pytest.mark.parametrize("mode", MODES)
def test_network_connections(ws, mode):
    listener = Listener()
    try:
        outcome, _ = train(ws, NETWORK.format(port=listener.port), sandbox=mode)
    finally:
        listener.close()
        listener.thread.join(5)
    log = outcome.log_path.read_text()
    if mode == "none":
        assert listener.received == b"exfiltrated" and "connected" in log
    else:
        assert listener.received == b"" and "no network" in log


WRITE_OUTSIDE = """
    import json, os, numpy as np, prepare
    results = {{}}
    for target in {targets!r}:
        try:
            open(target, "w").write("owned")
            results[target] = "written"
        except OSError as err:
            results[target] = type(err).__name__
    print(json.dumps(results))
    prepare.save_predictions(np.zeros(10000, dtype=np.int64))
"""


@pytest.mark.parametrize("mode", MODES)
def test_writing_outside_the_experiment_directory(ws, tmp_path, mode, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    targets = [str(home / "owned"), str(ws / "owned"), str(Path("/tmp") / f"owned-{os.getpid()}")]
    try:
        outcome, _ = train(ws, WRITE_OUTSIDE.format(targets=targets), sandbox=mode)
        assert outcome.status == "ok", outcome.reason
        written = [t for t in targets if Path(t).exists()]
        if mode == "none":
            assert written == targets
        else:
            assert written == []
    finally:
        for target in targets:
            Path(target).unlink(missing_ok=True)


SECRETS = """
    import json, os, numpy as np, prepare
    found = {{k: v for k, v in os.environ.items() if "KEY" in k or "TOKEN" in k}}
    try:
        found["file"] = open({secret_file!r}).read()
    except OSError as err:
        found["file"] = type(err).__name__
    print("SECRETS " + json.dumps(found))
    prepare.save_predictions(np.zeros(10000, dtype=np.int64))
"""


@pytest.mark.parametrize("mode", MODES)
def test_reading_the_orchestrators_secrets(ws, tmp_path, mode, monkeypatch):
    for name in ("AZURE_OPENAI_KEY", "OPENAI_KEY", "GPG_KEY", "ANTHROPIC_API_KEY", "HF_TOKEN"):
        monkeypatch.setenv(name, f"secret-{name}")
    monkeypatch.setenv("MY_PASSED_TOKEN", "passed on purpose")
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    secret_file = home / ".config" / "credentials"
    secret_file.write_text("hunter2")
    monkeypatch.setenv("HOME", str(home))
    outcome, _ = train(
        ws,
        SECRETS.format(secret_file=str(secret_file)),
        sandbox=mode,
        env_passthrough=["MY_PASSED_TOKEN"],
    )
    line = next(x for x in outcome.log_path.read_text().splitlines() if x.startswith("SECRETS"))
    found = json.loads(line.removeprefix("SECRETS "))
    # The environment is an allowlist in both modes: only what the user passes through arrives.
    assert {k: v for k, v in found.items() if k != "file"} == {
        "MY_PASSED_TOKEN": "passed on purpose"
    }
    assert found["file"] == ("hunter2" if mode == "none" else "FileNotFoundError")


MEMORY_HOG = """
    import time, numpy as np, prepare
    block = b"x" * (700 * 2**20)  # written: every page is really used
    time.sleep(0.5)
    prepare.save_predictions(np.zeros(10000, dtype=np.int64))
"""


@pytest.mark.parametrize("backend", ["cgroup", "fallback"])
@pytest.mark.parametrize("limit", [0, 300])
def test_a_memory_hog_past_the_limit(ws, limit, backend, monkeypatch):
    without_cgroups(monkeypatch, backend)
    outcome, _ = train(ws, MEMORY_HOG, sandbox="bwrap", max_memory_mb=limit)
    if limit == 0:
        assert outcome.status == "ok" and outcome.peak_memory_mb > 700
    else:
        assert outcome.status == "crash"
        assert outcome.reason.startswith("memory limit reached") and "300" in outcome.reason


FLOOD = """
    import subprocess, sys, numpy as np, prepare
    children = []
    try:
        for _ in range(80):
            children.append(subprocess.Popen(["sleep", "30"]))
    except OSError as err:
        print("fork refused:", err)
        raise
    print("started", len(children))
    import time; time.sleep(1)  # a flood that lasts: a watchdog polls every 0.1 s
    prepare.save_predictions(np.zeros(10000, dtype=np.int64))
"""


@pytest.mark.parametrize("backend", ["cgroup", "fallback"])
@pytest.mark.parametrize("limit", [0, 30])
def test_a_process_flood_past_the_limit(ws, limit, backend, monkeypatch):
    without_cgroups(monkeypatch, backend)
    outcome, _ = train(ws, FLOOD, sandbox="bwrap", max_processes=limit)
    if limit == 0:
        assert outcome.status == "ok" and "started 80" in outcome.log_path.read_text()
    else:
        assert outcome.status == "crash"
        assert outcome.reason.startswith("process limit reached") and "30" in outcome.reason


# --- through the whole loop: the store, and a CLI agent that tries to cheat -------------------

TAMPER = """\
import os, sqlite3
import numpy as np
import prepare

found = []
here = os.path.abspath(".")
while True:  # walk up from the experiment directory, looking for the run's records
    if os.path.exists(os.path.join(here, "run.db")):
        found.append(os.path.join(here, "run.db"))
    if here == "/":
        break
    here = os.path.dirname(here)
for path in found + [{store!r}]:
    try:
        db = sqlite3.connect(path)
        db.execute("UPDATE iterations SET status = 'crash', value = 0.0")
        db.commit()
        print("tampered with", path)
    except sqlite3.Error as err:
        print("could not tamper:", err)
prepare.save_predictions(np.zeros(10000, dtype=np.int64))
"""


@pytest.mark.parametrize("mode", MODES)
def test_train_py_cannot_rewrite_the_runs_records(ws, tmp_path, mode):
    proposals = tmp_path / "proposals"
    proposals.mkdir()
    (proposals / "001-tamper.py").write_text(BASELINE + "\n")
    replay = ["--agent", "replay", "--replay-dir", str(proposals)]
    first = run_loop(ws, mode, [*replay, "--iterations", "0"])
    target = list_runs(ws)[-1] / "run.db"  # the attacker aims at the earlier run by path
    (proposals / "001-tamper.py").write_text(TAMPER.format(store=str(target)))
    second = run_loop(ws, mode, [*replay, "--new"])
    log = (list_runs(ws)[-1] / "iterations" / "0001" / "train.log").read_text()
    earlier = [it.status for it in Store(target.parent).iterations()]
    assert first["iterations"][0]["status"] == "baseline"
    assert [it["status"] for it in second["iterations"]] == ["baseline", "discard"]
    assert log.count("tampered with") == (1 if mode == "none" else 0)  # walking up finds none
    if mode == "none":  # an absolute path reaches the store unsandboxed
        assert earlier == ["crash"]
    else:
        assert earlier == ["baseline"] and "could not tamper" in log


@pytest.mark.parametrize("mode", MODES)
def test_a_cli_agent_cannot_read_the_labels_into_train_py(ws, mode):
    thief = Path(__file__).parent / "bin" / "label-thief"
    with open(ws / "autoresearch.toml", "a") as f:  # unsandboxed only when the user says so
        f.write(f'\n[agent]\nname = "command"\ncommand = ["{thief}"]\nunsandboxed_ok = true\n')
    run = run_loop(ws, mode, ["--iterations", "1"])
    attempt = run["iterations"][1]
    if mode == "none":
        assert attempt["status"] == "keep" and attempt["value"] == 1.0
        assert attempt["explanation"] == "Stole 10000 labels"
    else:
        assert attempt["status"] == "invalid"
        assert attempt["reason"].startswith("the new train.py is identical to the current one")
        assert attempt["explanation"] == "Could not read the labels: FileNotFoundError"


def test_the_claude_preset_denies_reading_the_secret_paths(ws, monkeypatch):
    from autoresearch.agents.command import CommandAgent

    monkeypatch.setenv("PATH", f"{Path(__file__).parent / 'bin'}{os.pathsep}{os.environ['PATH']}")
    cfg = config.load(ws)
    agent = CommandAgent(cfg.agent, ws, preset="claude")
    secret = [Path("/data/labels"), ws / ".autoresearch"]
    argv = agent._argv("prompt", ws, secret, True)
    denied = argv[argv.index("--disallowedTools") + 1 :]
    assert "Read(//data/labels/**)" in denied
    assert f"Read(/{ws / '.autoresearch'}/**)" in denied
    assert "Read(./**)" in argv[argv.index("--allowedTools") + 1 :]
