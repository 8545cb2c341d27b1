"""`autoresearch init --adopt DIR`: use a workspace you already have, unchanged.

It recognises a checkout of Karpathy's autoresearch (github.com/karpathy/autoresearch: a
prepare.py with `TIME_BUDGET = 300` and the fixed `evaluate_bpb`, data in ~/.cache/autoresearch,
a train.py that ends with a summary block, `val_bpb:          0.997900`, `peak_vram_mb: ...`, and a
program.md that launches `uv run train.py` and reads `grep "^val_bpb:\\|^peak_vram_mb:" run.log`),
and generally any folder with train.py, program.md and a summary line that train.py prints. It
writes autoresearch.toml beside them and nothing else.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch.core import config, pysource
from autoresearch.core.config import CONFIG_NAME
from autoresearch.core.log_metrics import GPU_MEMORY, pattern_for
from autoresearch.core.records import LOG
from autoresearch.store.workspace import WorkspaceError

# A summary line: print(f"val_bpb:          {val_bpb:.6f}") (Karpathy's train.py prints these).
SUMMARY_LINE = re.compile(r"""print\(\s*f?(["'])([A-Za-z_]\w*):\s*\{""")
GREPPED = re.compile(r"\^([A-Za-z_]\w*):")  # program.md: grep "^val_bpb:" run.log
# Words about the goal only ("Some increase [of VRAM] is acceptable for val_bpb gains" is not one).
LOWER = re.compile(r"\b(lowest|lower is better|minimi[sz]e)\b", re.IGNORECASE)
HIGHER = re.compile(r"\b(highest|higher is better|maximi[sz]e)\b", re.IGNORECASE)
LOWER_NAMES = re.compile(r"loss|bpb|bpc|error|perplexity|ppl|mse|mae|rmse|latency|nll", re.I)
HOME_CACHE = re.compile(r"""~/\.cache/([\w.-]+)|["']\.cache["']\s*,\s*["']([\w.-]+)["']""")
HF_IMPORTS = re.compile(
    r"^\s*(from|import)\s+(kernels|huggingface_hub|transformers|datasets)\b", re.M
)
MIN_GRACE_SECS = 60
UV_COMMAND = ["uv", "run", "train.py"]


@dataclass
class Found:
    """What the folder says about itself, and why (shown to the user)."""

    metric: str
    direction: str
    printed: list[str]  # the summary names train.py prints, in order
    budget: float
    grace: float
    command: list[str] = field(default_factory=list)
    python: str | None = None
    readonly: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    karpathy: bool = False


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8-sig", "replace") if path.is_file() else ""


def _constant(source: str, name: str) -> float | None:
    """A module-level `NAME = number` of a file we must not import."""
    try:
        tree = pysource.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, int | float):
                return float(value.value)
    return None


def _metric(directory: Path, printed: list[str], program: str) -> tuple[str, str]:
    named = list(dict.fromkeys(GREPPED.findall(program)))
    grepped = [name for name in named if name in printed]
    if grepped:
        return grepped[0], f'program.md reads it from the log (`grep "^{grepped[0]}:"`)'
    validation = [name for name in printed if name.startswith("val")]
    if validation and not named:
        return validation[0], "the first validation metric train.py prints"
    wanted = f"program.md reads {', '.join(named)}" if named else "program.md names none"
    raise WorkspaceError(
        f"{directory / 'train.py'} prints no metric line that program.md names as the metric "
        f"({wanted}; train.py prints {', '.join(printed)}); print it at the end of train.py, "
        f'e.g. print(f"{(named or printed)[0]}: {{value}}"), or write {CONFIG_NAME} yourself'
    )


def _direction(metric: str, program: str) -> tuple[str, str]:
    about = [line for line in program.splitlines() if metric in line] + [program]
    for text in about:
        lower, higher = LOWER.search(text), HIGHER.search(text)
        if bool(lower) != bool(higher):
            word = (lower or higher).group(0)
            return ("minimize" if lower else "maximize"), f'program.md says "{word}"'
    if LOWER_NAMES.search(metric):
        return "minimize", f"{metric} is a loss-like name"
    return "maximize", "nothing in program.md says otherwise (check it)"


def _caches(texts: list[str], train: str) -> list[str]:
    found = []
    for text in texts:
        for match in HOME_CACHE.finditer(text):
            found.append(f"~/.cache/{match.group(1) or match.group(2)}")
    if HF_IMPORTS.search(train):  # the hub's cache only: not ~/.cache/huggingface/token
        found.append("~/.cache/huggingface/hub")
    return list(dict.fromkeys(found))


def inspect(directory: Path) -> Found:
    """Read the folder (never importing or running any of it) and decide the settings."""
    missing = [n for n in ("train.py", "program.md") if not (directory / n).is_file()]
    if not directory.is_dir() or missing:
        what = ", ".join(missing) if directory.is_dir() else "the folder"
        raise WorkspaceError(f"{directory}: cannot adopt it, {what} missing (train.py is what the "
                             "agent edits, program.md its instructions)")  # fmt: skip
    train, program = _read(directory / "train.py"), _read(directory / "program.md")
    prepare = _read(directory / "prepare.py")
    printed = list(dict.fromkeys(m.group(2) for m in SUMMARY_LINE.finditer(train)))
    if not printed:
        raise WorkspaceError(
            f"{directory / 'train.py'} prints no metric line: autoresearch reads the metric from "
            'a summary line train.py prints at the end, e.g. print(f"val_bpb: {val_bpb:.6f}") as '
            f"Karpathy's does; add one, or write {CONFIG_NAME} yourself"
        )
    metric, metric_why = _metric(directory, printed, program)
    direction, direction_why = _direction(metric, program)
    time_budget = _constant(prepare, "TIME_BUDGET")
    notes = [f"metric {metric}: {metric_why}", f"direction {direction}: {direction_why}"]
    if time_budget is None:
        budget = grace = 300.0
        notes.append("budget 300 s + 300 s grace: prepare.py has no TIME_BUDGET; set budget_secs")
    else:
        budget, grace = time_budget, max(time_budget, MIN_GRACE_SECS)
        notes.append(
            f"budget {budget:g} s (prepare.TIME_BUDGET) + {grace:g} s grace for start-up, "
            "compilation and evaluation"
        )
    found = Found(metric, direction, printed, budget, grace, notes=notes)
    found.karpathy = time_budget is not None and "evaluate_bpb" in prepare
    uses_uv = (directory / "pyproject.toml").is_file() and (
        "uv run" in program or (directory / "uv.lock").is_file()
    )
    if uses_uv:
        found.command = list(UV_COMMAND)
        notes.append("command uv run train.py, in the checkout's own .venv (run `uv sync` first)")
    elif (directory / ".venv" / "bin" / "python").exists():
        found.python = ".venv/bin/python"
    else:
        found.python = sys.executable
    found.readonly = _caches([prepare, program], train)
    if found.readonly:
        notes.append(f"train.py may read {', '.join(found.readonly)} (read-only in the sandbox)")
    return found


def _toml(found: Found) -> str:
    def quoted(items: list[str]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    shape = "a checkout of Karpathy's autoresearch" if found.karpathy else "this workspace"
    lines = [
        f"# autoresearch configuration, written by `autoresearch init --adopt` for {shape}.",
        "# It changes none of your files; runs live in .autoresearch/. See docs/adopt.md in the autoresearch repository.",
        "",
        f'metric = "{found.metric}"',
        f'direction = "{found.direction}"',
        f'metric_source = "{LOG}"   # self-reported: train.py evaluates itself and prints it',
    ]
    if GPU_MEMORY in found.printed:
        lines.append(
            f'memory_metric = "{GPU_MEMORY}"   # results.tsv memory_gb = {GPU_MEMORY} / 1024'
        )
    if found.command:
        lines.append(f"command = {quoted(found.command)}")
    if found.python:
        lines.append(f'python = "{found.python}"')
    lines += [
        f"budget_secs = {found.budget:g}   # train.py's own training time",
        f"grace_secs = {found.grace:g}    # start-up, compilation, evaluation; then SIGKILL",
    ]
    if found.readonly:
        lines.append(f"readonly_paths = {quoted(found.readonly)}")
    lines += ["", "[metrics]   # what train.py prints; the last matching line of its log wins"]
    lines += [f"{name} = '{pattern_for(name)}'" for name in found.printed]
    return "\n".join(lines) + "\n"


def adopt(directory: Path) -> tuple[Path, list[str]]:
    """Write directory/autoresearch.toml for what is there; (its path, what was decided)."""
    target = directory / CONFIG_NAME
    if target.exists():
        raise WorkspaceError(
            f"{target} already exists; it is used as it is (`autoresearch doctor`)"
        )
    found = inspect(directory)
    text = _toml(found)
    config.parse(tomllib.loads(text), str(target), text)  # never write a config we would refuse
    with open(target, "x", encoding="utf-8") as f:
        f.write(text)
    head = "recognised a Karpathy-style autoresearch checkout" if found.karpathy else "adopted"
    return target, [f"{head}: {directory}", *found.notes]
