"""What the page shows of the songs, made on the web layer's timer from what the player handed off.

Each take turns the chords played since the last one into notes for the piano roll and points for the
latency and timing plots, counts them per song (independently of the song book, so the page can be
checked against the summary), reads each playing song's counters from its SongStats, and feeds the
Prometheus series by topic and partition. Counters only go up: ``lost`` is added when a song ends, as a
gap may still fill while it plays; the others as they grow.
"""
from __future__ import annotations

import heapq
import time
from collections import OrderedDict, deque
from typing import Sequence

from playback.stats import NOTE_STATUSES
from web.feed import PerformanceFeed
from web.metrics import COUNTED, AppMetrics

# Songs that ended, shown with their summary figures until this many newer ones ended.
FINISHED_SONGS_SHOWN = 20
# Notes and plot points kept for a page that opens mid-song (about 20 s of a dense song).
RECENT_KEPT = 4000
# A song gone from every player without a summary (its partition moved) is forgotten after this long.
FORGET_AFTER = 60.0
UNKNOWN_PARTITION = ("?", "?")


class RunningMedian:
    """The median of the values added so far, in O(log n) per value (two heaps)."""

    def __init__(self) -> None:
        self.low: list[float] = []   # a max-heap, negated
        self.high: list[float] = []

    def add(self, value: float) -> float:
        if self.low and value > -self.low[0]:
            heapq.heappush(self.high, value)
        else:
            heapq.heappush(self.low, -value)
        if len(self.low) > len(self.high) + 1:
            heapq.heappush(self.high, -heapq.heappop(self.low))
        elif len(self.high) > len(self.low):
            heapq.heappush(self.low, -heapq.heappop(self.high))
        if len(self.low) > len(self.high):
            return -self.low[0]
        return (-self.low[0] + self.high[0]) / 2


class SongView:
    """One song as the page shows it: events and notes seen played, the song book's counters, and how
    it ended (with its summary) once it has."""

    def __init__(self, song: str, topic: str, partition: str) -> None:
        self.song = song
        self.topic, self.partition = topic, partition
        self.events = 0
        self.notes = 0
        self.counts = dict.fromkeys(COUNTED, 0)
        self.offsets = RunningMedian()
        self.summary: dict | None = None
        self.seen_at = time.monotonic()

    def as_dict(self) -> dict:
        summary = self.summary or {}
        return {"song": self.song, "topic": self.topic, "partition": self.partition, "events": self.events,
                "notes": self.notes, **self.counts, "ended": summary.get("ended"),
                "latency_ms": summary.get("latency_ms"), "timing_error_ms": summary.get("timing_error_ms")}


class Performance:
    """The songs of ``stage`` (agents/stage.py) as the page shows them; ``take`` once per update."""

    def __init__(self, feed: PerformanceFeed, stage, metrics: AppMetrics) -> None:
        self.feed = feed
        self.stage = stage
        self.metrics = metrics
        self.playing: dict[str, SongView] = {}
        self.finished: OrderedDict[str, SongView] = OrderedDict()
        # [played_at, song, channel, key, velocity (0: a note-off), latency ms] per note message
        self.recent_notes: deque[list] = deque(maxlen=RECENT_KEPT)
        # [played_at, song, latency ms, timing error ms or None] per song and chord, the worst of its events
        self.recent_points: deque[list] = deque(maxlen=RECENT_KEPT)

    def take(self) -> dict:
        """What happened since the last take: ``notes`` and ``points`` new since then, ``songs`` as they stand."""
        notes: list[list] = []
        points: list[list] = []
        for played_at, entry in self.feed.take():
            if played_at is None:
                self._finish(entry)
            else:
                self._chord(played_at, entry, notes, points)
        self._read_song_book()
        self.recent_notes.extend(notes)
        self.recent_points.extend(points)
        self.metrics.feed_overflowed.set(self.feed.overflowed)
        return {"notes": notes, "points": points, "songs": self.songs()}

    def songs(self) -> list[dict]:
        return [view.as_dict() for view in (*self.finished.values(), *self.playing.values())]

    def _view(self, song: str) -> SongView:
        view = self.playing.get(song)
        if view is None:
            # A song ended idle and heard from again starts afresh, as the song book starts it.
            self.finished.pop(song, None)
            tp = self.stage.song_partitions.partition_of.get(song)
            topic, partition = (tp.topic, str(tp.partition)) if tp is not None else UNKNOWN_PARTITION
            view = self.playing[song] = SongView(song, topic, partition)
        return view

    def _chord(self, played_at: float, chord: Sequence, notes: list[list], points: list[list]) -> None:
        by_song: dict[str, tuple[list[float], list[float]]] = {}
        for event in chord:
            song = event.song
            view = self.playing.get(song) or self._view(song)
            latencies, errors = by_song.setdefault(song, ([], []))
            view.events += 1
            latency = played_at - event.sent_at
            latencies.append(latency)
            if event.speed_ratio:
                offset = played_at - event.score_time * event.speed_ratio
                errors.append(abs(offset - view.offsets.add(offset)))
            message = event.message
            if message[0] in NOTE_STATUSES:  # counted as SongStats counts the song's notes
                view.notes += 1
                velocity = message[2] if message[0] >= 0x90 else 0
                notes.append([played_at, song, message[0] & 0x0F, message[1], velocity, round(latency * 1000, 3)])
        for song, (latencies, errors) in by_song.items():
            view = self.playing[song]
            self.metrics.observe_played(view.topic, view.partition, latencies, errors)
            points.append([played_at, song, round(max(latencies) * 1000, 3),
                           round(max(errors) * 1000, 3) if errors else None])

    def _read_song_book(self) -> None:
        """Each playing song's counters from its SongStats; what grew is added to the series."""
        now = time.monotonic()
        for player in self.stage.players:
            for song, stats in player.songs.items():
                view = self._view(song)
                view.seen_at = now
                for kind in COUNTED:
                    value = stats.lost if kind == "lost" else getattr(stats, kind)
                    if kind != "lost":
                        self.metrics.count(kind, view.topic, view.partition, value - view.counts[kind])
                    view.counts[kind] = value
        for song in [song for song, view in self.playing.items() if now - view.seen_at > FORGET_AFTER]:
            del self.playing[song]

    def _finish(self, summary: dict) -> None:
        view = self._view(summary["song"])
        for kind in COUNTED:
            already = 0 if kind == "lost" else view.counts[kind]
            self.metrics.count(kind, view.topic, view.partition, summary[kind] - already)
            view.counts[kind] = summary[kind]
        view.summary = summary
        del self.playing[view.song]
        self.finished[view.song] = view
        while len(self.finished) > FINISHED_SONGS_SHOWN:
            self.finished.popitem(last=False)
