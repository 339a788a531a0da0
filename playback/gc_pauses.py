"""The garbage collector's pauses in the worker, watched, and made rare.

A collection stops everything, a due note included. In a worker playing a song, young-generation
collections took up to 1.5 ms; a full collection walks every object the process holds (Faust,
aiokafka, mido: hundreds of thousands once started) and took tens of ms in a process of this size.
Freezing what exists once the worker has started (``gc.freeze``) leaves those objects out of every
later collection, so a full collection walks only what was made since.
"""
from __future__ import annotations

import gc
import time


def freeze_what_exists(collect: bool = True) -> None:
    """Collect once (tens of ms in a started worker) unless told not to, then keep every object alive
    now out of all later collections (microseconds)."""
    if collect:
        gc.collect()
    gc.freeze()


def collect_all_then_freeze() -> None:
    """Between two pieces of timed work (the producer's songs): put back what the last freeze kept out,
    collect everything (~45 ms in produce-midi), and freeze what is still alive. Nothing stays frozen
    past the next call, so what became garbage in a cycle meanwhile is collected then, not kept all day."""
    gc.unfreeze()
    freeze_what_exists()


class GcPauses:
    """Counts collections and keeps the longest pause since ``take`` was last called, while installed."""

    def __init__(self) -> None:
        self.started_at = 0.0
        self.collections = 0
        self.longest = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.started_at = time.perf_counter()
        else:
            self.collections += 1
            self.longest = max(self.longest, time.perf_counter() - self.started_at)

    def __enter__(self) -> "GcPauses":
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info) -> None:
        gc.callbacks.remove(self._callback)

    def take(self) -> tuple[int, float]:
        """Collections and the longest pause (seconds) since the last call."""
        taken = (self.collections, self.longest)
        self.collections, self.longest = 0, 0.0
        return taken
