"""Turning raw records from the notes topic into played MIDI, with per-song measurement."""
from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict

from models.midi_event import InvalidEvent, decode_event
from outputs import OutputSet
from playback.stats import SongStats

logger = logging.getLogger(__name__)

# Songs whose end was seen, remembered so a late duplicate of them is not played as a new song.
FINISHED_SONGS_KEPT = 1000
INVALID_LOG_INTERVAL = 5.0


class Player:
    """Plays each valid event the moment it is handed over (live mode) and measures every song."""

    def __init__(self, outputs: OutputSet) -> None:
        self.outputs = outputs
        self.songs: dict[str, SongStats] = {}
        self.finished: OrderedDict[str, SongStats] = OrderedDict()
        self.invalid = 0
        self._invalid_logged_at = -INVALID_LOG_INTERVAL
        self._invalid_unlogged = 0

    def handle(self, raw: bytes | None) -> None:
        try:
            event = decode_event(raw)
            message = None if event.end else event.to_message()
        except InvalidEvent as exc:
            self._reject(raw, exc)
            return
        stats = self.songs.get(event.song)
        if stats is None:
            finished = self.finished.get(event.song)
            if finished is not None:
                finished.duplicates += 1
                return
            stats = self.songs[event.song] = SongStats(event.song)
        if event.end:
            stats.expected = event.seq
            self.finish(event.song)
            return
        if not stats.arrive(event.seq):
            return
        self.outputs.send(message, event.song)
        target = event.score_time * event.speed_ratio if event.speed_ratio else None
        stats.played(event.message, time.time(), event.sent_at, target)

    def finish(self, song: str) -> dict:
        """Release what the song left sounding and log its summary."""
        self.outputs.release(song)
        stats = self.songs.pop(song)
        self.finished[song] = stats
        while len(self.finished) > FINISHED_SONGS_KEPT:
            self.finished.popitem(last=False)
        summary = stats.summary()
        logger.info("song summary %s", json.dumps(summary))
        return summary

    def status(self) -> str:
        """One line on the songs being played, for the periodic status log."""
        parts = []
        for stats in self.songs.values():
            latency = stats.latencies_ms[-1] if stats.latencies_ms else float("nan")
            parts.append(f"{stats.song}: {stats.events} events, lost {stats.lost}, last latency {latency:.1f} ms")
        if self.invalid:
            parts.append(f"{self.invalid} invalid records skipped")
        return "; ".join(parts) or "waiting for notes"

    def _reject(self, raw: bytes | None, error: InvalidEvent) -> None:
        self.invalid += 1
        now = time.monotonic()
        if now - self._invalid_logged_at < INVALID_LOG_INTERVAL:
            self._invalid_unlogged += 1
            return
        also = f" (and {self._invalid_unlogged} more since the last report)" if self._invalid_unlogged else ""
        logger.warning("skipped an invalid record: %s; value starts %r%s", error, (raw or b"")[:60], also)
        self._invalid_logged_at = now
        self._invalid_unlogged = 0
