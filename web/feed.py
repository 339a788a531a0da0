"""The hand-off from the playing path to the web page: what was played, and each song's summary.

The player calls ``played`` for every chord and ``finished`` for every summary (playback/player.py's
PlayObserver) while a note may be due: both only append to a deque and return. The web layer takes
what gathered on its own timer (web/performance.py), so no web client, however slow, is ever awaited
by the agent. The deque is bounded; should the timer ever stall that long, the oldest entries go and
are counted, rather than the worker's memory growing.
"""
from __future__ import annotations

from collections import deque
from typing import Sequence

# Entries kept between two takes: at the fastest backlog measured (~2,700 records/s of 64 events)
# and a 0.1 s take interval, about 270 arrive between two takes.
FEED_ENTRIES_KEPT = 50_000


class PerformanceFeed:
    """Chords played and song summaries, in the order they happened, until the web layer takes them."""

    def __init__(self, capacity: int = FEED_ENTRIES_KEPT) -> None:
        self.entries: deque[tuple] = deque(maxlen=capacity)
        # Entries that fell off the front before they were taken.
        self.overflowed = 0

    def played(self, chord: Sequence, played_at: float) -> None:
        self._put((played_at, chord))

    def finished(self, summary: dict) -> None:
        self._put((None, summary))

    def _put(self, entry: tuple) -> None:
        entries = self.entries
        if len(entries) == entries.maxlen:
            self.overflowed += 1
        entries.append(entry)

    def take(self) -> list[tuple]:
        """Everything gathered since the last take: ``(played_at, chord)`` for a chord,
        ``(None, summary)`` for a song that ended."""
        entries = self.entries
        taken = []
        while entries:
            taken.append(entries.popleft())
        return taken
