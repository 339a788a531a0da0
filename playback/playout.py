"""When a note plays: live, the moment it arrives; buffered, at its song's start + score time + a playout
delay. Two strategies behind one interface, each given the player that owns the songs and outputs."""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

from playback.resume import RecordProgress
from playback.stats import SongStats
from playback.timing import wait_until

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


class SongQueue:
    """Buffered playback of one song: events wait in arrival order for their slot on the clock, and
    leave ``pending`` only once played, so a song stopped early lets every waiting record go."""

    def __init__(self, anchor: float) -> None:
        # perf_counter() time of the song's score time 0, from the first event seen of it
        self.anchor = anchor
        self.pending: deque[tuple[float, object, RecordProgress]] = deque()
        self.arrived = asyncio.Event()
        self.task: asyncio.Task | None = None


class BufferedPlayout:
    """Plays each event at its song's start + score time + ``playout_delay``; an event arriving after
    that slot plays at once and counts as late. Each song has its own task, so no song waits for another."""

    def __init__(self, player: Player, playout_delay: float) -> None:
        self.player = player
        self.playout_delay = playout_delay
        self.queues: dict[str, SongQueue] = {}

    def take(self, event, stats: SongStats, record: RecordProgress, chord: list) -> None:
        now = time.perf_counter()
        score_offset = event.score_time * event.speed_ratio
        queue = self.queues.get(event.song)
        if queue is None:
            queue = self.queues[event.song] = SongQueue(anchor=now - score_offset)
            queue.task = asyncio.get_running_loop().create_task(self._play(event.song, queue))
        slot = queue.anchor + score_offset + self.playout_delay
        if now > slot and not event.end:
            stats.late += 1
        record.wait_for()
        queue.pending.append((slot, event, record))
        queue.arrived.set()

    async def _play(self, song: str, queue: SongQueue) -> None:
        player = self.player
        stats = player.songs[song]
        try:
            while True:
                while not queue.pending:
                    queue.arrived.clear()
                    await queue.arrived.wait()
                slot, event, record = queue.pending[0]
                if event.end:
                    queue.pending.popleft()
                    record.handled(event)
                    player.finish(song, record=record)
                    record.finished_one()
                    return
                await wait_until(slot)
                # Everything due by now leaves together (a chord), back to back, counted afterwards;
                # it stays queued until played, so a song abandoned on a failing output lets it go.
                now, due = time.perf_counter(), 1
                while due < len(queue.pending) and not queue.pending[due][1].end and queue.pending[due][0] <= now:
                    due += 1
                player.play_chord([queue.pending[index][1] for index in range(due)])
                # The idle clock runs from the last event played, not from its arrival.
                stats.last_event_at = time.monotonic()
                for _ in range(due):
                    _, event, record = queue.pending.popleft()
                    record.handled(event)
                    record.finished_one()
        except Exception as exc:
            # This task is the song's own: nothing would see the error, and its notes would hang.
            logger.error("stopped playing %s: %s", song, exc)
            player.abandon(song)

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
        if queue.task is not None and queue.task is not asyncio.current_task():
            queue.task.cancel()
        pending, queue.pending = queue.pending, deque()
        if acknowledge:
            for _, _, record in pending:
                record.finished_one()

    def hand_over(self) -> dict[str, SongQueue]:
        """Stop every song's task and give up its queue, every record still unfinished (the agent
        crashed: the player Faust's restarted agent makes plays them, acknowledging them as it does)."""
        queues, self.queues = self.queues, {}
        for queue in queues.values():
            if queue.task is not None and queue.task is not asyncio.current_task():
                queue.task.cancel()
            queue.task = None
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
