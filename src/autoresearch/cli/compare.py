"""`autoresearch compare`: runs side by side, from a workspace and from bundles."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from autoresearch.cli.common import EXIT_REFUSED, Json, Workspace, err, fail, flag, out, reading
from autoresearch.core.config import ConfigError
from autoresearch.core.safe_text import one_line, strict_json
from autoresearch.store.workspace import STATE_DIR


def compare(
    directory: Workspace = Path("."),
    run_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Run ids (default every run of the workspace) and bundle files to add."
        ),
    ] = None,
    as_json: Json = False,
    as_markdown: Annotated[bool, flag("--markdown", help="Print the table as markdown.")] = False,
    plot_path: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Write compare.png here (default the workspace's .autoresearch/; with --json "
            "or --markdown, or from a bundle, only when given).",
        ),
    ] = None,
) -> None:
    """Runs side by side: settings, iterations, keeps, best, cost; and compare.png."""
    from autoresearch.store.layout import runs_dir
    from autoresearch.store.store import write_atomically
    from autoresearch.views.compare import CompareRefused
    from autoresearch.views.compare import compare as compare_runs
    from autoresearch.views.compare_plot import plot
    from autoresearch.views.compare_table import markdown, render

    if not directory.exists() and (runs_dir(Path(".")) / directory.name / "run.db").is_file():
        # `compare RUN1 RUN2` inside a workspace: the first is a run too, not the folder
        directory, run_ids = Path("."), [str(directory), *(run_ids or [])]
    given, directory = directory, reading(directory)
    names = [r for r in run_ids or [] if not Path(r).is_file()]
    bundles = [reading(Path(r)) for r in run_ids or [] if Path(r).is_file()]
    try:
        cmp = compare_runs(directory, names or None, bundles)
    except ConfigError as e:
        raise fail(str(e)) from None
    except CompareRefused as e:
        raise fail(str(e), EXIT_REFUSED) from None
    # a table asked for, or a read-only bundle with nowhere of its own to write: no png
    drawn = plot_path is not None or not (as_json or as_markdown or given != directory)
    path = plot_path or directory / STATE_DIR / "compare.png"
    if drawn and not os.access(path.parent, os.W_OK):
        raise fail(
            f"{path.parent} is not writable; pass --plot PATH to write compare.png elsewhere"
        )
    image, plot_failed = None, None
    if drawn:
        try:
            image = plot(cmp)
        except Exception as e:  # noqa: BLE001 - a picture that cannot be drawn never costs the table
            plot_failed = f"compare.png could not be drawn: {type(e).__name__}: {e}"
    if image is not None:
        write_atomically(path, image)
    if as_json:
        print(
            strict_json({**cmp.to_json(), "plot": None if image is None else str(path)}, indent=2)
        )
    elif as_markdown:
        sys.stdout.write(markdown(cmp))
    else:
        render(cmp, out)
    if drawn:
        err.print(one_line(plot_failed[:300] if plot_failed else f"wrote {path}"))
    elif given != directory:
        err.print(f"compare.png not drawn: {given} is a read-only bundle; pass --plot PATH")
