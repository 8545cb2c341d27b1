"""The dashboard's JSON API against real run stores: every endpoint, what `status --json` says,
a missing run, a store being written, read-only access, and the token off the loopback."""

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from autoresearch.cli import app as cli_app
from autoresearch.records import TRAINING, Iteration, Usage
from autoresearch.store import Store, list_runs
from autoresearch.web.app import create_app

LOCAL = "http://127.0.0.1"  # the Host a local browser sends
AUTORESEARCH = str(Path(sys.executable).parent / "autoresearch")


def status_json(ws: Path) -> dict:
    result = CliRunner().invoke(cli_app, ["status", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_every_endpoint_on_a_real_run(short_run):
    run_dir = list_runs(short_run)[0]
    Store(run_dir, readonly=True).close()  # as `status` leaves it (no -wal file)
    before = files_of(run_dir)
    client = TestClient(create_app(short_run), base_url=LOCAL)
    expected = status_json(short_run)

    runs = client.get("/api/runs").json()
    assert [r["run"] for r in runs] == [run_dir.name]
    assert runs[0]["recorded"] == 3 and runs[0]["best"] == expected["best"]

    run = client.get(f"/api/runs/{run_dir.name}")
    assert run.status_code == 200 and run.json() == expected  # the API mirrors status --json
    assert [it["status"] for it in expected["iterations"]] == ["baseline", "keep", "discard"]
    assert expected["live"] is None and expected["state"] == "finished"

    it = client.get(f"/api/runs/{run_dir.name}/iterations/1").json()
    assert it["description"] == "MLP with Adam" and it["status"] == "keep"
    assert "+LEARNING_RATE = 0.001" in it["diff"] and "-LEARNING_RATE = 0.1" in it["diff"]
    assert "epoch 1" in it["log"] and it["peak_memory_mb"] > 0 and it["parent"] == 0
    assert it["explanation"].endswith("Adam converge faster.")

    live = client.get(f"/api/runs/{run_dir.name}/live").json()
    assert live == {
        "run": run_dir.name,
        "state": "finished",
        "recorded": 3,
        "live": None,
        "log": [],
    }

    with client.stream("GET", f"/api/runs/{run_dir.name}/events") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        first = next(line for line in events.iter_lines() if line.startswith("data: "))
    assert json.loads(first.removeprefix("data: ")) == live

    for page in ("/", f"/runs/{run_dir.name}", "/static/run.js", "/static/chart.js"):
        assert client.get(page).status_code == 200, page
    assert files_of(run_dir) == before  # read-only: nothing written, not even a lock file


def test_a_missing_run_or_iteration_is_404(short_run):
    client = TestClient(create_app(short_run), base_url=LOCAL)
    run_id = list_runs(short_run)[0].name
    for path in (
        "/api/runs/nope",
        "/api/runs/nope/iterations/0",
        "/api/runs/nope/live",
        "/api/runs/nope/events",
        "/api/runs/.hidden",
        f"/api/runs/{run_id}/iterations/99",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert re.match(r"(run \S+ has )?no (run|iteration)", response.json()["detail"]), path
    assert client.get("/api/runs/..%2F..%2Fsecret").status_code == 404  # no way out of the runs


def test_a_store_being_written_is_read_without_error(ws, cfg):
    """A writer records iterations and live phases as fast as it can while every endpoint is
    read over and over: each answer is complete and consistent, none is an error."""
    store = Store.create(ws / ".autoresearch" / "runs" / "20260101-000000", cfg.model_dump())
    client = TestClient(create_app(ws), base_url=LOCAL)
    done = threading.Event()

    def write():
        writer = Store(store.dir)
        for n in range(60):
            writer.set_live({"phase": TRAINING, "iteration": n, "started_at": time.time()})
            log = writer.iteration_dir(n) / "train.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(f"epoch {n}\n")
            writer.record(
                Iteration(
                    n,
                    "baseline" if n == 0 else "discard",
                    value=0.5 + n / 1000,
                    explanation=f"try {n}",
                    train_py=f"x = {n}\n",
                    diff=f"+x = {n}\n",
                    log_path=str(log),
                    usage=Usage(cost_usd=0.01),
                )  # fmt: skip
            )
        writer.close()
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    seen = 0
    while not done.is_set() or seen < 60:
        run = client.get("/api/runs/20260101-000000")
        assert run.status_code == 200, run.text
        its = run.json()["iterations"]
        assert [it["iteration"] for it in its] == list(range(len(its)))
        seen = len(its)
        for path in ("/api/runs", "/api/runs/20260101-000000/live"):
            assert client.get(path).status_code == 200, path
        if its:
            detail = client.get(f"/api/runs/20260101-000000/iterations/{its[-1]['iteration']}")
            assert detail.status_code == 200 and detail.json()["diff"].startswith("+x = ")
    writer.join()
    assert seen == 60


def test_off_the_loopback_every_request_needs_the_token(short_run):
    run_id = list_runs(short_run)[0].name
    client = TestClient(create_app(short_run, token="s3cret"), base_url="http://10.1.2.3")
    for path in ("/", f"/runs/{run_id}", "/static/run.js", "/api/runs", f"/api/runs/{run_id}"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/api/runs?token=wrong").status_code == 401
    first = client.get("/?token=s3cret")  # the address serve prints: the page keeps a cookie
    assert first.status_code == 200 and "autoresearch_token" in first.headers["set-cookie"]
    assert client.get(f"/api/runs/{run_id}").status_code == 200  # the cookie alone
    client.cookies.clear()
    assert client.get(f"/api/runs/{run_id}").status_code == 401


def test_on_the_loopback_a_foreign_host_is_refused(short_run):
    """DNS rebinding: a web page elsewhere cannot read a local dashboard through its own name."""
    client = TestClient(create_app(short_run), base_url="http://evil.example")
    assert client.get("/api/runs").status_code == 400
    assert TestClient(create_app(short_run), base_url="http://localhost:8765").get("/").is_success


def serve(args: list[str]) -> tuple[subprocess.Popen, str]:
    """`autoresearch serve` in its own process; returns it and the address it printed."""
    proc = subprocess.Popen(
        [AUTORESEARCH, "serve", *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    line = proc.stderr.readline()
    found = re.search(r"(http://\S+)", line)
    assert found, line
    return proc, found.group(1)


def test_serve_on_another_host_prints_a_token_and_requires_it(short_run):
    proc, url = serve([str(short_run), "--host", "0.0.0.0", "--port", "0"])
    try:
        assert "?token=" in url
        base, token = url.split("?token=")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "api/runs", timeout=10)
        assert refused.value.code == 401
        request = urllib.request.Request(
            base + "api/runs", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)[0]["run"] == list_runs(short_run)[0].name
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode in (0, -15)


def test_serve_on_a_busy_port_says_so_in_one_line(short_run):
    proc, url = serve([str(short_run), "--port", "0"])
    try:
        assert "token" not in url and url.startswith("http://127.0.0.1:")
        port = url.rsplit(":", 1)[1].strip("/")
        again = CliRunner().invoke(cli_app, ["serve", str(short_run), "--port", port])
        assert again.exit_code == 1 and "cannot listen on 127.0.0.1" in again.output
    finally:
        proc.terminate()
        proc.wait(timeout=10)
