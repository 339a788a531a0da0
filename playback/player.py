"""Turning records from the notes topic into played MIDI, live or through a jitter buffer, measured per song.

What was played is noted per song in ``played_seqs`` (the worker's Faust table), so a worker taking over
after a crash resumes each song after the last event played instead of playing it again.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from typing import Callable, MutableMapping

from models.midi_event import InvalidEvent, MidiEvent, decode_record
from outputs import OutputSet
from playback.resume import RecordProgress, ResumePoints
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
        self.pending: deque[tuple[float, MidiEvent, RecordProgress]] = deque()
        self.arrived = asyncio.Event()
        self.task: asyncio.Task | None = None


class Player:
    """Plays each valid event through ``outputs`` and keeps a SongStats per song.

    ``playback="live"`` plays an event the moment it is handed over; ``"buffered"`` plays it at the
    song's start + score time + ``playout_delay`` (an event arriving after that slot plays at once and
    counts as late), each song in its own task so no song waits for another.

    ``played_seqs`` maps each song to the highest seq played (or dropped) so far; a song this player
    has not seen yet resumes after the seq found there, counting what it skips as duplicates.
    """

    def __init__(self, outputs: OutputSet, *, playback: str = "live", playout_delay: float = 0.2,
                 max_lateness: float | None = None, played_seqs: MutableMapping[str, int] | None = None) -> None:
        self.outputs = outputs
        self.resume_points = ResumePoints({} if played_seqs is None else played_seqs)
        self.buffered = playback == "buffered"
        self.playout_delay = playout_delay
        self.max_lateness = max_lateness
        self.songs: dict[str, SongStats] = {}
        self.queues: dict[str, SongQueue] = {}
        self.finished: OrderedDict[str, SongStats] = OrderedDict()
        self.invalid = 0
        self._invalid_logged_at = -INVALID_LOG_INTERVAL
        self._invalid_unlogged = 0

    def handle(self, raw: bytes | None, done: Callable[[], object] = lambda: None) -> None:
        """Take one value from the topic: decode it, then play or schedule each of its events.

        ``done`` is called once all of it has been played (buffered: once its last event had its slot)
        and its songs' resume points saved: the agent acknowledges the record there, so the offset
        committed never passes an event not yet played.
        """
        try:
            events, problems = decode_record(raw)
        except InvalidEvent as exc:
            self._reject(raw, exc)
            done()
            return
        for problem in problems:
            self._reject(raw, problem)
        record = RecordProgress(self.resume_points, done)
        for event in events:
            self.handle_event(event, record)
        record.finished_one()

    def handle_event(self, event: MidiEvent, record: RecordProgress) -> None:
        stats = self.songs.get(event.song)
        if stats is None:
            finished = self.finished.get(event.song)
            if finished is not None:
                finished.duplicates += 1
                return
            stats = self.songs[event.song] = self._start_song(event.song)
        if event.end:
            if event.seq in stats.seen:
                # The worker this one took over from finished the song and logged its summary.
                stats.duplicates += 1
                self._remember_finished(self.songs.pop(event.song))
                return
            stats.expected = event.seq
        elif not stats.arrive(event.seq):
            return
        elif self.max_lateness is not None and time.time() - event.sent_at > self.max_lateness:
            stats.dropped += 1
            record.handled(event)
            return
        if self.buffered:
            self._schedule(event, record)
            return
        if event.end:
            self.finish(event.song)
        else:
            self.play(event, stats)
        record.handled(event)

    def _start_song(self, song: str) -> SongStats:
        stats = SongStats(song)
        resume_after = self.resume_points.get(song)
        if resume_after is not None:
            # What an earlier worker played counts as seen: arriving again, it is a duplicate and is
            # not played, and it is not counted as lost either.
            stats.seen.update(range(resume_after + 1))
            stats.highest_seq = resume_after
            logger.info("resuming %s after seq %d, played by an earlier worker", song, resume_after)
        return stats

    def play(self, event: MidiEvent, stats: SongStats) -> None:
        self.outputs.send(event.to_message(), event.song)
        target = event.score_time * event.speed_ratio if event.speed_ratio else None
        stats.played(event.message, time.time(), event.sent_at, target)

    def _schedule(self, event: MidiEvent, record: RecordProgress) -> None:
        now = time.perf_counter()
        score_offset = event.score_time * event.speed_ratio
        queue = self.queues.get(event.song)
        if queue is None:
            queue = self.queues[event.song] = SongQueue(anchor=now - score_offset)
            queue.task = asyncio.get_running_loop().create_task(self._play_buffered(event.song, queue))
        slot = queue.anchor + score_offset + self.playout_delay
        if now > slot and not event.end:
            self.songs[event.song].late += 1
        record.wait_for()
        queue.pending.append((slot, event, record))
        queue.arrived.set()

    async def _play_buffered(self, song: str, queue: SongQueue) -> None:
        stats = self.songs[song]
        try:
            while True:
                while not queue.pending:
                    queue.arrived.clear()
                    await queue.arrived.wait()
                slot, event, record = queue.pending.popleft()
                if event.end:
                    self.finish(song)
                else:
                    await wait_until(slot)
                    self.play(event, stats)
                record.handled(event)
                record.finished_one()
                if event.end:
                    return
        except Exception as exc:
            # This task is the song's own: nothing would see the error, and its notes would hang.
            logger.error("stopped playing %s: %s", song, exc)
            self.abandon(song)

    def abandon(self, song: str) -> None:
        """Stop a song without finishing it (its partition moved, or its output failed): cancel what
        is queued for it and release its notes."""
        queue = self.queues.pop(song, None)
        if queue is not None and queue.task is not None and queue.task is not asyncio.current_task():
            queue.task.cancel()
        self.songs.pop(song, None)
        self.outputs.release(song)

    def finish(self, song: str) -> dict:
        """Release what the song left sounding and log its summary."""
        self.outputs.release(song)
        self.queues.pop(song, None)
        stats = self.songs.pop(song)
        self._remember_finished(stats)
        summary = stats.summary()
        logger.info("song summary %s", json.dumps(summary))
        return summary

    def _remember_finished(self, stats: SongStats) -> None:
        self.finished[stats.song] = stats
        while len(self.finished) > FINISHED_SONGS_KEPT:
            self.finished.popitem(last=False)

    async def stop(self) -> None:
        """Cancel buffered songs still waiting and save what was played; the outputs' owner then
        silences what sounds."""
        tasks = [queue.task for queue in self.queues.values() if queue.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.queues.clear()
        self.resume_points.save()

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
