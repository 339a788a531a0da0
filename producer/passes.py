"""produce-midi's passes over its files (``--passes``): each file of each pass is a song of its own,
until the passes are done or a stop is requested.

A standing canary plays the same files all day; every pass reads each file again (so a file
replaced on disk is played as it is now, and only one song is held in memory), except a file
rejected once, which is not read again.
"""
from __future__ import annotations

import itertools
from functools import partial
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from aiokafka import AIOKafkaProducer

from config.settings import KeyBy
from playback.gc_pauses import collect_all_then_freeze
from playback.realtime import ordinary_priority

from producer.publish import SongReport, publish_song
from producer.songs import Song, SongError
from producer.stopping import StopRequest
from terminal.progress import SongProgress


def counted(number: int, one: str, many: str | None = None) -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"


def new_song_id(path: Path) -> str:
    return f"{path.name}@{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Passes:
    """How many times the files are played: ``count`` passes, or forever when it is None."""

    count: int | None

    @classmethod
    def parse(cls, text: str) -> Passes:
        """--passes' value, a number or ``forever``; raises ValueError saying what is wrong."""
        if text.strip().lower() == "forever":
            return cls(None)
        try:
            count = int(text)
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError(f"--passes {text}: must be a whole number, 1 or more, or forever")
        return cls(count)

    def numbers(self) -> Iterator[int]:
        return itertools.count(1) if self.count is None else iter(range(1, self.count + 1))

    def name(self, number: int) -> str:
        """``pass 3/10``, or ``pass 17`` when forever."""
        return f"pass {number}" if self.count is None else f"pass {number}/{self.count}"

    def label(self, number: int) -> str:
        """What a progress line ends with: `` (pass 3/10)``; nothing when there is a single pass."""
        return "" if self.count == 1 else f" ({self.name(number)})"


@dataclass
class Run:
    """What the passes published: for the exit code and the line a stop ends with."""

    passes: Passes
    pass_number: int = 0
    whole_passes: int = 0
    songs: int = 0
    rejected: set[Path] = field(default_factory=set)
    cut_short: SongReport | None = None

    @property
    def complete(self) -> bool:
        return self.passes.count is not None and self.whole_passes == self.passes.count

    def stopped_line(self, stop: StopRequest) -> str:
        where = "" if self.passes.count == 1 else f" in {self.passes.name(self.pass_number)}"
        line = f"stopped by {stop.signal.name}{where}: {counted(self.songs, 'song')} published"
        if self.passes.count != 1:
            line += f", {counted(self.whole_passes, 'whole pass', 'whole passes')}"
        if self.cut_short is not None:
            line += (f"; the last, {self.cut_short.song_id}, ended early after {self.cut_short.events} of its "
                     f"{self.cut_short.song_events} events")
        return line


def read_between_songs(read: Callable[[Path], Song], path: Path) -> Song:
    """The next song read, then the garbage collected, both off the clock and at ordinary priority.

    Off the clock: produce-midi's full collections took 42-52 ms and fell near songs' starts (reading a
    song makes ~10,000 objects), its younger ones up to 1.6 ms within songs; a send held there leaves
    after its sent_at stamp, and live workers heard the song's first chord 4-10 ms late. Collected and
    frozen here, each song's sends only walk their own garbage. At ordinary priority, the reading too
    (keep_on_rolling.mid takes 30-37 ms): at real-time priority two producers doing it at once held both
    cores of the soak's machine, and the last notes of the song just sent, already with the broker,
    reached a live worker there 9-53 ms late, the worker waiting for a core."""
    with ordinary_priority():
        song = read(path)
        collect_all_then_freeze()
    return song


async def publish_passes(producer: AIOKafkaProducer, topic: str, files: list[Path], passes: Passes,
                         stop: StopRequest, *, read: Callable[[Path], Song], view: SongProgress,
                         speed_ratio: float, record_size: int, key_by: KeyBy = KeyBy.SONG) -> Run:
    """Publish ``files`` in order, pass after pass, until the passes are done or ``stop`` is requested.

    ``read`` turns a path into a song or raises SongError: that file is then rejected (one line
    through ``view``, which also shows each song's progress) and skipped in later passes. A song being
    published when the stop comes ends with its end event, counting the events sent. Also ends when
    every file was rejected. ``key_by`` channel or track publishes each song's parts under keys of
    their own (producer/parts.py); the progress and the lines count the song as a whole.
    """
    run = Run(passes)
    for number in passes.numbers():
        run.pass_number = number
        label = passes.label(number)
        for path in files:
            if stop.requested:
                return run
            if path in run.rejected:
                continue
            try:
                song = read_between_songs(read, path)
            except SongError as exc:
                view.say(f"rejected: {exc}")
                run.rejected.add(path)
                continue
            song_id = new_song_id(path)
            view.started(song_id, len(song.events), song.duration, label,
                         line=f"playing {path} as {song_id}: {len(song.events)} events, {song.duration:.2f} s{label}")
            report = await publish_song(producer, topic, song, song_id, speed_ratio=speed_ratio,
                                        record_size=record_size,
                                        progress=partial(view.advanced, song_id),
                                        stop=stop.event, key_by=key_by)
            if report.events == 0 and song.events:
                view.finished(song_id, f"not sent {song_id}: stopped before its first event")
                return run
            view.finished(song_id, f"done {report.line()}{label}")
            run.songs += 1
            if report.stopped_early:
                run.cut_short = report
                return run
        run.whole_passes += 1
        if stop.requested or run.rejected.issuperset(files):
            return run
    return run
