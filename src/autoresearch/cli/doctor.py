"""`autoresearch doctor`: one line per check, here and (with a Ray cluster) on every node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from autoresearch.checks import preflight
from autoresearch.cli.common import EXIT_FAILED, Workspace, load_config, out
from autoresearch.cli.flags import config_flags
from autoresearch.core.config import Config
from autoresearch.core.safe_text import one_line


@config_flags(
    "python",
    "data_dir",
    "agent.name",
    "agent.model",
    "sandbox",
    "run.ray_address",
    helps={"run.ray_address": "A Ray cluster whose every node is checked too."},
)
def doctor(directory: Workspace = Path("."), flags: dict[str, Any] | None = None) -> None:
    """Check a workspace before a run: one line per check.

    The agent's and each Ray node's checks included; exit 1 on a failure."""
    cfg = load_config(directory, flags or {})
    extra = preflight.agent_checks(cfg)
    failed = not all([_show(check) for check in preflight.run_checks(directory, cfg, extra)])
    from autoresearch.training.ray.cluster import address_of  # imports no Ray

    address = address_of(cfg.run.ray_address)
    if address and not _check_cluster(address, directory, cfg):
        failed = True
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _show(check: preflight.Check, where: str = "") -> bool:
    mark = ("ok  ", "green") if check.ok else ("FAIL", "red")
    out.print(Text.assemble(mark, f" {where}{check.name}: {one_line(check.detail)}"))
    return check.ok


def _check_cluster(address: str, directory: Path, cfg: Config) -> bool:
    """Every node's lines, after the cluster's; False on any failure."""
    from autoresearch.checks import node_checks
    from autoresearch.training.ray.cluster import ClusterError
    from autoresearch.training.task import TaskError

    try:
        reports = node_checks.check_nodes(address, directory, cfg)
    except ClusterError as err:
        return _show(preflight.Check("cluster", False, str(err)))
    except TaskError as err:  # the data check above says so too
        return _show(preflight.Check("cluster", False, f"not checked: {err}"))
    ok = _show(node_checks.room(address, reports, cfg))
    for report in reports:
        ok &= all([_show(check, f"node {report.node.label} ") for check in report.checks])
    return ok
