"""`autoresearch bundle`: one run of a workspace in one file, to share or to keep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from autoresearch.cli.common import RunId, Workspace, err, fail, out
from autoresearch.core.config import ConfigError
from autoresearch.core.safe_text import one_line


def bundle(
    directory: Workspace,
    output: Annotated[Path, typer.Option("-o", "--output", help="The bundle file to write.")],
    run_id: RunId = None,
) -> None:
    """Write a run (default the latest) to one file that status, report and init --from read.

    The file holds its store, every experiment's code (a git bundle), logs, reports, strategy
    versions and the machine it ran on; compare, export and serve read it too."""
    from autoresearch.loop.runs import open_run
    from autoresearch.views.bundle import BundleError, write

    if output.is_dir():
        raise fail(f"{output} is a folder; name the bundle file, e.g. -o {output}/run.tar.gz")
    try:
        store = open_run(directory, run_id)
    except ConfigError as e:
        raise fail(str(e)) from None
    err.print(one_line(f"bundling run {store.run_id} of {directory} ..."))
    try:
        path = write(directory, store, output)
    except BundleError as e:
        raise fail(str(e)) from None
    finally:
        store.close()
    size = path.stat().st_size / 2**20
    out.print(one_line(f"wrote {path} ({size:.1f} MB): run {store.run_id}"))
