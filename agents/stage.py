"""The worker's playing state, owned by one object: its players, the partition each song came from, and
what it reports every status interval. The agent (agents/player.py) is a thin loop over it, so it can
also be exercised in-process with any async iterable of events.
"""
from __future__ import annotations

import logging
import time
from typing import Any, AsyncIterable, Callable, MutableMapping

import numpy as np
from faust.types import TP

from config.settings import Settings
from outputs import open_outputs
from playback.gc_pauses import GcPauses, freeze_what_exists
from playback.heap_trim import HeapTrim
from playback.player import Player, PlayObserver
from models.resume_point import ResumePoint
from playback.resume import InOrderAcks
from playback.stats import median

logger = logging.getLogger(__name__)

# Songs remembered with their partition beyond those playing; past that, finished songs are forgotten.
FINISHED_SONG_PARTITIONS_KEPT = 1000


class SongPartitions:
    """The partition each song's records come from (the notes topic is keyed by song), so the songs
    of a partition that moved to another worker can be released here."""

    def __init__(self) -> None:
        self.partition_of: dict[str, TP] = {}

    def saw(self, key: bytes | None, tp: TP) -> None:
        if key is not None:
            self.partition_of[key.decode(errors="replace")] = tp

    def songs_not_in(self, assigned: set[TP]) -> list[str]:
        return [song for song, tp in self.partition_of.items() if tp not in assigned]

    def songs_in(self, partitions: set[TP]) -> list[str]:
        return [song for song, tp in self.partition_of.items() if tp in partitions]

    def keep_only(self, songs: set[str]) -> None:
        self.partition_of = {song: tp for song, tp in self.partition_of.items() if song in songs}


class KafkaLoad:
    """What the worker asks of the broker between two status lines: fetches by the wait they were sent
    with (adjustments.fetch_wait) and resume-point writes, per second."""

    def __init__(self) -> None:
        self.fetches: dict[str, int] = {}
        self.writes = 0
        self.at = time.monotonic()

    def line(self, fetches: dict[str, int], writes: int) -> str:
        now = time.monotonic()
        elapsed = max(now - self.at, 1e-9)
        rates = ", ".join(f"{(count - self.fetches.get(state, 0)) / elapsed:.0f} {state}"
                          for state, count in fetches.items())
        written = (writes - self.writes) / elapsed
        self.fetches, self.writes, self.at = dict(fetches), writes, now
        return f"fetches/s: {rates}; resume-point writes/s: {written:.1f}"


class PartitionLatency:
    """Per partition of the songs being played, the latency of what was played between two status lines:
    a partition whose broker is slow or away shows up as late, or silent, beside the others."""

    def __init__(self) -> None:
        # Per song, how many of its latencies earlier lines took in.
        self.taken: dict[str, int] = {}

    def line(self, players: list[Player], partition_of: dict[str, TP]) -> str | None:
        latencies: dict[TP, list[float]] = {}
        songs: dict[TP, int] = {}
        taken: dict[str, int] = {}
        for player in players:
            for song, stats in player.songs.items():
                tp = partition_of.get(song)
                if tp is None:
                    continue
                songs[tp] = songs.get(tp, 0) + 1
                taken[song] = len(stats.latencies_ms)
                latencies.setdefault(tp, []).extend(stats.latencies_ms[self.taken.get(song, 0):])
        self.taken = taken
        if not songs:
            return None
        parts = []
        for tp in sorted(songs):
            name = f"{tp.topic}[{tp.partition}]"
            played = latencies[tp]
            parts.append(f"{name} p50 {median(np.asarray(played)):.1f} ms ({len(played)} events)" if played
                         else f"{name} nothing played ({songs[tp]} song{'s' if songs[tp] > 1 else ''} waiting)")
        return "latency by partition since the last line: " + ", ".join(parts)


def playing_songs(player: Player) -> set[str]:
    return set(player.songs) | set(player.outputs.sounding)


class Stage:
    """Where the worker plays: one player while the agent runs, and what it knows of songs and partitions.

    ``played_seqs`` is the worker's table of resume points; ``commit_listeners`` the app's list of
    callbacks told what the group committed (adjustments/commits.py); ``observer``, if any, is told
    what each player plays (the web page's feed, web/feed.py)."""

    def __init__(self, settings: Settings, played_seqs: MutableMapping[str, ResumePoint | int],
                 commit_listeners: list[Callable[[Any], None]], observer: PlayObserver | None = None) -> None:
        self.settings = settings
        self.played_seqs = played_seqs
        self.commit_listeners = commit_listeners
        self.players: list[Player] = []
        # Whether the agent has run here before (Faust restarts it after a crash).
        self.started = False
        self.song_partitions = SongPartitions()
        # Acknowledgements in read order per partition, across runs of the agent: a record of a run
        # that crashed still comes before the records its successor reads.
        self.acks = InOrderAcks()
        # Buffered songs still queued when the agent crashed, for the player of its next run.
        self.handed_over: dict = {}
        self.kafka_load = KafkaLoad()
        self.partition_latency = PartitionLatency()
        self.gc_pauses = GcPauses()
        self.heap_trim = HeapTrim()
        self.observer = observer

    def observe(self, observer: PlayObserver) -> None:
        """Tell ``observer`` what is played from now on, by the players playing now too."""
        self.observer = observer
        for player in self.players:
            player.observer = observer

    async def play(self, events: AsyncIterable) -> None:
        """Play every event (Faust's events: ``value``, ``key``, ``message.tp``, ``message.offset``,
        ``ack()``) until they end. Leaving, for any reason, an exception included, silences the outputs."""
        # The agent's first start comes before Faust lets any record through (recovery comes first): the
        # one full collection of the worker's start-up garbage (~30 ms) is made there, where it delays no
        # note. Not on a restart after a crash: other partitions' songs may be sounding by then.
        if not self.started:
            self.started = True
            freeze_what_exists()
            logger.info(self.heap_trim.start_line())
            trimmed = self.heap_trim.trim_now()
            if trimmed is not None:
                logger.info(trimmed)
        with open_outputs(self.settings) as outputs, self.gc_pauses:
            player = Player(outputs, self.settings, self.played_seqs, self.observer)
            self.players.append(player)
            self.commit_listeners.append(player.resume_points.committed)
            handed, self.handed_over = self.handed_over, {}
            if handed:
                player.take_over(handed)
                logger.info("playing on %d song(s) queued when the agent crashed: %s", len(handed), ", ".join(handed))
            try:
                # The player lets each record go once it has been played, and the records of a partition
                # are acknowledged in the order read, so the offset committed never passes a note not yet
                # played, however long the playout buffer holds it.
                in_order = self.acks
                partitions = self.song_partitions
                async for event in events:
                    tp = event.message.tp
                    partitions.saw(event.key, tp)
                    player.handle(event.value, done=in_order.track(tp, event.ack), position=(tp, event.message.offset))
                    if len(partitions.partition_of) > FINISHED_SONG_PARTITIONS_KEPT + len(player.songs):
                        partitions.keep_only(playing_songs(player))
            except Exception:
                # Faust restarts a crashed agent. Dropped, what is queued would never be acknowledged and
                # its partitions' commits would stop until the worker restarts; acknowledged unplayed, it
                # would be lost. The next run's player plays it, on the same clock.
                self.handed_over = player.hand_over()
                if self.handed_over:
                    logger.warning("the agent crashed; %d song(s) still queued are handed to its next run: %s",
                                   len(self.handed_over), ", ".join(self.handed_over))
                raise
            finally:
                self.commit_listeners.remove(player.resume_points.committed)
                self.players.remove(player)
                await player.stop()

    def release_moved_songs(self, assigned: set[TP]) -> None:
        """Release the songs whose partition now belongs to another worker, which plays the rest of them.

        Done on assignment rather than on revocation: a rebalance revokes every partition first, and the
        songs of partitions that stay here keep sounding (live songs, and buffered ones with nothing
        queued; a buffered song's queue is let go at the revoke, see :meth:`let_go_revoked`).
        """
        moved = self.song_partitions.songs_not_in(assigned)
        for player in self.players:
            released = [song for song in moved if song in player.outputs.sounding or song in player.queues]
            for song in released:
                # Its records belong to the new owner, which reads again what was not committed.
                player.abandon(song, acknowledge=False)
            if released:
                logger.info("released %d song(s) whose partition moved to another worker: %s",
                            len(released), ", ".join(released))
        self.song_partitions.keep_only(set().union(*map(playing_songs, self.players)) - set(moved))

    def let_go_revoked(self, revoked: set[TP]) -> list[str]:
        """Stop at once the buffered songs queued on ``revoked`` partitions, releasing their notes, and
        acknowledge nothing more of those partitions' records; what was played is saved. Returns the
        songs let go.

        Faust would otherwise wait, before the group may rebalance, for every record read to be
        acknowledged: for a buffered backlog, until all of it had played, longer than the rebalance
        timeout. Their next owner (another worker, or this one again if the partition stays) reads the
        unacknowledged records again and resumes each song after its last seq played (the table).
        """
        songs = set(self.song_partitions.songs_in(revoked))
        let_go: list[str] = []
        for player in self.players:
            for song in [song for song in player.queues if song in songs]:
                player.abandon(song, acknowledge=False)
                let_go.append(song)
            player.resume_points.save()
        for song in [song for song in self.handed_over if song in songs]:
            del self.handed_over[song]
            let_go.append(song)
        self.acks.forget(revoked)
        if let_go:
            logger.info("let go %d song(s) queued on revoked partitions, for their next owner to resume: %s",
                        len(let_go), ", ".join(let_go))
        return let_go

    def status_lines(self, fetches: dict[str, int] | None) -> list[str]:
        """The status line of each player, the latency by partition of the songs playing, a line of the
        worker's load (``fetches``: by fetch wait), and once a minute what trimming the heap gave back
        (playback/heap_trim.py)."""
        lines = [f"status: {player.status()}" for player in self.players]
        if fetches is not None:
            writes = sum(player.resume_points.writes for player in self.players)
            collections, longest = self.gc_pauses.take()
            lines.append(f"kafka load: {self.kafka_load.line(fetches, writes)}; "
                         f"garbage collections: {collections}, longest {longest * 1000:.2f} ms")
        by_partition = self.partition_latency.line(self.players, self.song_partitions.partition_of)
        if by_partition is not None:
            lines.append(by_partition)
        trimmed = self.heap_trim.trim_if_due()
        if trimmed is not None:
            lines.append(trimmed)
        return lines
