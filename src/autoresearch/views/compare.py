"""Runs side by side, the way the seeds' authors compared them by hand: one row per run (agent,
budget, context, iterations, keeps, best, cost, how fast it got there) and the settings in which
the runs differ. Everything is read from the stores, read-only, through `status --json`'s model.

Runs are comparable only on one task: the same prepare.py (it defines the data and the score),
metric and direction. Budgets may differ; the comparison says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autoresearch.core.config import MUTABLE, Config, ConfigError
from autoresearch.core.history import best_so_far
from autoresearch.core.records import BASELINE, KEEP, RUNNING, Iteration
from autoresearch.core.text import plural
from autoresearch.loop.runs import flatten, open_run
from autoresearch.store.layout import SNAPSHOT
from autoresearch.store.store import Store, StoreError, list_runs
from autoresearch.store.workspace import bundle_manifest
from autoresearch.training import hardware
from autoresearch.views.snapshot import snapshot

# The share of a run's final gain over its baseline that counts as "got there".
GAIN_SHARE = 0.95
# Settings with a column of their own; every other setting in which runs differ is listed.
BUDGET, CONTEXT, AGENT, MODEL = "budget_secs", "loop.context", "agent.name", "agent.model"
SHOWN = (BUDGET, CONTEXT, AGENT, MODEL)
# The settings of the strategist (its column: on or off, from `status --json`) and of how keeps
# are confirmed, where the release that made a run has them; their columns appear only then.
STRATEGIST_PREFIX = "strategist."
CONFIRMATION_KEYS = ("loop.noise_runs", "loop.confirm_runs")
# How long and where a run went on (settings a resume may change), not what its experiments were:
# the iterations column shows how far each got, so these are never a difference worth a column.
NOT_COMPARED = MUTABLE


class CompareRefused(Exception):
    """Runs that cannot be compared: one line saying why."""


@dataclass
class RunRow:
    """One run in the comparison: the numbers `status --json` gives, and what they derive."""

    run: str
    name: str | None  # `run --name`
    state: str
    agent: str
    model: str | None
    budget_secs: float
    context: str
    strategist: str | None  # on | off; None: the run's release has no strategist
    confirmation: str | None  # None: no confirmation settings
    noise: dict | None  # the run's noise floor when recorded ({sigma, runs})
    iterations: int  # experiments after the baseline
    keeps: int
    baseline: float | None
    best: float | None
    best_iteration: int | None
    holdout: dict[str, float | None]  # the best iteration's other metrics (a hidden holdout)
    cost_usd: float | None  # None: unknown (an agent that reports no cost)
    cost_per_iteration: float | None
    iterations_to_gain: int | None  # first iteration at GAIN_SHARE of the final gain
    settings: dict[str, Any]  # every setting, flattened ("loop.context": "full")
    best_so_far: list[float | None] = field(default_factory=list)  # after each iteration
    cumulative_cost: list[float] | None = None  # after each iteration; None: unknown
    promotion: dict | None = None  # the latest promotion (`status --json`'s), if any
    bundle: str | None = None  # the bundle file the run was read from (None: the workspace's)
    hardware: str | None = None  # the machine it ran on, where a bundle says
    other_hardware: bool = False  # not comparable budget for budget with the first run's machine


@dataclass
class Comparison:
    metric: str
    direction: str
    runs: list[RunRow]
    differing: list[str]  # settings whose values are not the same in every run
    skipped: list[str] = field(default_factory=list)  # unreadable runs left out, one line each

    @property
    def budgets_differ(self) -> bool:
        return BUDGET in self.differing

    @property
    def hardware_differs(self) -> bool:
        return any(row.other_hardware for row in self.runs)

    @property
    def has_costs(self) -> bool:
        """Whether any run spent money that is known: the cost plot is worth drawing."""
        return any(row.cost_usd for row in self.runs)

    @property
    def holdout_names(self) -> list[str]:
        return sorted({name for row in self.runs for name in row.holdout})

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(budgets_differ=self.budgets_differ, hardware_differs=self.hardware_differs)
        for row in data["runs"]:
            row["settings"] = {key: row["settings"].get(key) for key in self.differing}
        return data


def task_of(store: Store, cfg: Config) -> tuple[str | None, str, str]:
    """What a run's scores mean: its prepare.py (as recorded when it started, else the run's own
    copy of it), its metric and its direction."""
    digest = store.get("prepare_sha256")
    copy = store.dir / SNAPSHOT / "prepare.py"
    if digest is None and copy.is_file():
        digest = hashlib.sha256(copy.read_bytes()).hexdigest()
    return digest, cfg.metric, cfg.direction


def gain_reached_at(curve: list[float | None], share: float = GAIN_SHARE) -> int | None:
    """The first iteration whose best so far has share of the final gain over the baseline
    (None: no baseline score, or no gain)."""
    if not curve or curve[0] is None or curve[-1] is None or curve[-1] == curve[0]:
        return None
    base, gain = curve[0], curve[-1] - curve[0]
    # the last one has the whole gain, so one is always found
    return next(n for n, b in enumerate(curve) if b is not None and (b - base) / gain >= share)


def cumulative_cost(snap: dict) -> list[float] | None:
    """What the run had spent after each iteration (None: a cost is unknown). A strategist's
    calls (where a release reports them in `status --json`) count after the iteration they
    followed, so that the last equals the run's cost."""
    if not snap["iterations"]:
        return []
    spent: dict[int, float | None] = {e["iteration"]: e["cost_usd"] for e in snap["iterations"]}
    first = snap["iterations"][0]["iteration"]
    for version in (snap.get("strategist") or {}).get("strategies", []):
        # the run's own strategy (version 0) comes before any iteration: it counts with the first
        n, cost = max(version["after_iteration"], first), version["cost_usd"]
        spent[n] = None if spent.get(n) is None or cost is None else spent[n] + cost
    if None in spent.values():
        return None
    total, out = 0.0, []
    for e in snap["iterations"]:
        total += spent[e["iteration"]]
        out.append(round(total, 6))
    return out


def _strategist(snap: dict) -> str | None:
    """on or off, as `status --json` says (`strategist.state`), where the release has one."""
    found = snap.get("strategist")
    return found.get("state") if isinstance(found, dict) else None


def _confirmation(settings: dict[str, Any]) -> str | None:
    found = [k for k in CONFIRMATION_KEYS if k in settings]
    if not found:
        return None
    return ", ".join(f"{k.removeprefix('loop.')} {settings[k]}" for k in found)


def row(store: Store) -> tuple[RunRow, tuple]:
    """A run's row, and the task it ran on."""
    cfg = store.config()
    snap = snapshot(store)
    entries = snap["iterations"]
    settings = flatten(cfg.model_dump())
    history = [Iteration(e["iteration"], e["status"], e["value"]) for e in entries]
    curve = best_so_far(history, cfg.better)
    cumulative = cumulative_cost(snap)
    done = max(len(entries) - 1, 0)
    best = next((e for e in entries if e["iteration"] == snap["best"]["iteration"]), None)
    holdout = {
        name: value
        for name, value in ((best or {}).get("metrics") or {}).items()
        if name != cfg.metric
    }
    baseline = entries[0]["value"] if entries and entries[0]["status"] == BASELINE else None
    found = RunRow(
        run=snap["run"],
        name=snap["name"],
        state=snap["state"],
        agent=cfg.agent.name,
        model=cfg.agent.model,
        budget_secs=cfg.budget_secs,
        context=cfg.loop.context,
        strategist=_strategist(snap),
        confirmation=_confirmation(settings),
        noise=snap.get("noise"),
        iterations=done,
        keeps=sum(e["status"] == KEEP for e in entries),
        baseline=baseline,
        best=snap["best"]["value"],
        best_iteration=snap["best"]["iteration"],
        holdout=holdout,
        cost_usd=snap["cost_usd"],
        cost_per_iteration=(
            round(snap["cost_usd"] / done, 6) if snap["cost_usd"] is not None and done else None
        ),
        iterations_to_gain=gain_reached_at(curve),
        settings=settings,
        best_so_far=curve,
        cumulative_cost=cumulative,
        promotion=(snap.get("promotions") or [None])[-1],
    )
    return found, task_of(store, cfg)


def _same_task(rows: list[RunRow], tasks: list[tuple]) -> None:
    """One metric, direction and prepare.py. A run whose prepare.py is not recorded yet (one
    that is just starting) is held to its metric and direction only."""
    first, (_, metric, direction) = rows[0], tasks[0]
    for other, (_, o_metric, o_direction) in zip(rows[1:], tasks[1:], strict=True):
        if (o_metric, o_direction) != (metric, direction):
            raise CompareRefused(
                f"run {other.run} scores {o_metric} ({o_direction}), run {first.run} "
                f"{metric} ({direction}): compare runs of one metric and direction"
            )
    known = [(r, t[0]) for r, t in zip(rows, tasks, strict=True) if t[0] is not None]
    for other, digest in known[1:]:
        if digest != known[0][1]:
            raise CompareRefused(
                f"run {other.run} ran another task than run {known[0][0].run} (its prepare.py "
                "differs, so its scores mean something else): compare runs of one task"
            )


def differing(rows: list[RunRow]) -> list[str]:
    keys = sorted({key for r in rows for key in r.settings} - set(NOT_COMPARED))
    return [key for key in keys if len({repr(r.settings.get(key)) for r in rows}) > 1]


def _machines(rows: list[RunRow], machines: list[dict | None]) -> None:
    """Mark the runs from a bundle made on other hardware than the first run's (the workspace's
    runs ran on this machine), and name the machine of each bundle's run."""
    if not any(machines):
        return
    here = hardware.fingerprint(None)
    known = [m or here for m in machines]
    for found, machine, bundled in zip(rows, known, machines, strict=True):
        found.hardware = hardware.describe(machine) if bundled else None
        found.other_hardware = not hardware.same_hardware(machine, known[0])


def compare(
    workspace: Path, run_ids: list[str] | None = None, bundles: list[Path] = ()
) -> Comparison:
    """The named runs of the workspace (default every run, unreadable ones skipped and named),
    then every run of each unpacked bundle folder."""
    stores, skipped = [], []
    if run_ids:
        stores = [open_run(workspace, run_id) for run_id in run_ids]
    else:
        for path in list_runs(workspace):
            try:
                stores.append(Store(path, readonly=True))
            except StoreError as err:
                skipped.append(f"skipped run {path.name}: {err}")
    made = [bundle_manifest(workspace)] * len(stores)
    for folder in bundles:
        found = [open_run(folder, path.name) for path in list_runs(folder)]
        stores += found
        made += [bundle_manifest(folder)] * len(found)
    if not stores:
        raise ConfigError(f"{workspace} has no runs to compare; start one with `autoresearch run`")
    try:
        found = [row(store) for store in stores]
    finally:
        for store in stores:
            store.close()
    found = [(r, t, m) for (r, t), m in zip(found, made, strict=True)]
    if not run_ids:  # every run: those that ended without a score have nothing to compare
        unscored = [r.run for r, _, _ in found if r.best is None and r.state != RUNNING]
        if unscored and len(unscored) < len(found):
            found = [(r, t, m) for r, t, m in found if r.run not in unscored]
            some = plural(len(unscored), "run")
            skipped.append(f"left out {some} that never scored: {', '.join(unscored)}")
    rows, tasks, made = [r for r, _, _ in found], [t for _, t, _ in found], [m for *_, m in found]
    for r, manifest in zip(rows, made, strict=True):
        r.bundle = manifest and manifest["file"]
    _machines(rows, [manifest and manifest.get("hardware") for manifest in made])
    _same_task(rows, tasks)
    _, metric, direction = tasks[0]
    return Comparison(metric, direction, rows, differing(rows), skipped)
