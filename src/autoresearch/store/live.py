"""What a running orchestrator is doing now: one record (its phase, the iteration, when it began,
what else trains meanwhile) for the store's `live` table (read by `status --json` and the
dashboard) and the terminal's display alike."""

from __future__ import annotations

import time

from autoresearch.store.store import Store


class Live:
    def __init__(self, store: Store, display=None):
        self.store, self.display = store, display  # display: display.py's view, or None
        self.training: list[int] = []  # the iterations training now (the driver keeps it)

    def phase(self, name: str, iteration: int, **info) -> None:
        live = {"phase": name, "iteration": iteration, "started_at": time.time(), **info}
        if others := [n for n in self.training if n != iteration]:
            live["in_flight"] = others  # the others training meanwhile (a parallel run)
        self.store.set_live(live)
        if self.display is not None:
            self.display.phase(live)

    def idle(self) -> None:
        """Between phases (until the next one begins)."""
        self.store.set_live(None)
