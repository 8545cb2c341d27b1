"""`doctor --ray-address` on a real local Ray cluster of two nodes: the checks run on each node,
and a node that lacks what training needs fails alone."""

import os
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from autoresearch.cli.app import app

cli = CliRunner()
NODE_PYTHON = "autoresearch-node-python"  # an interpreter on the second node's PATH only


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A head and one more node, 1 CPU each; only the second finds NODE_PYTHON on its PATH."""
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    bin_dir = tmp_path_factory.mktemp("node-bin")
    wrapper = bin_dir / NODE_PYTHON
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    cluster = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        cluster.add_node(
            num_cpus=1, env_vars={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        )
        yield cluster.address, bin_dir
    finally:
        cluster.shutdown()


def _node_lines(output: str, check: str) -> list[str]:
    return [line for line in output.splitlines() if f") {check}: " in line and " node " in line]


def test_doctor_checks_every_node(ws, ray_cluster):
    address, _ = ray_cluster
    result = cli.invoke(app, ["doctor", str(ws), "--agent", "hpo", "--ray-address", address])
    assert result.exit_code == 0, result.output
    assert f"ok   cluster: 2 live node(s) at {address}" in result.output
    nodes = {line.split(" node ")[1].split(") ")[0] for line in _node_lines(result.output, "temp")}
    assert len(nodes) == 2, result.output
    for check in ("autoresearch", "temp", "interpreter", "sandbox", "data", "resources"):
        lines = _node_lines(result.output, check)
        assert len(lines) == 2 and all(line.startswith("ok   ") for line in lines), result.output
    interpreter = _node_lines(result.output, "interpreter")[0]
    assert sys.executable in interpreter and "imports torch" in interpreter
    assert "training files come with each experiment" in _node_lines(result.output, "data")[0]


def test_a_node_without_the_interpreter_fails_alone(ws, ray_cluster, monkeypatch):
    address, bin_dir = ray_cluster
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")  # here: found
    argv = ["doctor", str(ws), "--agent", "hpo", "--python", NODE_PYTHON, "--ray-address", address]
    result = cli.invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert "ok   interpreter: " in result.output  # this machine has it
    failed, passed = sorted(_node_lines(result.output, "interpreter"))  # "FAIL" < "ok"
    assert failed.startswith("FAIL ") and f"'{NODE_PYTHON}' not found" in failed
    assert passed.startswith("ok   ") and str(bin_dir / NODE_PYTHON) in passed
    assert [line for line in result.output.splitlines() if line.startswith("FAIL")] == [failed]


def test_an_unreachable_cluster_is_one_line(ws):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    result = cli.invoke(app, ["doctor", str(ws), "--agent", "hpo", "--ray-address", address])
    assert result.exit_code == 1
    failures = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert len(failures) == 1 and f"could not reach the Ray cluster at {address}" in failures[0]
    assert " node " not in result.output


def test_doctor_without_a_cluster_does_not_import_ray():
    code = (
        "import sys; from autoresearch.cli import app, doctor; "
        "from autoresearch.training.ray import cluster; assert 'ray' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_cluster_without_the_gpus_an_experiment_asks_has_no_room(cfg):
    from autoresearch.checks.node_checks import NodeReport, resources_check, room
    from autoresearch.training.ray.cluster import Node

    cfg.resources.gpus = 1
    cpu_only, gpu = Node("a" * 56, "cpu", 8.0, 0.0, "10.0.0.2"), Node("b" * 56, "gpu", 8, 2, "")
    reports = [NodeReport(cpu_only, [resources_check(cpu_only, cfg)])]
    assert "no experiment lands here" in reports[0].checks[0].detail
    check = room("10.0.0.2:6379", reports, cfg)
    assert not check.ok and "asks 1 CPUs, 1 GPUs" in check.detail
    reports.append(NodeReport(gpu, [resources_check(gpu, cfg)]))
    assert room("10.0.0.2:6379", reports, cfg).detail.endswith("room for 2 experiment(s)")
