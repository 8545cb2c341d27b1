"""Budget enforcement: every train.py ends by budget + grace and leaves no process behind."""

import json
import os
import sys
import textwrap
import time

import psutil
import pytest

from autoresearch.training.local import run_training, training_env

BUDGET, GRACE = 1.0, 1.0


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def run(tmp_path, body: str, budget=BUDGET, grace=GRACE, **kw):
    (tmp_path / "train.py").write_text(textwrap.dedent(body))
    return run_training(sys.executable, tmp_path, budget, grace, tmp_path / "train.log", **kw)


def spawned_pids(tmp_path) -> list[int]:
    return [int(p) for p in (tmp_path / "pids").read_text().split()]


SPAWN = textwrap.dedent("""
    import os, subprocess, sys
    def spawn(**kw):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"], **kw)
        with open("pids", "a") as f:
            f.write(f"{os.getpid()} {child.pid}\\n")
        return child
""")

CASES = {
    "ignores SIGTERM in a busy loop": """
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open("pids", "w").write(str(__import__("os").getpid()))
        while True:
            pass
    """,
    "child sleeps forever": SPAWN + "spawn().wait()\n",
    "grandchild escapes the process group": SPAWN + "spawn(start_new_session=True).wait()\n",
    "stuck in a long C call": """
        import ctypes, os, signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open("pids", "w").write(str(os.getpid()))
        ctypes.CDLL(None).sleep(1000)
    """,
}


@pytest.mark.parametrize("name", CASES)
def test_hard_kill_at_the_deadline_leaves_nothing_behind(tmp_path, name):
    started = time.time()
    result = run(tmp_path, CASES[name])
    assert time.time() - started < BUDGET + GRACE + 2.0
    assert result.killed and result.exit_code is None and "SIGKILL" in result.kill_reason
    time.sleep(0.2)
    assert not any(alive(pid) for pid in spawned_pids(tmp_path))


def test_a_child_left_behind_by_a_finished_train_py_is_killed(tmp_path):
    result = run(tmp_path, SPAWN + "spawn()\nprint('done')\n", budget=30)
    assert not result.killed and result.exit_code == 0 and result.train_seconds < 10
    time.sleep(0.2)
    assert not any(alive(pid) for pid in spawned_pids(tmp_path))


def test_environment_is_an_allowlist_with_the_budget(tmp_path, monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "GITHUB_TOKEN", "AZURE_OPENAI_KEY", "OPENAI_KEY", "GPG_KEY"):
        monkeypatch.setenv(name, f"{name}-hidden-value")
    monkeypatch.setenv("HARMLESS", "yes")
    monkeypatch.setenv("PASSED_ON", "on purpose")
    env = training_env(30, tmp_path, passthrough=["PASSED_ON"])
    result = run(
        tmp_path,
        "import json, os; json.dump(dict(os.environ), open('env.json', 'w'))",
        budget=30,
        env=env,
    )
    assert result.exit_code == 0
    seen = json.loads((tmp_path / "env.json").read_text())
    assert seen["TRAINING_BUDGET_SECS"] == "30" and seen["PASSED_ON"] == "on purpose"
    assert seen["AUTORESEARCH_PREDICTIONS"] == str(tmp_path / "predictions.npy")
    assert seen["HOME"] == str(tmp_path / ".home") and seen["PATH"] == os.environ["PATH"]
    assert "HARMLESS" not in seen  # not on the allowlist, not passed through
    assert "hidden-value" not in json.dumps(seen)


def test_log_is_capped_and_keeps_the_tail(tmp_path):
    body = """
        import sys
        for i in range(200_000):
            print(f"line {i} " + "x" * 40)
        sys.exit("the real error is at the end")
    """
    result = run(tmp_path, body, budget=60, max_log_bytes=50_000)
    size = result.log_path.stat().st_size
    assert result.exit_code == 1 and size < 50_000 + 200
    text = result.log_path.read_text()
    assert text.startswith("line 0 ") and "bytes of output dropped" in text
    assert result.error_tail() == "the real error is at the end"


def test_peak_memory_of_the_process_tree_is_measured(tmp_path):
    body = "import time; block = bytearray(300 * 2**20); time.sleep(1)"
    result = run(tmp_path, body, budget=30)
    assert result.exit_code == 0 and result.peak_memory_mb > 300
