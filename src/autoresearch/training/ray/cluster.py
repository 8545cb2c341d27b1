"""The Ray cluster a run trains on: an existing one (`--ray-address`, RAY_ADDRESS) or one started
on this machine; Ray is an optional extra, imported only here and by the modules that run on it."""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass

from autoresearch.store.runstate import RUN_ENV

INSTALL = "pip install 'autoresearch[ray]'"
REACH_SECS = 5  # Ray itself retries an unreachable address for a minute or more
NAMESPACE = "autoresearch"
ACCELERATOR = "accelerator_type:"  # the prefix of Ray's resource naming a node's GPU type


class ClusterError(Exception):
    """A one-line problem with Ray or the cluster."""


@dataclass
class Node:
    node_id: str
    host: str
    cpus: float
    gpus: float
    address: str = ""  # its IP address, as Ray knows it
    gpu_type: str = ""  # Ray's accelerator type ("A100", "H100"); "": none known

    @property
    def label(self) -> str:
        """How a person tells it apart: host, address, the start of its id."""
        return f"{self.host} ({self.address or '?'}, {self.node_id[:8]})"


def ray_module():
    try:
        import ray
    except ImportError:
        raise ClusterError(f"training on Ray needs Ray installed: {INSTALL}") from None
    return ray


def address_of(configured: str | None) -> str | None:
    """The cluster to join: the configured address, else RAY_ADDRESS; None starts a local one."""
    return configured or os.environ.get("RAY_ADDRESS") or None


def connect(configured: str | None, cpus: int | None = None):
    """ray, initialised against the cluster (once per process); cpus caps a local one."""
    ray = ray_module()
    if ray.is_initialized():
        return ray
    address = address_of(configured)
    if address:
        _check_reachable(address)
    # "local": a cluster of its own (None would join one that `ray start` left on this machine)
    local = {} if address else {"num_cpus": cpus, "include_dashboard": False}
    # A local cluster's processes must not carry the run's tag: a sweep would kill them.
    tag = os.environ.pop(RUN_ENV, None)
    try:
        ray.init(
            address=address or "local",
            namespace=NAMESPACE,
            logging_level="ERROR",
            log_to_driver=False,
            configure_logging=False,
            **local,
        )
    except Exception as err:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ...
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ClusterError(f"could not reach {where}: {first}") from None
    finally:
        if tag is not None:
            os.environ[RUN_ENV] = tag
    return ray


def nodes(ray) -> list[Node]:
    """The cluster's live nodes."""
    return [
        Node(
            n["NodeID"],
            n.get("NodeManagerHostname") or n.get("NodeManagerAddress", "?"),
            n.get("Resources", {}).get("CPU", 0.0),
            n.get("Resources", {}).get("GPU", 0.0),
            n.get("NodeManagerAddress", ""),
            gpu_type_of(n.get("Resources", {})),
        )
        for n in ray.nodes()
        if n.get("Alive")
    ]


def gpu_type_of(resources: dict) -> str:
    """The GPU type Ray gives a node as a resource ("accelerator_type:A100": 1.0); "" for none."""
    found = sorted(key.split(":", 1)[1] for key in resources if key.startswith(ACCELERATOR))
    return found[0] if found else ""


def fits(node: Node, resources) -> int:
    """How many experiments asking for [resources] (cpus, gpus) the node trains at once."""
    count = math.floor(node.cpus / resources.cpus)
    return min(count, math.floor(node.gpus / resources.gpus)) if resources.gpus else count


def on_node(remote, node_id: str, **options):
    """The remote function (with Ray options), pinned to one node (no fallback elsewhere)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    pinned = NodeAffinitySchedulingStrategy(node_id, soft=False)
    return remote.options(scheduling_strategy=pinned, **options)


def _check_reachable(address: str) -> None:
    """A host:port address (or ray://host:port) that refuses connections, said at once."""
    hostport = address.removeprefix("ray://").rsplit("/", 1)[0]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", "local": Ray resolves them itself
    try:
        socket.create_connection((host, int(port)), timeout=REACH_SECS).close()
    except OSError as err:
        raise ClusterError(f"could not reach the Ray cluster at {address}: {err}") from None
