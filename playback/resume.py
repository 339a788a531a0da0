"""Acknowledging records only once what they hold was played, and saving each song's resume point first.

What was played is noted per song in ``played_seqs`` (the worker's Faust table), so a worker taking over
after a crash resumes each song after the last event played instead of playing it again.
"""
from __future__ import annotations

import asyncio
import math
import time
from typing import Callable, MutableMapping

from models.midi_event import MidiEvent

# How often resume points are saved at most (a changelog record per song each time): notes further
# apart are saved one by one, so a worker killed without warning repeats at most the note (or chord)
# it was playing; a burst (a record every ~0.7 ms) writes one per 5 ms instead of one per record.
RESUME_SAVE_INTERVAL = 0.005


class ResumePoints:
    """Each song's highest seq played (or dropped), kept in ``table``: the worker's Faust table, whose
    changelog topic outlives the worker, so the worker taking over a song resumes after that seq.

    Written after playing, not before: a worker killed in between plays those events again when it
    restarts (a repeated note) rather than never (a lost note-off leaves a note stuck).

    Records are saved together at most every ``save_interval`` seconds, one write per song, and only
    then acknowledged, so no record is acknowledged before its write is in the producer's hands;
    Faust flushes the producer before committing offsets, so no committed offset runs ahead of the
    table. Notes further apart than the interval are each saved as soon as played.
    """

    def __init__(self, table: MutableMapping[str, int], save_interval: float = RESUME_SAVE_INTERVAL) -> None:
        self.table = table
        self.save_interval = save_interval
        self.unsaved: dict[str, int] = {}
        self.unacknowledged: list[Callable[[], object]] = []
        self.saved_at = -math.inf
        self.save_due: asyncio.TimerHandle | None = None

    def get(self, song: str) -> int | None:
        seq = self.unsaved.get(song)
        return self.table.get(song) if seq is None else seq

    def record_played(self, highest_seqs: dict[str, int], acknowledge: Callable[[], object]) -> None:
        for song, seq in highest_seqs.items():
            # A late copy of an older record must not move a song's resume point back.
            saved = self.get(song)
            if saved is None or seq > saved:
                self.unsaved[song] = seq
        self.unacknowledged.append(acknowledge)
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
        for song, seq in unsaved.items():
            self.table[song] = seq
        for acknowledge in unacknowledged:
            acknowledge()


class RecordProgress:
    """One record on its way through the player, until every event of it has been played or dropped."""

    def __init__(self, resume_points: ResumePoints, done: Callable[[], object]) -> None:
        self.resume_points = resume_points
        self.done = done
        self.highest_seqs: dict[str, int] = {}
        # Scheduled events not yet played, plus one until the whole record has been handed over.
        self.unfinished = 1

    def handled(self, event: MidiEvent) -> None:
        self.highest_seqs[event.song] = max(event.seq, self.highest_seqs.get(event.song, -1))

    def wait_for(self) -> None:
        self.unfinished += 1

    def finished_one(self) -> None:
        self.unfinished -= 1
        if not self.unfinished:
            self.resume_points.record_played(self.highest_seqs, self.done)
