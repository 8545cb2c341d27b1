"""The dashboard's JSON API against real run stores: every endpoint, what `status --json` says,
a missing run, a store being written, read-only access, and the token every request needs."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import LOCAL, TOKEN, signed_in
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from autoresearch.cli.app import app as cli_app
from autoresearch.core.records import TRAINING, Iteration, Usage
from autoresearch.store.store import Store, list_runs
from autoresearch.web.app import create_app, host_name

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
    client = signed_in(short_run)
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
    client = signed_in(short_run)
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
    client = signed_in(ws)
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


@pytest.mark.parametrize("where", [LOCAL, "http://10.1.2.3"])
def test_every_request_needs_the_token_on_any_address(short_run, where):
    """On the loopback too: an agent's curl to a local dashboard would read every holdout score."""
    run_id = list_runs(short_run)[0].name
    client = TestClient(create_app(short_run, TOKEN, local=where == LOCAL), base_url=where)
    for path in ("/", f"/runs/{run_id}", "/static/run.js", "/api/runs", f"/api/runs/{run_id}"):
        assert client.get(path).status_code == 403, path
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get(f"/api/runs/{run_id}/events").status_code == 403
    assert client.get("/api/runs?token=wrong").status_code == 403
    assert (
        client.get("/api/runs", headers={"Cookie": "autoresearch_token=wrong"}).status_code == 403
    )
    first = client.get(f"/?token={TOKEN}")  # the address serve prints: the page keeps a cookie
    assert first.status_code == 200
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"autoresearch_token={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get(f"/api/runs/{run_id}").status_code == 200  # the cookie alone
    client.cookies.clear()
    assert client.get(f"/api/runs/{run_id}").status_code == 403


def test_each_port_keeps_its_own_cookie(short_run):
    """Two dashboards on one machine: a browser sends both their cookies (cookies do not tell
    ports apart), and each finds its own."""
    one = TestClient(create_app(short_run, "one"), base_url="http://127.0.0.1:8765")
    two = TestClient(create_app(short_run, "two"), base_url="http://127.0.0.1:8766")
    assert one.get("/?token=one").headers["set-cookie"].startswith("autoresearch_token_8765=one;")
    assert two.get("/?token=two").headers["set-cookie"].startswith("autoresearch_token_8766=two;")
    both = {"Cookie": "autoresearch_token_8765=one; autoresearch_token_8766=two"}
    for client in (one, two):
        client.cookies.clear()
        assert client.get("/api/runs", headers=both).status_code == 200


def test_on_the_loopback_a_foreign_host_is_refused(short_run):
    """DNS rebinding: a web page elsewhere cannot read a local dashboard through its own name,
    even with the token."""
    assert signed_in(short_run, "http://evil.example").get("/api/runs").status_code == 400
    assert signed_in(short_run, "http://evil.example:8765").get("/").status_code == 400
    for local in ("http://localhost:8765", "http://[::1]:8765", "http://[::1]", LOCAL + ":80"):
        assert signed_in(short_run, local).get("/").is_success, local


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8765", "127.0.0.1"),
        ("LOCALHOST", "localhost"),
        ("[::1]:8765", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::1]x", ""),
        ("[::1", ""),
        ("[::1]:80:1", ""),
        ("evil.example:8765", "evil.example"),
        ("", ""),
    ],
)
def test_the_host_header_is_read_as_browsers_send_it(header, name):
    assert host_name(header) == name


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


def loopback6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "0.0.0.0"])
def test_serve_prints_a_token_and_requires_it(short_run, host):
    """A real server on each kind of address: ::1 answered every request with "400 Invalid host
    header" (the Host check cut `[::1]:port` at its first colon)."""
    if host == "::1" and not loopback6():
        pytest.skip("this machine has no IPv6 loopback")
    proc, url = serve([str(short_run), "--host", host, "--port", "0"])
    try:
        if host == "0.0.0.0":  # an address another machine can use is printed instead
            assert url.startswith("http://") and "0.0.0.0" not in url
        else:
            assert url.startswith("http://[::1]:" if host == "::1" else f"http://{host}:")
        assert "?token=" in url
        base, token = url.split("?token=")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "api/runs", timeout=10)
        assert refused.value.code == 403
        request = urllib.request.Request(
            base + "api/runs", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)[0]["run"] == list_runs(short_run)[0].name
        with urllib.request.urlopen(url, timeout=10) as page:  # what a browser opens
            assert page.status == 200 and "autoresearch_token_" in page.headers["set-cookie"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode in (0, -15)


def test_serve_on_a_busy_port_says_so_in_one_line(short_run):
    proc, url = serve([str(short_run), "--port", "0"])
    try:
        assert url.startswith("http://127.0.0.1:")
        port = url.split("?")[0].rsplit(":", 1)[1].strip("/")
        again = CliRunner().invoke(cli_app, ["serve", str(short_run), "--port", port])
        assert again.exit_code == 1 and "cannot listen on 127.0.0.1" in again.output
    finally:
        proc.terminate()
        proc.wait(timeout=10)
