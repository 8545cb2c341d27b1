"""`autoresearch init DIR --from BUNDLE[:ITERATION]`: a workspace that starts from another run's
best (or a given) iteration, with that run's program.md, prepare.py and settings; every run started
in it records where it came from (`origin` in `status --json`, shown by status and report)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

from autoresearch.loop.runs import open_run
from autoresearch.store.layout import SNAPSHOT
from autoresearch.store.workspace import (
    IGNORED,
    ORIGIN,
    STATE_DIR,
    TEMPLATE_FILES,
    WorkspaceError,
    describe_origin,
)
from autoresearch.views.bundle import resolve
from autoresearch.views.export import pick


def split(spec: str) -> tuple[Path, int | None]:
    """ "run.tar.gz:7" -> (run.tar.gz, 7); "run.tar.gz" -> (run.tar.gz, None)."""
    path, colon, number = spec.rpartition(":")
    if colon and number.isdigit() and not Path(spec).exists():
        return Path(path), int(number)
    return Path(spec), None


def _interpreter(toml: Path) -> str | None:
    """Point the copied settings at this interpreter where theirs does not exist here."""
    text = toml.read_text()
    found = re.search(r'(?m)^python\s*=\s*"([^"]*)"', text)
    wanted = found.group(1) if found else None
    if wanted is None or shutil.which(wanted) or (toml.parent / wanted).is_file():
        return None
    toml.write_text(text.replace(found.group(0), f'python = "{sys.executable}"', 1))
    return f"the bundle's interpreter {wanted} is not here: python = {sys.executable}"


def start_from(directory: Path, spec: str) -> list[str]:
    """Write the workspace; lines to tell the user."""
    bundle, iteration = split(spec)
    if not bundle.is_file():
        raise WorkspaceError(f"{bundle}: no such bundle")
    source = resolve(bundle)
    store = open_run(source.workspace, None)
    try:
        it = pick(store, iteration)
        cfg = store.config()
        own = store.dir / SNAPSHOT
        clashes = [n for n in TEMPLATE_FILES if (directory / n).exists()]
        if clashes:
            raise WorkspaceError(
                f"{directory} already has {', '.join(clashes)}; choose an empty folder"
            )
        shutil.copytree(
            own, directory, dirs_exist_ok=True, ignore=lambda _d, names: set(names) & IGNORED
        )
        for path in [directory, *directory.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)  # the bundle's copy was read-only
        (directory / "train.py").write_text(it.train_py, encoding="utf-8")
        origin = {
            "bundle": str(bundle.absolute()),
            "bundle_sha256": hashlib.sha256(bundle.read_bytes()).hexdigest(),
            "run": store.run_id,
            "iteration": it.iteration,
            "value": it.value,
            "metric": cfg.metric,
            "commit": it.commit,
            "hardware": (source.manifest or {}).get("hardware"),
        }
    finally:
        store.close()
    (directory / STATE_DIR).mkdir(exist_ok=True)
    (directory / STATE_DIR / ORIGIN).write_text(json.dumps(origin, indent=2))
    lines = [f"started from {describe_origin(origin)}"]
    toml = directory / "autoresearch.toml"
    if toml.is_file():
        changed = _interpreter(toml)
        lines += [changed] if changed else []
    return lines
