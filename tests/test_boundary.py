"""The trust boundary as root (as CI runs) and as anyone: each way out that the deny-list
sandbox left open, shown working where that is honest (sandbox = "none", or the old deny-list
command line), then closed by the allow-list sandbox with its privileges dropped."""

from __future__ import annotations

import ctypes
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import DATA_DIR, single_run, train
from sandboxing import BASELINE, run_loop, val_labels_cache
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core import config
from autoresearch.training import sandbox
from autoresearch.training.experiment import Trainer, experiments_root

pytestmark = [
    pytest.mark.skipif(
        sandbox.probe() is not None and not os.environ.get("CI"),
        reason=f"the sandbox does not work here: {sandbox.probe()}",
    ),
    pytest.mark.usefixtures("sandboxed_training"),
]
MODES = ["none", "bwrap"]
ROOT = os.geteuid() == 0
ZEROS = "prepare.save_predictions(np.zeros(10000, dtype=np.int64))"
cli = CliRunner()


def log_json(outcome, marker: str) -> dict:
    line = next(x for x in outcome.log_path.read_text().splitlines() if x.startswith(marker))
    return json.loads(line.removeprefix(marker))


CAPABILITIES = """
    import ctypes, json, os, numpy as np, prepare
    status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
    libc = ctypes.CDLL(None, use_errno=True)
    found = {"CapEff": status["CapEff"].strip(), "uid": os.getuid()}
    if MOUNTS:  # never on the host: only inside a sandbox's own mount namespace
        found["umount"] = libc.umount2(b"/tmp", 2)
        found["remount"] = libc.mount(None, b"/usr", None, 32 | 4096, None)
    print("CAPS " + json.dumps(found))
    prepare.save_predictions(np.zeros(10000, dtype=np.int64))
"""


@pytest.mark.parametrize("mode", MODES)
def test_train_py_holds_no_capabilities(ws, mode):
    outcome, _ = train(ws, CAPABILITIES.replace("MOUNTS", str(mode != "none")), sandbox=mode)
    found = log_json(outcome, "CAPS ")
    if mode == "none":
        assert (int(found["CapEff"], 16) != 0) == ROOT  # root keeps every capability
    else:
        assert int(found["CapEff"], 16) == 0 and found["uid"] != 0
        assert found["umount"] == -1 and found["remount"] == -1


@pytest.mark.skipif(not ROOT, reason="the old sandbox's hole is root's capabilities")
def test_the_old_deny_list_let_root_unmount_its_way_to_the_labels(ws):
    """The release before: `--ro-bind / /` and a tmpfs over the cache; root inside unmounted
    the tmpfs and read the labels. The same attack, in that command line and in ours."""
    train(ws, f"import numpy as np, prepare\n{ZEROS}\n")  # builds the cache
    cache = val_labels_cache().parent
    attack = (
        f"import ctypes; ctypes.CDLL(None).umount2(b'{cache}', 2); "
        f"print(len(open('{cache}/val_labels.npy', 'rb').read()))"
    )
    old = ["bwrap", "--ro-bind", "/", "/", "--tmpfs", str(cache), "--unshare-pid", "--"]
    done = subprocess.run([*old, sys.executable, "-c", attack], capture_output=True, text=True)
    assert done.returncode == 0 and int(done.stdout) > 10000  # the labels, read
    view = sandbox.View(readonly=list(sandbox.interpreter_paths(sys.executable)), secret=[cache])
    ours = sandbox.command(view, [sys.executable, "-c", attack], Path("/"))
    done = subprocess.run(ours, capture_output=True, text=True)
    assert done.returncode != 0 and "No such file or directory" in done.stderr


def test_the_orchestrators_git_runs_no_hook_an_agent_planted(tmp_path, monkeypatch):
    from autoresearch.store.gitrepo import ExperimentRepo

    home = tmp_path / "home"
    (home / "hooks").mkdir(parents=True)
    (home / ".gitconfig").write_text(f"[core]\n\thooksPath = {home / 'hooks'}\n")
    hook = home / "hooks" / "reference-transaction"
    hook.write_text(f"#!/bin/sh\necho ran >> {tmp_path / 'hook-ran'}\n")
    hook.chmod(0o755)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.hooksPath'='" + str(home / "hooks") + "'")
    plain = {**os.environ, "GIT_DIR": str(tmp_path / "plain")}
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "plain")], check=True, env=plain)
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], input=b"x", env=plain,
                          capture_output=True, check=True).stdout.decode().strip()  # fmt: skip
    subprocess.run(["git", "update-ref", "refs/tags/t", blob], check=True, env=plain)
    assert (tmp_path / "hook-ran").exists()  # a plain git runs what the agent planted
    (tmp_path / "hook-ran").unlink()
    repo = ExperimentRepo(tmp_path / "ours")
    repo.set_ref("refs/heads/best", repo.commit({"train.py": "x"}, "m", None))
    assert repo.resolve("best") and not (tmp_path / "hook-ran").exists()


@pytest.mark.parametrize("mode", MODES)
def test_pythonpath_does_not_bring_a_hidden_folder_back(ws, tmp_path, mode, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PYTHONPATH", f"{home}{os.pathsep}{val_labels_cache().parent}")
    sandbox.interpreter_paths.cache_clear()
    body = f"""
        import numpy as np, prepare
        try:
            print("KEY", open({str(home / ".ssh" / "id_ed25519")!r}).read())
        except OSError as err:
            print("KEY", type(err).__name__)
        prepare.save_predictions(np.load({str(val_labels_cache())!r}))
    """
    train(ws, f"import numpy as np, prepare\n{ZEROS}\n")  # builds the cache
    outcome, _ = train(ws, body, sandbox=mode)
    log = outcome.log_path.read_text()
    if mode == "none":
        assert "KEY PRIVATE KEY" in log and outcome.value == 1.0
    else:
        assert "KEY FileNotFoundError" in log and outcome.value is None


@pytest.mark.parametrize("mode", MODES)
def test_a_data_folder_no_setting_names_is_not_there(ws, mode, monkeypatch):
    train(ws, f"import numpy as np, prepare\n{ZEROS}\n")  # the cache is built from DATA_DIR
    monkeypatch.delenv("AUTORESEARCH_DATA_DIR")  # now no setting names it
    raw = DATA_DIR / "t10k-labels-idx1-ubyte.gz"
    body = f"""
        import gzip, numpy as np, prepare
        raw = gzip.open({str(raw)!r}).read()
        prepare.save_predictions(np.frombuffer(raw, dtype=np.uint8, offset=8).astype(np.int64))
    """
    outcome, _ = train(ws, body, sandbox=mode)
    if mode == "none":
        assert outcome.value == 1.0
    else:
        assert outcome.status == "crash" and "No such file or directory" in outcome.reason


@pytest.mark.parametrize("mode", MODES)
def test_a_unix_socket_of_the_host_is_out_of_reach(ws, tmp_path, mode):
    path = tmp_path / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    body = f"""
        import socket, numpy as np, prepare
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect({str(path)!r}); print("SOCKET connected")
        except OSError as err:
            print("SOCKET", type(err).__name__)
        {ZEROS}
    """
    try:
        outcome, _ = train(ws, body, sandbox=mode)
    finally:
        server.close()
    expected = "SOCKET connected" if mode == "none" else "SOCKET FileNotFoundError"
    assert expected in outcome.log_path.read_text()


KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}  # add_key, keyctl


@pytest.mark.skipif(platform.machine() not in KEYCTL, reason="syscall numbers for this arch")
@pytest.mark.parametrize("mode", MODES)
def test_the_kernel_keyring_is_out_of_reach(ws, mode):
    add_key, keyctl = KEYCTL[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    payload = b"keyring-secret"
    key = libc.syscall(add_key, b"user", b"autoresearch-test", payload, len(payload), -4)
    if key < 0:
        pytest.skip(f"no keyring here: {os.strerror(ctypes.get_errno())}")
    body = f"""
        import ctypes, numpy as np, prepare
        libc = ctypes.CDLL(None, use_errno=True); libc.syscall.restype = ctypes.c_long
        key = libc.syscall({keyctl}, 10, -4, b"user", b"autoresearch-test", 0)
        buf = ctypes.create_string_buffer(64)
        n = libc.syscall({keyctl}, 11, ctypes.c_long(key), buf, 64) if key >= 0 else -1
        print("KEY", buf.value.decode() if n > 0 else "refused")
        {ZEROS}
    """
    try:
        outcome, _ = train(ws, body, sandbox=mode)
    finally:
        libc.syscall(keyctl, 9, ctypes.c_long(key), -4)  # KEYCTL_UNLINK
    expected = "KEY keyring-secret" if mode == "none" else "KEY refused"
    assert expected in outcome.log_path.read_text()


def test_readonly_paths_that_hold_a_secret_are_refused(ws):
    cache = val_labels_cache().parents[2]  # a folder that holds the label cache
    settings = (ws / "autoresearch.toml").read_text()
    (ws / "autoresearch.toml").write_text(f"readonly_paths = [{str(cache)!r}]\n{settings}")
    result = cli.invoke(app, ["run", str(ws), "--agent", "hpo", "--sandbox", "bwrap"])
    assert result.exit_code == 2
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and "would show the secret path" in message
    assert not (ws / ".autoresearch" / "runs").exists()


def test_doctor_tries_every_way_out_from_inside(ws):
    result = cli.invoke(app, ["doctor", str(ws), "--agent", "hpo", "--sandbox", "bwrap"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if " sandbox: " in line]
    tried = {line.split(":")[1].strip() for line in lines[1:]}
    assert {"capabilities", "unmount", "remount", "namespaces", "hidden paths", "unix sockets",
            "network", "keyring"} <= tried  # fmt: skip
    assert all(line.startswith("ok") for line in lines)
    assert ("uid 65534" if ROOT else f"uid {os.getuid()}") in lines[0]


@pytest.mark.skipif(not ROOT, reason="only root's bubblewrap can run without a user namespace")
def test_a_sandbox_that_keeps_privileges_stops_the_run(ws, monkeypatch):
    monkeypatch.setattr(sandbox, "boundary", lambda: "neither")  # as if privileges stayed
    result = cli.invoke(app, ["run", str(ws), "--agent", "hpo", "--sandbox", "bwrap"])
    message = result.output.strip()
    assert result.exit_code == 2 and len(message.splitlines()) == 1
    assert message.startswith("error: sandbox: capabilities: effective 000001")
    assert 'or set sandbox = "none"' in message
    assert not (ws / ".autoresearch" / "runs").exists()


# --- what an agent leaves in its folder is data, never instructions ----------------------------

BIN = Path(__file__).parent / "bin"


def command_agent(ws: Path, name: str) -> None:
    with open(ws / "autoresearch.toml", "a") as f:
        f.write(f'\n[agent]\nname = "command"\ncommand = ["{BIN / name}"]\n')
        f.write("unsandboxed_ok = true\n")  # for sandbox = "none"


@pytest.mark.parametrize("mode", MODES)
def test_a_link_in_program_mds_place_is_replaced_not_written_through(
    ws, tmp_path, mode, monkeypatch
):
    store = tmp_path / "run.db"
    store.write_bytes(b"SQLite format 3\0 the records")
    demo = tmp_path / "demo.md"  # how the release before restored program.md: through the link
    demo.symlink_to(store)
    shutil.copy2(ws / "program.md", demo)
    assert store.read_bytes() == (ws / "program.md").read_bytes()
    store.write_bytes(b"SQLite format 3\0 the records")
    monkeypatch.setenv("LINK_TARGET", str(store))
    command_agent(ws, "link-planter")
    program = (ws / "program.md").read_bytes()
    run = run_loop(ws, mode, ["--iterations", "1"])
    assert store.read_bytes() == b"SQLite format 3\0 the records"
    assert (ws / "program.md").read_bytes() == program
    assert [it["status"] for it in run["iterations"]] == ["baseline", "discard"]


@pytest.mark.parametrize("mode", MODES)
def test_bytecode_an_agent_planted_never_trains(ws, tmp_path, mode):
    single_run(ws)
    (ws / "train.py").write_text(BASELINE)
    planted = tmp_path / "planted"  # the attack, where bytecode travels: the agent's folder
    shutil.copytree(ws, planted)
    subprocess.run([BIN / "bytecode-planter"], cwd=planted, input=b"", check=True)
    cfg = config.load(ws, {"budget_secs": 20, "grace_secs": 2, "sandbox": mode})
    trainer = Trainer.prepare(ws, cfg, experiments_root(ws / "store"))
    assert trainer.run(planted, tmp_path / "out").value > 0.5  # nearest centroids, hidden
    command_agent(ws, "bytecode-planter")
    run = run_loop(ws, mode, ["--iterations", "1"])
    attempt = run["iterations"][1]
    assert attempt["status"] == "discard" and attempt["value"] == pytest.approx(0.1)


# --- where user namespaces are refused (Docker's default profile) and we are root --------------


@pytest.fixture
def no_user_namespaces(tmp_path, monkeypatch):
    """A bwrap that refuses --unshare-user as in a container whose seccomp profile blocks it."""
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\ncase " $* " in *" --unshare-user "*) echo "bwrap: No permissions to create '
        "new namespace, likely because the kernel does not allow non-privileged user "
        f'namespaces." >&2; exit 1;; esac\nexec {shutil.which("bwrap")} "$@"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    for cached in (sandbox.probe, sandbox.boundary):
        cached.cache_clear()
    yield
    for cached in (sandbox.probe, sandbox.boundary):
        cached.cache_clear()


@pytest.mark.skipif(not ROOT, reason="a separate uid is root's fallback")
def test_without_user_namespaces_root_trains_as_a_separate_uid(ws, no_user_namespaces):
    assert sandbox.boundary() == sandbox.SEPARATE_UID
    result = cli.invoke(app, ["doctor", str(ws), "--agent", "hpo", "--sandbox", "bwrap"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if " sandbox: " in line]
    assert "uid 65534 with no capabilities (user namespaces are refused here)" in lines[0]
    assert len(lines) > 8 and all(line.startswith("ok") for line in lines)
    outcome, _ = train(ws, CAPABILITIES.replace("MOUNTS", "True"), sandbox="bwrap")
    found = log_json(outcome, "CAPS ")
    assert found["uid"] == 65534 and int(found["CapEff"], 16) == 0
    assert found["umount"] == -1 and found["remount"] == -1
    assert outcome.status == "ok" and outcome.value == pytest.approx(0.1)  # it wrote its output
    outcome, _ = train(
        ws,
        f"import numpy as np, prepare\nprepare.save_predictions(np.load({str(val_labels_cache())!r}))\n",
        sandbox="bwrap",
    )
    assert outcome.status == "crash" and "No such file or directory" in outcome.reason


# --- the same attacks as an unprivileged user ---------------------------------------------------

TEST_USER = "autoresearch-test"


def traversable(path: Path) -> list[Path]:
    """The folders on the way to path that others cannot pass (e.g. /root, 0700)."""
    return [p for p in Path(path).parents if p.is_dir() and not p.stat().st_mode & 0o001]


@pytest.mark.skipif(not ROOT or os.environ.get("AUTORESEARCH_NESTED"), reason="root runs it")
def test_the_boundary_holds_for_an_unprivileged_user_too():
    """This file's tests again, as a dedicated unprivileged user (CI runs as root)."""
    if subprocess.run(["id", TEST_USER], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--shell", "/usr/sbin/nologin", TEST_USER], check=True
        )
    home = Path(tempfile.mkdtemp(prefix="autoresearch-test-"))  # pytest's own folder is 0700
    shutil.chown(home, TEST_USER, TEST_USER)
    closed = traversable(Path(os.path.realpath(sys.executable)))
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "AUTORESEARCH_NESTED": "1",
           "AUTORESEARCH_DATA_DIR": str(DATA_DIR), "CI": os.environ.get("CI", "")}  # fmt: skip
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
            "--basetemp", str(home / "pytest")]  # fmt: skip
    try:
        for folder in closed:  # the interpreter under /root: passable, not listable, meanwhile
            folder.chmod(folder.stat().st_mode | 0o001)
        done = subprocess.run(
            ["runuser", "-u", TEST_USER, "--", *argv],
            cwd=Path(__file__).parent.parent, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    finally:
        for folder in closed:
            folder.chmod(folder.stat().st_mode & ~0o001)
        shutil.rmtree(home, ignore_errors=True)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary
