"""Turning records from the notes topic into played MIDI, live or through a jitter buffer, measured per song.

A record is acknowledged once what it holds was played (playback.resume); a song ends with its end event,
or after a while without any event, when its producer gave up or died.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from typing import Callable, Hashable, MutableMapping

import mido

from config.settings import Settings
from logs.rate_limit import RateLimit
from models.midi_event import InvalidEvent, MidiEvent, decode_record
from outputs import OutputSet
from playback.resume import RecordProgress, ResumePoints
from playback.stats import SongStats
from playback.timing import wait_until

logger = logging.getLogger(__name__)

# Songs whose end was seen, remembered so a late duplicate of them is not played as a new song.
FINISHED_SONGS_KEPT = 1000
INVALID_LOG_INTERVAL = 5.0
# How a song ended, in its summary.
ENDED_BY_END_EVENT = "end event"
ENDED_IDLE = "idle"


class SongQueue:
    """Buffered playback of one song: events wait in arrival order for their slot on the clock, and
    leave ``pending`` only once played, so a song stopped early lets every waiting record go."""

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

    A record over ``max_record_bytes`` is not parsed, and an event playing more than
    ``max_song_seconds`` after its song's start is not scheduled: both count as invalid. A song with
    no event for ``song_idle_timeout`` seconds (None or 0: never) and nothing waiting for its slot is
    finished as if its end event had come.
    """

    def __init__(self, outputs: OutputSet, *, playback: str = "live", playout_delay: float = Settings.playout_delay,
                 max_lateness: float | None = None, played_seqs: MutableMapping[str, int] | None = None,
                 max_record_bytes: int = Settings.max_record_bytes, max_song_seconds: float = Settings.max_song_seconds,
                 song_idle_timeout: float | None = Settings.song_idle_timeout) -> None:
        self.outputs = outputs
        self.resume_points = ResumePoints({} if played_seqs is None else played_seqs)
        self.buffered = playback == "buffered"
        self.playout_delay = playout_delay
        self.max_lateness = max_lateness
        self.max_record_bytes = max_record_bytes
        self.max_song_seconds = max_song_seconds
        self.song_idle_timeout = song_idle_timeout
        self._idle_watch: asyncio.Task | None = None
        self.songs: dict[str, SongStats] = {}
        self.queues: dict[str, SongQueue] = {}
        # Only the ids: a finished song's stats (every latency, every seq seen) would keep ~1 MB per
        # ten-minute song alive for as long as it is remembered.
        self.finished: OrderedDict[str, None] = OrderedDict()
        self.after_end = 0
        self.invalid = 0
        self.invalid_notices = RateLimit(INVALID_LOG_INTERVAL)

    def handle(self, raw: bytes | None, done: Callable[[], object] = lambda: None,
               position: tuple[Hashable, int] | None = None) -> None:
        """Take one value from the topic: decode it, then play or schedule each of its events.

        ``done`` is called once all of it has been played (buffered: once its last event had its slot)
        and its songs' resume points saved: the agent acknowledges the record there, so the offset
        committed never passes an event not yet played. ``position`` is the record's (partition,
        offset): a song it ends leaves the resume points once the group commits past it.
        """
        if raw is not None and len(raw) > self.max_record_bytes:
            # Not parsed at all: a valid JSON value parses whatever its size, at the cost of the notes
            # of every other song waiting behind it.
            self._reject(raw, InvalidEvent(f"{len(raw)} bytes, over the limit of {self.max_record_bytes} "
                                           f"(MIDI_MAX_RECORD_BYTES)"))
            done()
            return
        try:
            events, problems = decode_record(raw)
        except InvalidEvent as exc:
            self._reject(raw, exc)
            done()
            return
        for problem in problems:
            self._reject(raw, problem)
        record = RecordProgress(self.resume_points, done, position)
        # Live, the record's events (a chord) are played together once all are checked, so its notes
        # leave back to back instead of each after the bookkeeping of the one before.
        chord: list[MidiEvent] = []
        for event in events:
            if event.score_time * event.speed_ratio > self.max_song_seconds:
                # No song plays that long (produce-midi refuses it); its slot would hold the song's
                # buffer, which plays in arrival order, for as long.
                self._reject(raw, InvalidEvent(f"seq {event.seq} of {event.song} plays "
                                               f"{event.score_time * event.speed_ratio:g} s after the song's "
                                               f"start, past MIDI_MAX_SONG_SECONDS ({self.max_song_seconds:g})"))
                continue
            self.handle_event(event, record, chord)
        self.play_chord(chord, record)
        record.finished_one()

    def handle_event(self, event: MidiEvent, record: RecordProgress, chord: list[MidiEvent]) -> None:
        """Count ``event`` in its song and schedule it (buffered), or add it to ``chord`` (live), which
        is played before a song ends here."""
        stats = self.songs.get(event.song)
        if stats is None:
            if event.song in self.finished:
                # Its summary is logged already: a copy arriving now is counted apart.
                self.after_end += 1
                return
            stats = self.songs[event.song] = self._start_song(event.song)
        stats.last_event_at = time.monotonic()
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
        elif event.end:
            self.play_chord(chord, record)
            record.handled(event)
            self.finish(event.song, record=record)
        else:
            chord.append(event)

    def _start_song(self, song: str) -> SongStats:
        stats = SongStats(song)
        resume_after = self.resume_points.get(song)
        if resume_after is not None:
            # What an earlier worker played counts as seen: arriving again, it is a duplicate and is
            # not played, and it is not counted as lost either.
            stats.seen.update(range(resume_after + 1))
            stats.highest_seq = resume_after
            logger.info("resuming %s after seq %d, played by an earlier worker", song, resume_after)
        self._watch_idle_songs()
        return stats

    def play_chord(self, chord: list[MidiEvent], record: RecordProgress | None = None) -> None:
        """Send the events of ``chord`` back to back, then count them as played (and, with ``record``,
        note them for resuming); empties ``chord``."""
        if not chord:
            return
        if self.outputs.outputs:
            # The bytes were checked when the record was decoded.
            self.outputs.send_together([(mido.Message.from_bytes(event.message), event.song) for event in chord])
        played_at = time.time()
        highest_seq: dict[str, int] = {}
        for event in chord:
            target = event.score_time * event.speed_ratio if event.speed_ratio else None
            self.songs[event.song].played(event.message, played_at, event.sent_at, target)
            highest_seq[event.song] = max(event.seq, highest_seq.get(event.song, -1))
        if record is not None:
            # One resume point per song and chord, not per event: the highest seq played is what counts.
            for song, seq in highest_seq.items():
                record.resume_points.played(song, seq)
        chord.clear()

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
                slot, event, record = queue.pending[0]
                if event.end:
                    queue.pending.popleft()
                    record.handled(event)
                    self.finish(song, record=record)
                    record.finished_one()
                    return
                await wait_until(slot)
                # Everything due by now leaves together (a chord), back to back, counted afterwards;
                # it stays queued until played, so a song abandoned on a failing output lets it go.
                now, due = time.perf_counter(), 1
                while due < len(queue.pending) and not queue.pending[due][1].end and queue.pending[due][0] <= now:
                    due += 1
                self.play_chord([queue.pending[index][1] for index in range(due)])
                # The idle clock runs from the last event played, not from its arrival.
                stats.last_event_at = time.monotonic()
                for _ in range(due):
                    _, event, record = queue.pending.popleft()
                    record.handled(event)
                    record.finished_one()
        except Exception as exc:
            # This task is the song's own: nothing would see the error, and its notes would hang.
            logger.error("stopped playing %s: %s", song, exc)
            self.abandon(song)

    def abandon(self, song: str) -> None:
        """Stop a song without finishing it (its partition moved, or its output failed): let go what
        is queued for it and release its notes. Its events arriving again start it afresh, after its
        resume point."""
        self._close_queue(song)
        self.songs.pop(song, None)
        self.outputs.release(song)

    def _close_queue(self, song: str) -> None:
        """Stop the song's buffered task and let go the records of the events still waiting, the one
        waiting for its slot included: held back, they would stall the partition's offset commits
        for good. Their events are not saved as played, so a worker reading them again plays them."""
        queue = self.queues.pop(song, None)
        if queue is None:
            return
        if queue.task is not None and queue.task is not asyncio.current_task():
            queue.task.cancel()
        pending, queue.pending = queue.pending, deque()
        for _, _, record in pending:
            record.finished_one()

    def finish(self, song: str, ended: str = ENDED_BY_END_EVENT, record: RecordProgress | None = None) -> dict:
        """Release what the song left sounding and log its summary. ``record``: the one holding its end
        event, whose commit lets the song leave the resume points."""
        self.outputs.release(song)
        self._close_queue(song)
        stats = self.songs.pop(song)
        if ended == ENDED_BY_END_EVENT:
            self._remember_finished(stats)
            if record is not None and record.position is not None:
                self.resume_points.forget_once_committed(song, record.position)
        # else its producer may be back (or the worker's broker was away): its events start it afresh.
        summary = {**stats.summary(), "ended": ended}
        logger.info("song summary %s", json.dumps(summary))
        return summary

    def _watch_idle_songs(self) -> None:
        """Start the one task that ends idle songs, unless it runs or nothing could run it."""
        if not self.song_idle_timeout or self._idle_watch is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a caller without an event loop has no clock to end songs by
        self._idle_watch = loop.create_task(self._end_idle_songs())

    async def _end_idle_songs(self) -> None:
        """Finish each song with no event for ``song_idle_timeout`` and none waiting for its slot; it
        is not finished while events wait, however far their slot, and at most once per timeout."""
        try:
            while self.songs:
                now = time.monotonic()
                next_check = now + self.song_idle_timeout
                for song, stats in list(self.songs.items()):
                    queue = self.queues.get(song)
                    if queue is not None and queue.pending:
                        continue
                    idle_at = stats.last_event_at + self.song_idle_timeout
                    if idle_at <= now:
                        self.finish(song, ended=ENDED_IDLE)
                    else:
                        next_check = min(next_check, idle_at)
                await asyncio.sleep(next_check - now)
        finally:
            self._idle_watch = None

    def _remember_finished(self, stats: SongStats) -> None:
        self.finished[stats.song] = None
        while len(self.finished) > FINISHED_SONGS_KEPT:
            self.finished.popitem(last=False)

    async def stop(self) -> None:
        """Cancel buffered songs still waiting and save what was played; the outputs' owner then
        silences what sounds."""
        tasks = [queue.task for queue in self.queues.values() if queue.task is not None]
        if self._idle_watch is not None:
            tasks.append(self._idle_watch)
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
        if self.after_end:
            parts.append(f"{self.after_end} copies of finished songs' events skipped")
        return "; ".join(parts) or "waiting for notes"

    def _reject(self, raw: bytes | None, error: InvalidEvent) -> None:
        self.invalid += 1
        held = self.invalid_notices.allow()
        if held is None:
            return
        also = f" (and {held} more since the last report)" if held else ""
        logger.warning("skipped an invalid record: %s; value starts %r%s", error, (raw or b"")[:60], also)
