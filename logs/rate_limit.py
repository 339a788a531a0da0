"""One rate limit for every notice the app repeats: the first passes, then one per interval, each saying
how many were held back since the one before."""
from __future__ import annotations

import math
import time
from typing import Callable


class RateLimit:
    """``noun`` is what the notices are called in the count they carry: "... since the last notice"."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic, noun: str = "notice") -> None:
        self.interval = interval
        self.clock = clock
        self.noun = noun
        self.shown_at = -math.inf
        self.held_back = 0

    def allow(self) -> int | None:
        """None when this notice is held back; else how many were held back since the last one shown."""
        now = self.clock()
        if now - self.shown_at < self.interval:
            self.held_back += 1
            return None
        held, self.held_back, self.shown_at = self.held_back, 0, now
        return held

    def tail(self) -> str | None:
        """None when this notice is held back; else what it ends with: nothing for the first one or one
        after a quiet interval, else " (and N more since the last notice)"."""
        held = self.allow()
        if held is None:
            return None
        return f" (and {held} more since the last {self.noun})" if held else ""

    def reset(self) -> None:
        """The next notice passes, as a first one."""
        self.shown_at, self.held_back = -math.inf, 0
