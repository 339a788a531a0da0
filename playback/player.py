"""Turning records from the notes topic into played MIDI, live or through a jitter buffer, measured per song."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque

from models.midi_event import InvalidEvent, MidiEvent, decode_record
from outputs import OutputSet
from playback.stats import SongStats
from timing import wait_until

logger = logging.getLogger(__name__)

# Songs whose end was seen, remembered so a late duplicate of them is not played as a new song.
FINISHED_SONGS_KEPT = 1000
INVALID_LOG_INTERVAL = 5.0


class SongQueue:
    """Buffered playback of one song: events wait in arrival order for their slot on the clock."""

    def __init__(self, anchor: float) -> None:
        # perf_counter() time of the song's score time 0, from the first event seen of it
        self.anchor = anchor
        self.pending: deque[tuple[float, MidiEvent]] = deque()
        self.arrived = asyncio.Event()
        self.task: asyncio.Task | None = None


class Player:
    """Plays each valid event through ``outputs`` and keeps a SongStats per song.

    ``playback="live"`` plays an event the moment it is handed over; ``"buffered"`` plays it at the
    song's start + score time + ``playout_delay`` (an event arriving after that slot plays at once and
    counts as late), each song in its own task so no song waits for another.
    """

    def __init__(self, outputs: OutputSet, *, playback: str = "live", playout_delay: float = 0.2,
                 max_lateness: float | None = None) -> None:
        self.outputs = outputs
        self.buffered = playback == "buffered"
        self.playout_delay = playout_delay
        self.max_lateness = max_lateness
        self.songs: dict[str, SongStats] = {}
        self.queues: dict[str, SongQueue] = {}
        self.finished: OrderedDict[str, SongStats] = OrderedDict()
        self.invalid = 0
        self._invalid_logged_at = -INVALID_LOG_INTERVAL
        self._invalid_unlogged = 0

    def handle(self, raw: bytes | None) -> None:
        """Take one value from the topic: decode it, then play or schedule each of its events."""
        try:
            events, problems = decode_record(raw)
        except InvalidEvent as exc:
            self._reject(raw, exc)
            return
        for problem in problems:
            self._reject(raw, problem)
        for event in events:
            self.handle_event(event)

    def handle_event(self, event: MidiEvent) -> None:
        stats = self.songs.get(event.song)
        if stats is None:
            finished = self.finished.get(event.song)
            if finished is not None:
                finished.duplicates += 1
                return
            stats = self.songs[event.song] = SongStats(event.song)
        if event.end:
            stats.expected = event.seq
        elif not stats.arrive(event.seq):
            return
        elif self.max_lateness is not None and time.time() - event.sent_at > self.max_lateness:
            stats.dropped += 1
            return
        if self.buffered:
            self._schedule(event)
        elif event.end:
            self.finish(event.song)
        else:
            self.play(event, stats)

    def play(self, event: MidiEvent, stats: SongStats) -> None:
        self.outputs.send(event.to_message(), event.song)
        target = event.score_time * event.speed_ratio if event.speed_ratio else None
        stats.played(event.message, time.time(), event.sent_at, target)

    def _schedule(self, event: MidiEvent) -> None:
        now = time.perf_counter()
        score_offset = event.score_time * event.speed_ratio
        queue = self.queues.get(event.song)
        if queue is None:
            queue = self.queues[event.song] = SongQueue(anchor=now - score_offset)
            queue.task = asyncio.get_running_loop().create_task(self._play_buffered(event.song, queue))
        slot = queue.anchor + score_offset + self.playout_delay
        if now > slot and not event.end:
            self.songs[event.song].late += 1
        queue.pending.append((slot, event))
        queue.arrived.set()

    async def _play_buffered(self, song: str, queue: SongQueue) -> None:
        stats = self.songs[song]
        while True:
            while not queue.pending:
                queue.arrived.clear()
                await queue.arrived.wait()
            slot, event = queue.pending.popleft()
            if event.end:
                self.finish(song)
                return
            await wait_until(slot)
            self.play(event, stats)

    def finish(self, song: str) -> dict:
        """Release what the song left sounding and log its summary."""
        self.outputs.release(song)
        self.queues.pop(song, None)
        stats = self.songs.pop(song)
        self.finished[song] = stats
        while len(self.finished) > FINISHED_SONGS_KEPT:
            self.finished.popitem(last=False)
        summary = stats.summary()
        logger.info("song summary %s", json.dumps(summary))
        return summary

    async def stop(self) -> None:
        """Cancel buffered songs still waiting; the outputs' owner then silences what sounds."""
        tasks = [queue.task for queue in self.queues.values() if queue.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.queues.clear()

    def status(self) -> str:
        """One line on the songs being played, for the periodic status log."""
        parts = []
        for stats in self.songs.values():
            latency = stats.latencies_ms[-1] if stats.latencies_ms else float("nan")
            parts.append(f"{stats.song}: {stats.events} events, lost {stats.lost}, late {stats.late}, "
                         f"last latency {latency:.1f} ms")
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
