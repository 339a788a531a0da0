"""Turning records from the notes topic into played MIDI, measured per song: the player ties together
the record decoder (decoder.py), the song book (song_book.py), the playout strategy, live or buffered
(playout.py), and the resume points (resume.py).

A record is acknowledged once what it holds was played (playback.resume); a song ends with its end event,
or after a while without any event, when its producer gave up or died.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from typing import Callable, Hashable, MutableMapping, Protocol, Sequence

import mido

from config.settings import PlaybackMode, Settings
from logs.rate_limit import RateLimit
from logs.terminal import logging_to_terminal
from models.midi_event import InvalidEvent, MidiEvent
from outputs import OutputSet
from playback.decoder import RecordDecoder
from playback.playout import BufferedPlayout, LivePlayout, Playout, SongQueue
from playback.resume import RecordProgress, ResumePoints
from playback.song_book import SongBook
from playback.stats import SongStats, readable_summary

logger = logging.getLogger(__name__)

INVALID_LOG_INTERVAL = 5.0
# How a song ended, in its summary.
ENDED_BY_END_EVENT = "end event"
ENDED_IDLE = "idle"


def worker_id() -> str:
    """``host:pid``: which worker process played a song, across machines."""
    return f"{socket.gethostname()}:{os.getpid()}"


class PlayObserver(Protocol):
    """Told of every chord played and every song summary (web/feed.py keeps them for the web page).
    Called on the playing path: it must hand off and return, never wait."""

    def played(self, chord: Sequence[MidiEvent], played_at: float) -> None: ...

    def finished(self, summary: dict) -> None: ...


class Player:
    """Plays each valid event through ``outputs`` and keeps a SongStats per song.

    Its settings come as one object (config/settings.py): ``playback`` live plays an event the moment
    it is handed over; buffered plays it at the song's start + score time + ``playout_delay``
    (playback/playout.py); ``max_lateness`` drops events older than that.

    ``played_seqs`` maps each song to the highest seq played (or dropped) so far; a song this player
    has not seen yet resumes after the seq found there, counting what it skips as duplicates.

    Records over ``max_record_bytes`` and events due past ``max_song_seconds`` count as invalid
    (playback/decoder.py). A song with no event for ``song_idle_timeout`` seconds (None or 0: never) and
    nothing waiting for its slot is finished as if its end event had come.

    ``observer``, if any, is told of what was played and of each song's summary.
    """

    def __init__(self, outputs: OutputSet, settings: Settings | None = None,
                 played_seqs: MutableMapping[str, int] | None = None,
                 observer: PlayObserver | None = None) -> None:
        settings = Settings() if settings is None else settings
        self.outputs = outputs
        self.resume_points = ResumePoints({} if played_seqs is None else played_seqs)
        self.decoder = RecordDecoder(settings.max_record_bytes, settings.max_song_seconds)
        self.book = SongBook(self.resume_points, on_new_song=self._watch_idle_songs)
        buffered = PlaybackMode(settings.playback) is PlaybackMode.BUFFERED
        self.playout: Playout = (BufferedPlayout(self, settings.playout_delay, settings.playout_clock_window)
                                 if buffered else LivePlayout(self))
        self.max_lateness = settings.max_lateness
        self.song_idle_timeout = settings.song_idle_timeout
        self._idle_watch: asyncio.Task | None = None
        self.invalid = 0
        self.invalid_notices = RateLimit(INVALID_LOG_INTERVAL, noun="report")
        self.observer = observer
        # The summary stays JSON for machines; a person reading the log on a terminal also gets it in words.
        self.readable_summaries = logging_to_terminal()
        # Which worker played a song, in its summary: several may play the parts of one.
        self.worker = worker_id()

    @property
    def songs(self):
        return self.book.songs

    @property
    def finished(self):
        return self.book.finished

    @property
    def after_end(self) -> int:
        return self.book.after_end

    @property
    def queues(self) -> dict:
        """Buffered songs' queues (none, live)."""
        return self.playout.queues

    def handle(self, raw: bytes | None, done: Callable[[], object] = lambda: None,
               position: tuple[Hashable, int] | None = None) -> None:
        """Take one value from the topic: decode it, then play or schedule each of its events.

        ``done`` is called once all of it has been played (buffered: once its last event had its slot)
        and its songs' resume points saved: the agent acknowledges the record there, so the offset
        committed never passes an event not yet played. ``position`` is the record's (partition,
        offset): a song it ends leaves the resume points once the group commits past it.
        """
        try:
            events, problems = self.decoder.decode(raw)
        except InvalidEvent as exc:
            self._reject(raw, exc)
            done()
            return
        for problem in problems:
            self._reject(raw, problem)
        record = RecordProgress(self.resume_points, done, position)
        # The partition, for the summary: a TP from Faust (agents/stage.py), or a number from a caller.
        partition = None if position is None else getattr(position[0], "partition", position[0])
        # Live, the record's events (a chord) are played together once all are checked, so its notes
        # leave back to back instead of each after the bookkeeping of the one before.
        chord: list[MidiEvent] = []
        # This loop runs for every event a worker reads (a backlog: hundreds of thousands a second), so
        # what it looks up is looked up once.
        arrive, take, max_lateness = self.book.arrive, self.playout.take, self.max_lateness
        now = time.time()
        try:
            for event in events:
                stats = arrive(event)
                if stats is None:
                    continue  # a copy, or the end of a song an earlier worker finished
                stats.partition = partition
                if max_lateness is not None and not event.end and now - event.sent_at > max_lateness:
                    stats.dropped += 1
                    record.handled(event)
                    continue
                take(event, stats, record, chord)
            self.play_chord(chord, record)
        finally:
            # Also when this record crashed the agent: it is let go once what of it was scheduled has
            # played (the rest of it counts as lost in its song), instead of holding its partition's
            # commits until the worker restarts.
            record.finished_one()

    def play_chord(self, chord: list[MidiEvent], record: RecordProgress | None = None) -> None:
        """Send the events of ``chord`` back to back, then count them as played (and, with ``record``,
        note them for resuming); empties ``chord``."""
        if not chord:
            return
        if self.outputs.outputs:
            # The bytes were checked when the record was decoded.
            messages = [mido.Message.from_bytes(event.message) for event in chord]
            self.outputs.send_together(list(zip(messages, (event.song for event in chord))))
        self.count_played(chord, time.time(), record)
        chord.clear()

    def count_played(self, chord: Sequence[MidiEvent], played_at: float, record: RecordProgress | None = None) -> None:
        """Count the events of ``chord`` as played at ``played_at`` (``time.time()``), and with ``record``
        note them for resuming."""
        songs = self.book.songs
        highest_seq: dict[str, int] = {}
        for event in chord:
            target = event.score_time * event.speed_ratio if event.speed_ratio else None
            songs[event.song].played(event.message, played_at, event.sent_at, target)
            if event.seq > highest_seq.get(event.song, -1):
                highest_seq[event.song] = event.seq
        if record is not None:
            # One resume point per song and chord, not per event: the highest seq played is what counts.
            for song, seq in highest_seq.items():
                record.resume_points.played(song, seq)
        if self.observer is not None:
            # A copy: live, ``chord`` is the caller's list, emptied and filled again.
            self.observer.played(tuple(chord), played_at)

    def abandon(self, song: str, acknowledge: bool = True) -> None:
        """Stop a song without finishing it (its partition moved, or its output failed): let go what
        is queued for it and release its notes. Its events arriving again start it afresh, after its
        resume point. With ``acknowledge`` False the records of what was queued stay unacknowledged
        (its partition was revoked: the next owner reads them again, from the last offset committed)."""
        self.playout.close(song, acknowledge)
        self.songs.pop(song, None)
        self.outputs.release(song)

    def hand_over(self) -> dict[str, tuple[SongStats, SongQueue]]:
        """Stop playing the buffered songs and give up each one's stats and queue, records unfinished,
        for the player that takes over (:meth:`take_over`) when Faust restarts a crashed agent."""
        return {song: (self.songs.pop(song), queue) for song, queue in self.playout.hand_over().items()}

    def take_over(self, handed: dict[str, tuple[SongStats, SongQueue]]) -> None:
        """Play on the songs another player handed over: same stats, same slots; their records are let
        go here as their events play, and their resume points noted here."""
        for song, (stats, queue) in handed.items():
            self.book.songs[song] = stats
            for queued in queue.pending:
                queued.record.resume_points = self.resume_points
            self.playout.adopt(song, queue)
        if handed:
            self._watch_idle_songs()

    def finish(self, song: str, ended: str = ENDED_BY_END_EVENT, record: RecordProgress | None = None) -> dict:
        """Release what the song left sounding and log its summary. ``record``: the one holding its end
        event, whose commit lets the song leave the resume points."""
        self.outputs.release(song)
        self.playout.close(song)
        stats = self.songs.pop(song)
        if ended == ENDED_BY_END_EVENT:
            self.book.remember_finished(stats)
            if record is not None and record.position is not None:
                self.resume_points.forget_once_committed(song, record.position)
        # else its producer may be back (or the worker's broker was away): its events start it afresh.
        summary = {**stats.summary(), "worker": self.worker, "ended": ended}
        logger.info("song summary %s", json.dumps(summary))
        if self.readable_summaries:
            logger.info("song %s", readable_summary(summary))
        if self.observer is not None:
            self.observer.finished(summary)
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
                    if self.playout.waiting(song):
                        continue
                    idle_at = stats.last_event_at + self.song_idle_timeout
                    if idle_at <= now:
                        self.finish(song, ended=ENDED_IDLE)
                    else:
                        next_check = min(next_check, idle_at)
                await asyncio.sleep(next_check - now)
        finally:
            self._idle_watch = None

    async def stop(self) -> None:
        """Cancel buffered songs still waiting and save what was played; the outputs' owner then
        silences what sounds."""
        if self._idle_watch is not None:
            self._idle_watch.cancel()
            await asyncio.gather(self._idle_watch, return_exceptions=True)
        await self.playout.stop()
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
        also = self.invalid_notices.tail()
        if also is None:
            return
        logger.warning("skipped an invalid record: %s; value starts %r%s", error, (raw or b"")[:60], also)
