"""Per-song measurement: what was played, what was lost or repeated, and how late it was."""
from __future__ import annotations

import logging
import math
from array import array
from dataclasses import dataclass, field

import numpy as np

from models.midi_event import split_part

logger = logging.getLogger(__name__)

# Status bytes of note-ons and note-offs, the events counted as a song's notes (a note-on with velocity
# 0 is a note-off too). A range, not a function: the test runs inline for every event played.
NOTE_STATUSES = range(0x80, 0xA0)


def percentiles(values) -> dict[str, float] | None:
    """p50, p99 (nearest rank) and max, rounded to microseconds; None for no values.

    Runs on the event loop when a song ends, while other songs play: numpy's partition finds the three
    ranks without sorting (a 13,000-event song: 0.5 ms, where sorting lists took 2.5 ms in all)."""
    if not len(values):
        return None
    ordered = np.asarray(values, dtype=float)
    ranks = [max(0, math.ceil(p * len(ordered)) - 1) for p in (0.50, 0.99)] + [len(ordered) - 1]
    ordered = np.partition(ordered, ranks)
    return {name: round(float(ordered[rank]), 3) for name, rank in zip(("p50", "p99", "max"), ranks)}


def median(values: np.ndarray) -> float:
    """The median, as statistics.median has it. Not np.median: its first call takes ~8 ms (it sets
    itself up), which would fall on the first song's end, while other songs play."""
    half = len(values) // 2
    if len(values) % 2:
        return float(np.partition(values, half)[half])
    low, high = np.partition(values, [half - 1, half])[half - 1:half + 1]
    return float(low + high) / 2


class SeqsSeen:
    """The seqs of a song seen so far, as the count below which all were seen and the few seen above it.

    Events arrive almost in order, so this stays a number and a small set however long the song; a set
    of every seq held an int object per event (~1 MB for a ten-minute song, the playing song's memory
    rising and falling with its length)."""

    def __init__(self) -> None:
        self.below = 0
        self.above: set[int] = set()

    def __contains__(self, seq: int) -> bool:
        return seq < self.below or seq in self.above

    def __len__(self) -> int:
        return self.below + len(self.above)

    def add(self, seq: int) -> None:
        if seq >= self.below:
            self.above.add(seq)
            self._close_up()

    def add_all_below(self, count: int) -> None:
        """Every seq below ``count`` was seen (played by an earlier worker)."""
        self.above = {seq for seq in self.above if seq >= count}
        self.below = max(self.below, count)
        self._close_up()

    def _close_up(self) -> None:
        # The seqs above that now follow the count on without a gap join it.
        while self.below in self.above:
            self.above.remove(self.below)
            self.below += 1


@dataclass
class SongStats:
    song: str
    events: int = 0
    notes: int = 0
    duplicates: int = 0
    reordered: int = 0
    late: int = 0
    dropped: int = 0
    expected: int | None = None
    highest_seq: int = -1
    seen: SeqsSeen = field(default_factory=SeqsSeen)
    # Arrays of doubles, not lists of float objects: a fifth of the memory, a playing song's largest part.
    latencies_ms: array = field(default_factory=lambda: array("d"))
    first_played_at: float | None = None
    last_played_at: float | None = None
    # played time minus score time, for events whose score timing is known (speed ratio > 0)
    offsets: array = field(default_factory=lambda: array("d"))
    # time.monotonic() of the last event that arrived (buffered: or played), for the idle timeout
    last_event_at: float = 0.0
    # The notes topic's partition its events came from, where known
    partition: int | None = None
    # Buffered: what its slots are counted from, playback.playout's ON_SONG_START or ON_FIRST_EVENT
    playout_clock: str | None = None
    # A song taken over from another worker (playback/resume.py): that worker, the wall time it noted its
    # last event played, and the handover: from then to the first event played here, in ms.
    handover_from: str | None = None
    previous_played_at: float | None = None
    handover_ms: float | None = None

    def taken_over(self, worker: str | None, played_at: float | None) -> None:
        """The song's earlier events were played by ``worker`` (None: an older worker that did not say),
        the last at wall time ``played_at`` (None: not known); the first event played here ends the
        handover."""
        self.handover_from, self.previous_played_at = worker, played_at

    def arrive(self, seq: int) -> bool:
        """Count an arriving event; False when it was already seen and must not play again."""
        if seq in self.seen:
            self.duplicates += 1
            return False
        self.seen.add(seq)
        if seq < self.highest_seq:
            self.reordered += 1
        else:
            self.highest_seq = seq
        return True

    def played(self, message: list[int], played_at: float, sent_at: float, target: float | None) -> None:
        """Record an event that reached the outputs at wall time ``played_at``."""
        self.events += 1
        if self.first_played_at is None:
            self.first_played_at = played_at
            if self.previous_played_at is not None:
                self._handed_over(played_at)
        self.last_played_at = played_at
        if message[0] in NOTE_STATUSES:
            self.notes += 1
        self.latencies_ms.append((played_at - sent_at) * 1000.0)
        if target is not None:
            self.offsets.append(played_at - target)

    def _handed_over(self, played_at: float) -> None:
        self.handover_ms = round((played_at - self.previous_played_at) * 1000.0, 1)
        logger.info("handover of %s from %s: %.0f ms from its last event played there to the first here",
                    self.song, self.handover_from or "an earlier worker", self.handover_ms)

    @property
    def lost(self) -> int:
        """Sequence numbers never seen: below the highest seen, or below the end event's count."""
        known = self.expected if self.expected is not None else self.highest_seq + 1
        return max(0, known - len(self.seen))

    def timing_errors_ms(self) -> np.ndarray:
        """|offset − the song's median offset| per event, in ms."""
        if not self.offsets:
            return np.empty(0)
        offsets = np.asarray(self.offsets, dtype=float)
        return np.abs(offsets - median(offsets)) * 1000.0

    def summary(self) -> dict:
        return {
            "song": self.song,
            "part": split_part(self.song)[1],
            "partition": self.partition,
            "events": self.events,
            "notes": self.notes,
            "expected": self.expected,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "late": self.late,
            "dropped": self.dropped,
            "latency_ms": percentiles(self.latencies_ms),
            "timing_error_ms": percentiles(self.timing_errors_ms()),
            "first_played_at": self.first_played_at,
            "last_played_at": self.last_played_at,
            "handover_ms": self.handover_ms,
            "handover_from": self.handover_from,
            "playout_clock": self.playout_clock,
        }


def _p50_p99(figures: dict[str, float] | None, digits: int) -> str:
    return "-" if figures is None else f"{figures['p50']:.{digits}f} / {figures['p99']:.{digits}f} ms"


def readable_figures(summary: dict) -> dict[str, str]:
    """A song summary's figures as a person reads them, by name: the columns of ``make run``'s table and
    the worker's readable line."""
    return {
        "events": str(summary["events"]),
        "lost": str(summary["lost"]),
        "duplicates": str(summary["duplicates"]),
        "late": str(summary["late"]),
        "latency p50/p99": _p50_p99(summary["latency_ms"], 1),
        "timing error p50/p99": _p50_p99(summary["timing_error_ms"], 2),
    }


def readable_summary(summary: dict) -> str:
    """``song (partition 2, worker host:1234): events 130, lost 0, ..., timing error p50/p99 0.57 / 2.36 ms``;
    the partition and the worker where the summary names them."""
    where = [f"{name} {summary[name]}" for name in ("partition", "worker") if summary.get(name) is not None]
    named = f"{summary['song']} ({', '.join(where)})" if where else summary["song"]
    return f"{named}: " + ", ".join(f"{name} {value}" for name, value in readable_figures(summary).items())
