"""Where a run trains, decided once: here (the local engine) or on Ray."""

from __future__ import annotations

from autoresearch.core.config import Config
from autoresearch.training.engines import LocalEngine
from autoresearch.training.experiment import Trainer


def on_ray(cfg: Config) -> bool:
    """The one rule for where a run trains: on Ray with several workers or an explicit
    `[run] ray_address`; else on this machine, one run at a time (`--async` too). RAY_ADDRESS
    only names the cluster a run on Ray joins (instead of starting one here): alone, it moves
    nothing to Ray."""
    return cfg.run.workers > 1 or cfg.run.ray_address is not None


def engine_for(trainer: Trainer, cfg: Config, tag: str):
    """The engine the run's settings ask for (on_ray)."""
    if not on_ray(cfg):
        return LocalEngine(trainer)
    from autoresearch.training.ray.engine import RayEngine  # Ray only when a run trains on it

    return RayEngine(trainer, cfg, tag)
