"""scripts/torch_spec: which PyTorch scripts/bootstrap asks pip for. On Linux PyPI's torch is the
CUDA build, so the CPU build comes from PyTorch's own index where that answers, and from pip's
own indexes (here: a CPU build on disk) where it does not. Run as bootstrap runs it, against a
local index standing in for PyTorch's."""

from __future__ import annotations

import http.server
import os
import platform
import subprocess
import threading

import pytest
from conftest import REPO

SCRIPT = REPO / "scripts" / "torch_spec"


def torch_spec(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "TORCH_SPEC"}
    done = subprocess.run(
        ["bash", str(SCRIPT)], env={**environment, **env}, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def cpu_index(tmp_path):
    """A local package index with a torch/ page, as download.pytorch.org/whl/cpu has."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "index.html").write_text("<a>torch-2.13.0+cpu-...whl</a>\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


@pytest.mark.skipif(platform.system() != "Linux", reason="PyPI's torch is a CPU build there")
def test_the_cpu_build_comes_from_pytorchs_index_where_it_answers(cpu_index):
    assert torch_spec(TORCH_CPU_INDEX=cpu_index) == f"torch==2.13.0 --index-url {cpu_index}"


def test_offline_pip_gets_the_plain_requirement_from_its_own_indexes(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}/whl/cpu"  # nothing listens: as offline here
    assert torch_spec(TORCH_CPU_INDEX=closed) == "torch==2.13.0"


def test_torch_spec_wins(cpu_index):
    spec = "torch==2.13.0+cu128 --index-url https://download.pytorch.org/whl/cu128"
    assert torch_spec(TORCH_SPEC=spec, TORCH_CPU_INDEX=cpu_index) == spec


def test_only_the_tests_install_chromium_and_the_agent_clis():
    bootstrap = (REPO / "scripts" / "bootstrap").read_text()
    assert "bash scripts/bootstrap --tests" in (REPO / "scripts" / "test").read_text()
    assert "--tests" not in (REPO / "scripts" / "demo").read_text()
    before_chromium = bootstrap.split("install chromium chromium")[0].rsplit("\n", 2)[-2]
    assert before_chromium.strip() == 'if [ "$FOR" = --tests ]; then'
    before_npm = bootstrap.split("CLIS=")[0]
    assert '[ "$FOR" = --tests ] || exit 0' in before_npm


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
