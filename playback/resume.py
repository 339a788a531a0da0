"""Acknowledging records only once what they hold was played, and saving each song's resume point first.

What was played is noted per song in ``played_seqs`` (the worker's Faust table), so a worker taking over
after a crash resumes each song after the last event played instead of playing it again.
"""
from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from collections import deque
from typing import Callable, Hashable, Iterable, Mapping, MutableMapping

from models.midi_event import MidiEvent
from models.resume_point import ResumePoint

# How often resume points are saved at most (a changelog record per song each time): notes further
# apart are saved one by one, so a worker killed without warning repeats at most the note (or chord)
# it was playing; a burst (a record every ~0.7 ms) writes one per 5 ms instead of one per record.
RESUME_SAVE_INTERVAL = 0.005


def this_worker() -> str:
    """How a resume point names the worker that wrote it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def as_resume_point(value: ResumePoint | int | None) -> ResumePoint | None:
    """A table value as a ResumePoint: an older worker's bare seq becomes one without time or worker."""
    return ResumePoint(seq=value) if isinstance(value, int) else value


class ResumePoints:
    """Each song's highest seq played (or dropped), kept in ``table``: the worker's Faust table, whose
    changelog topic outlives the worker, so the worker taking over a song resumes after that seq. Each
    is kept as a ResumePoint, with the wall time it was played at and this worker's name (``worker``),
    so the worker taking over can tell how long the song went unplayed (its handover).

    Written after playing, not before: a worker killed in between plays those events again when it
    restarts (a repeated note) rather than never (a lost note-off leaves a note stuck).

    Records are saved together at most every ``save_interval`` seconds, one write per song, and only
    then acknowledged, so no record is acknowledged before its write is in the producer's hands;
    Faust flushes the producer before committing offsets, so no committed offset runs ahead of the
    table. Notes further apart than the interval are each saved as soon as played.
    """

    def __init__(self, table: MutableMapping[str, ResumePoint | int], save_interval: float = RESUME_SAVE_INTERVAL,
                 worker: str | None = None) -> None:
        self.table = table
        self.save_interval = save_interval
        self.worker = this_worker() if worker is None else worker
        # Per song, (seq, wall time noted) not yet written to the table.
        self.unsaved: dict[str, tuple[int, float]] = {}
        self.unacknowledged: list[Callable[[], object]] = []
        self.saved_at = -math.inf
        self.save_due: asyncio.TimerHandle | None = None
        # Per partition, (offset of the record that ended a song, song), waiting for a commit past it.
        self.finished: dict[Hashable, list[tuple[int, str]]] = {}
        self.writes = 0
        self.forgotten = 0

    def forget_once_committed(self, song: str, position: tuple[Hashable, int]) -> None:
        """Remove ``song`` from the table once the record at ``position`` (partition, offset), which
        ended it, is behind the group's committed offset: from then on no worker reads the song again,
        so the table holds only songs still playing instead of one key per song ever played."""
        self.finished.setdefault(position[0], []).append((position[1], song))

    def committed(self, offsets: Mapping[Hashable, int]) -> None:
        """The group committed ``offsets`` (the next offset to read, per partition)."""
        for partition, offset in offsets.items():
            waiting = self.finished.get(partition)
            if not waiting:
                continue
            done = [song for ended_at, song in waiting if ended_at < offset]
            self.finished[partition] = [(ended_at, song) for ended_at, song in waiting if ended_at >= offset]
            for song in done:
                self.unsaved.pop(song, None)
                self.table.pop(song, None)
                self.forgotten += 1

    def get(self, song: str) -> int | None:
        """The highest seq of ``song`` played so far, here or by an earlier worker; None if none."""
        unsaved = self.unsaved.get(song)
        if unsaved is not None:
            return unsaved[0]
        point = as_resume_point(self.table.get(song))
        return None if point is None else point.seq

    def point(self, song: str) -> ResumePoint | None:
        """``song``'s resume point as saved in the table (what an earlier worker left), if any."""
        return as_resume_point(self.table.get(song))

    def taken_over(self, song: str) -> ResumePoint | None:
        """``song``'s resume point if another worker wrote it and this one has played nothing of the song
        since: the song is being handed over to this worker."""
        if song in self.unsaved:
            return None
        point = self.point(song)
        return point if point is not None and point.worker != self.worker else None

    def played(self, song: str, seq: int) -> None:
        """Note ``seq`` of ``song`` as played (or dropped) now, to be saved within ``save_interval``."""
        # A late copy of an older record must not move a song's resume point back.
        saved = self.get(song)
        if saved is None or seq > saved:
            self.unsaved[song] = (seq, time.time())
            self._save_soon()

    def acknowledge_once_saved(self, acknowledge: Callable[[], object]) -> None:
        """Call ``acknowledge`` once what was noted as played so far is saved."""
        self.unacknowledged.append(acknowledge)
        self._save_soon()

    def _save_soon(self) -> None:
        if self.save_due is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save()  # a caller without an event loop has nothing to gather records over
            return
        self.save_due = loop.call_later(max(0.0, self.saved_at + self.save_interval - time.monotonic()), self.save)

    def save(self) -> None:
        if self.save_due is not None:
            self.save_due.cancel()
            self.save_due = None
        self.saved_at = time.monotonic()
        unsaved, unacknowledged = self.unsaved, self.unacknowledged
        self.unsaved, self.unacknowledged = {}, []
        for song, (seq, played_at) in unsaved.items():
            self.table[song] = ResumePoint(seq=seq, played_at=played_at, worker=self.worker)
        self.writes += len(unsaved)
        for acknowledge in unacknowledged:
            acknowledge()


class RecordProgress:
    """One record on its way through the player, until every event of it has been played or dropped.

    Each event's resume point is noted as it plays, not when the whole record is done: a record of a
    burst holds seconds of a buffered song, and a worker killed in the middle of it must not play its
    first part again. The record is acknowledged once all of it is done and saved."""

    def __init__(self, resume_points: ResumePoints, done: Callable[[], object],
                 position: tuple[Hashable, int] | None = None) -> None:
        self.resume_points = resume_points
        self.done = done
        # (partition, offset) of the record on the topic, where the caller knows it
        self.position = position
        # Scheduled events not yet played, plus one until the whole record has been handed over.
        self.unfinished = 1

    def handled(self, event: MidiEvent) -> None:
        self.resume_points.played(event.song, event.seq)

    def wait_for(self) -> None:
        self.unfinished += 1

    def finished_one(self) -> None:
        self.unfinished -= 1
        if not self.unfinished:
            self.resume_points.acknowledge_once_saved(self.done)


class InOrderAcks:
    """Acknowledges each partition's records in the order they were read: each one once it and every
    record read before it from its partition are done.

    Buffered songs finish their records out of order, and Faust commits up to the first record not
    acknowledged, except at the head: with nothing committed yet, or with only the record at the
    committed offset missing, it commits past that record, which a worker taking over then never reads.
    """

    def __init__(self) -> None:
        self.waiting: dict[Hashable, deque[list]] = {}

    def track(self, partition: Hashable, acknowledge: Callable[[], object]) -> Callable[[], None]:
        """The callback that says this record is done; ``acknowledge`` is called when its turn comes."""
        waiting = self.waiting.setdefault(partition, deque())
        entry = [acknowledge, False]
        waiting.append(entry)

        def done() -> None:
            entry[1] = True
            while waiting and waiting[0][1]:
                waiting.popleft()[0]()
        return done

    def forget(self, partitions: Iterable[Hashable]) -> None:
        """Acknowledge nothing more of ``partitions``' records read so far (the partitions were revoked:
        their next owner reads again whatever was not committed); their records read from now on are
        tracked afresh."""
        for partition in partitions:
            waiting = self.waiting.pop(partition, None)
            if waiting is not None:
                # A callback still held by a record finds nothing to acknowledge.
                waiting.clear()
