"""When a note plays: live, the moment it arrives; buffered, at its song's start + score time + a playout
delay. Two strategies behind one interface, each given the player that owns the songs and outputs.

Buffered, a song's start is the producer's: the ``song_start`` stamp every event carries, its wall clock
when score time 0 was due. It is the same for every part of a song, so workers playing its parts (one
machine, or machines whose clocks agree) play them together: an offset of d ms between a worker's clock
and the producer's shifts that worker's parts by d ms. Events without the stamp (a producer from
before it), and parts whose first event seen is too far from its slot on that clock (a backlog, a song
published at ``-s 0`` before the worker started, a clock far off), are anchored on the first event seen,
as every song was before: played whole in the score's rhythm, ``playout_delay`` after it arrived."""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from itertools import groupby, islice
from operator import attrgetter
from typing import TYPE_CHECKING, NamedTuple, Protocol

import mido

from config.settings import Settings
from logs.rate_limit import RateLimit
from outputs.port_process import HAND_AHEAD
from playback.resume import RecordProgress
from playback.stats import SongStats
from playback.timing import SharedWaits

if TYPE_CHECKING:
    from playback.player import Player

logger = logging.getLogger(__name__)


class Playout(Protocol):
    def take(self, event, stats: SongStats, record: RecordProgress, chord: list) -> None:
        """An event to play (or a song's end): play or schedule it. Live events of one record gather in
        ``chord``, which the player plays once the whole record has been taken."""

    def waiting(self, song: str) -> bool:
        """Whether events of ``song`` wait for their slot."""

    def close(self, song: str, acknowledge: bool = True) -> None:
        """Let go what waits for ``song``, its events not played: its records are acknowledged, or with
        ``acknowledge`` False left unacknowledged, for whoever reads them next."""

    def hand_over(self) -> dict[str, SongQueue]:
        """Stop playing and give up every song's queue whole, records unfinished, for another player."""

    def adopt(self, song: str, queue: SongQueue) -> None:
        """Play a queue another player handed over, on its own clock (its anchor and slots)."""

    async def stop(self) -> None:
        """Cancel what waits, everywhere."""


class LivePlayout:
    """Plays every event the moment it is handed over; a record's events (a chord) leave together."""

    def __init__(self, player: Player) -> None:
        self.player = player
        self.queues: dict = {}

    def take(self, event, stats: SongStats, record: RecordProgress, chord: list) -> None:
        if event.end:
            self.player.play_chord(chord, record)
            record.handled(event)
            self.player.finish(event.song, record=record)
        else:
            chord.append(event)

    def waiting(self, song: str) -> bool:
        return False

    def close(self, song: str, acknowledge: bool = True) -> None:
        pass

    def hand_over(self) -> dict[str, SongQueue]:
        return {}  # nothing waits: a live record is played before it is let go

    def adopt(self, song: str, queue: SongQueue) -> None:
        raise TypeError("a live player has no clock to play a buffered queue on")

    async def stop(self) -> None:
        pass


# How a buffered song was placed on the clock, in its summary (``playout_clock``).
ON_SONG_START = "song start"
ON_FIRST_EVENT = "first event"
NOTICE_INTERVAL = 5.0


def song_anchor(score_offset: float, song_start: float | None, *, now: float, wall_now: float,
                playout_delay: float, window: float) -> tuple[float, str]:
    """Where a song (or part) starts on the ``perf_counter`` clock, from the first of its events seen, and
    which clock that is: ON_SONG_START or ON_FIRST_EVENT.

    ``score_offset`` is that event's score time × speed ratio, ``now`` and ``wall_now`` the
    ``perf_counter()`` and ``time.time()`` of its arrival: the stamp, a wall-clock time, is moved onto
    the precise local clock once per song, by the difference between the two. The stamp is used unless
    the event is more than ``window`` seconds past its slot (stamp + score offset + delay) or due to be
    sent more than ``window`` seconds ahead of the worker's clock.
    """
    if song_start is not None:
        anchor = now + (song_start - wall_now)
        sent_slot = anchor + score_offset
        if now - (sent_slot + playout_delay) <= window and sent_slot - now <= window:
            return anchor, ON_SONG_START
    return now - score_offset, ON_FIRST_EVENT


class Queued(NamedTuple):
    """An event waiting for its slot, with its record and its MIDI message (None for a song's end). The
    message is made when the event arrives, not at its slot: mido takes ~3 µs to make one, and the 109
    messages at score time 0 of a 13-channel piece (programs, controllers, the first notes) left
    over 0.3 ms later for it, where a slot's only work should be sending."""

    slot: float
    event: object
    record: RecordProgress
    message: mido.Message | None


class SongQueue:
    """Buffered playback of one song: events wait in arrival order for their slot on the clock, and
    leave ``pending`` only once played, so a song stopped early lets every waiting record go."""

    def __init__(self, anchor: float) -> None:
        # perf_counter() time of the song's score time 0 (playback.playout.song_anchor)
        self.anchor = anchor
        self.pending: deque[Queued] = deque()
        self.arrived = asyncio.Event()
        self.task: asyncio.Task | None = None

    def stop_playing(self) -> None:
        """Cancel the task playing this queue (unless it is the caller: a song ending itself) and forget it."""
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
        self.task = None


class BufferedPlayout:
    """Plays each event at its song's start + score time + ``playout_delay``; an event arriving after
    that slot plays at once and counts as late. Each song has its own task, so no song waits for another.
    The song's start is its producer's stamp, within ``clock_window`` (song_anchor)."""

    def __init__(self, player: Player, playout_delay: float,
                 clock_window: float = Settings.playout_clock_window) -> None:
        self.player = player
        self.playout_delay = playout_delay
        self.clock_window = clock_window
        self.queues: dict[str, SongQueue] = {}
        self.off_clock_notices = RateLimit(NOTICE_INTERVAL)
        # The songs' tasks wait for their slots together: a chord's parts (songs of their own) leave as one.
        self.slots = SharedWaits()

    def take(self, event, stats: SongStats, record: RecordProgress, chord: list) -> None:
        now = time.perf_counter()
        score_offset = event.score_time * event.speed_ratio
        queue = self.queues.get(event.song)
        if queue is None:
            wall_now = time.time()
            anchor, stats.playout_clock = song_anchor(score_offset, event.song_start, now=now, wall_now=wall_now,
                                                      playout_delay=self.playout_delay, window=self.clock_window)
            if event.song_start is not None and stats.playout_clock == ON_FIRST_EVENT:
                self._off_clock(event.song, wall_now - (event.song_start + score_offset))
            queue = self.queues[event.song] = SongQueue(anchor)
            queue.task = asyncio.get_running_loop().create_task(self._play(event.song, queue))
        slot = queue.anchor + score_offset + self.playout_delay
        if now > slot and not event.end:
            stats.late += 1
        record.wait_for()
        # The bytes were checked when the record was decoded.
        queue.pending.append(Queued(slot, event, record, None if event.end else mido.Message.from_bytes(event.message)))
        queue.arrived.set()

    async def _play(self, song: str, queue: SongQueue) -> None:
        player = self.player
        stats = player.songs[song]
        try:
            while True:
                while not queue.pending:
                    queue.arrived.clear()
                    await queue.arrived.wait()
                slot, event, record, _ = queue.pending[0]
                if event.end:
                    queue.pending.popleft()
                    record.handled(event)
                    player.finish(song, record=record)
                    record.finished_one()
                    return
                ahead = slot - HAND_AHEAD - time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
                # Everything due within HAND_AHEAD is handed to the outputs at once, each slot's events
                # a chord; a port in a process of its own sends them at their slots itself (the events
                # of a piano piece may be a millisecond apart: handed one slot at a time, each after the
                # one before was reported, they would be late). They stay queued until played, so a
                # song abandoned on a failing output lets them go.
                pending = queue.pending
                horizon, due = time.perf_counter() + HAND_AHEAD, 1
                while due < len(pending) and not pending[due].event.end and pending[due].slot <= horizon:
                    due += 1
                # Cut into chords: the events sharing a slot (in slot order, as they arrived).
                chords = [list(chord) for _, chord in groupby(islice(pending, due), key=attrgetter("slot"))]
                play_at, wait = player.outputs.play_at, self.slots.until
                played_at = await asyncio.gather(*(
                    play_at([(queued.message, song) for queued in chord], chord[0].slot, wait) for chord in chords))
                for chord, at in zip(chords, played_at):
                    player.count_played([queued.event for queued in chord], at)
                # The idle clock runs from the last event played, not from its arrival.
                stats.last_event_at = time.monotonic()
                for _ in range(due):
                    _, event, record, _ = pending.popleft()
                    record.handled(event)
                    record.finished_one()
        except Exception as exc:
            # This task is the song's own: nothing would see the error, and its notes would hang.
            logger.error("stopped playing %s: %s", song, exc)
            player.abandon(song)

    def _off_clock(self, song: str, behind: float) -> None:
        """Say (rate-limited) that a stamped song plays from its first event, which arrived ``behind`` s after
        its producer's clock had it sent (negative: before)."""
        also = self.off_clock_notices.tail()
        if also is None:
            return
        where = f"{behind:.1f} s after" if behind >= 0 else f"{-behind:.1f} s before"
        logger.info("playing %s from its first event: it arrived %s its producer's clock sent it, beyond "
                    "MIDI_PLAYOUT_CLOCK_WINDOW (%g s)%s", song, where, self.clock_window, also)

    def waiting(self, song: str) -> bool:
        queue = self.queues.get(song)
        return queue is not None and bool(queue.pending)

    def close(self, song: str, acknowledge: bool = True) -> None:
        """Stop the song's task and let go the records of the events still waiting, the one waiting for
        its slot included: held back, they would stall the partition's offset commits for good. Their
        events are not saved as played, so a worker reading them again plays them.

        With ``acknowledge`` False their records are dropped unacknowledged instead (a revoked
        partition: its next owner reads them again, so the group's commit must not pass them)."""
        queue = self.queues.pop(song, None)
        if queue is None:
            return
        queue.stop_playing()
        pending, queue.pending = queue.pending, deque()
        if acknowledge:
            for queued in pending:
                queued.record.finished_one()

    def hand_over(self) -> dict[str, SongQueue]:
        """Stop every song's task and give up its queue, every record still unfinished (the agent
        crashed: the player Faust's restarted agent makes plays them, acknowledging them as it does).
        A chord handed to a port's process (outputs/port_process.py) that left in the moment between
        the crash and its cancellation is played again: at most HAND_AHEAD of the song twice."""
        queues, self.queues = self.queues, {}
        for queue in queues.values():
            queue.stop_playing()
        return queues

    def adopt(self, song: str, queue: SongQueue) -> None:
        """Play ``queue``, handed over by another player: its events keep their slots, so the song goes
        on where it was on the clock, and its records are let go here as they play."""
        self.queues[song] = queue
        queue.task = asyncio.get_running_loop().create_task(self._play(song, queue))
        queue.arrived.set()

    async def stop(self) -> None:
        tasks = [queue.task for queue in self.queues.values() if queue.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.queues.clear()
