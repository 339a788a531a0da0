"""Reading MIDI files into songs: the channel voice messages with their score times.

A file is read and checked whole before anything of it is published, and every way a file can be
wrong becomes one SongError whose message names the file and the reason; nothing else escapes.
"""
from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

from mido.midifiles.midifiles import DEFAULT_TEMPO

from producer.midi_file import MidiFileError, channel_timeline, read_header

MIDI_SUFFIXES = (".mid", ".midi")


class SongError(Exception):
    """A path or file that cannot become a song; the message names it and says why."""


class ScoreEvent(NamedTuple):
    """A tuple, not a dataclass: a song has up to a million of them and tuples build several times faster."""

    score_time: float
    message: tuple[int, ...]


@dataclass(frozen=True)
class Song:
    path: Path
    events: tuple[ScoreEvent, ...]
    # The track (0 first, as mido numbers them) of each event, when read with_tracks; else empty.
    tracks: tuple[int, ...] = ()

    @property
    def duration(self) -> float:
        return self.events[-1].score_time if self.events else 0.0


def find_midi_files(paths: Iterable[str]) -> tuple[list[Path], list[SongError]]:
    """Expand files, folders (their .mid/.midi entries, sorted) and globs, in the order given.

    Anything that exists and is not a folder is returned as a file, so read_song can say what is
    wrong with it (a FIFO, a folder named x.mid, a broken link) instead of it being skipped silently.
    """
    found: list[Path] = []
    problems: list[SongError] = []
    for spec in paths:
        matches = sorted(glob.glob(spec)) if glob.has_magic(spec) else [spec]
        if not matches:
            problems.append(SongError(f"{spec}: no file matches this pattern"))
        for match in map(Path, matches):
            if match.is_dir():
                try:
                    files = sorted(p for p in match.iterdir() if p.suffix.lower() in MIDI_SUFFIXES)
                except OSError as exc:
                    problems.append(SongError(f"{match}: cannot list folder: {exc.strerror or exc}"))
                    continue
                if not files:
                    problems.append(SongError(f"{match}: folder has no .mid or .midi files"))
                found.extend(files)
            elif os.path.lexists(match):
                found.append(match)
            else:
                problems.append(SongError(f"{match}: no such file or folder"))
    return found, problems


def read_song(path: Path, *, max_file_bytes: int, max_song_seconds: float, max_song_events: int,
              with_tracks: bool = False) -> Song:
    """Parse and check a whole MIDI file; raises SongError naming the file for anything that is wrong.
    ``with_tracks`` also keeps each event's track (``Song.tracks``), for keying a song by track."""
    data = read_file_bytes(path, max_file_bytes)
    tracks: list[int] | None = [] if with_tracks else None
    try:
        header = read_header(data)
        timeline, tempos = channel_timeline(data, header, max_song_events, tracks)
    except MidiFileError as exc:
        raise SongError(f"{path}: {exc}") from None
    events = tuple(score_events(timeline, tempos, header.ticks_per_beat))
    if not events:
        raise SongError(f"{path}: has no notes or other channel messages to play")
    duration = events[-1].score_time
    if duration > max_song_seconds:
        raise SongError(
            f"{path}: song lasts {duration:.1f} s ({duration / 3600:.1f} h), longer than the limit of "
            f"{max_song_seconds:g} s (MIDI_MAX_SONG_SECONDS); a corrupt delta time or tempo often does this"
        )
    return Song(path, events, tuple(tracks) if tracks is not None else ())


def read_file_bytes(path: Path, max_file_bytes: int) -> bytes:
    """The file's bytes; only regular files, and opened non-blocking so a FIFO cannot hang the producer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SongError(f"{path}: cannot open: {exc.strerror or exc}") from None
    too_large = f"{path}: file is larger than the limit of {max_file_bytes} bytes (MIDI_MAX_FILE_BYTES)"
    try:
        status = os.fstat(fd)
        if stat.S_ISDIR(status.st_mode):
            raise SongError(f"{path}: is a folder, not a MIDI file")
        if not stat.S_ISREG(status.st_mode):
            raise SongError(f"{path}: is not a regular file (a FIFO, socket or device), so it is not read")
        if status.st_size > max_file_bytes:
            raise SongError(too_large)
        with open(fd, "rb", closefd=False) as file:
            data = file.read(max_file_bytes + 1)
    except OSError as exc:
        raise SongError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > max_file_bytes:  # it grew while being read
        raise SongError(too_large)
    if not data:
        raise SongError(f"{path}: file is empty")
    return data


def score_events(timeline: list, tempos: list, ticks_per_beat: int) -> Iterable[ScoreEvent]:
    """Seconds from the start for each (tick, bytes), following the tempo map (120 bpm until the first change)."""
    changes = iter(tempos)
    next_change = next(changes, None)
    base_tick, base_seconds = 0, 0.0
    seconds_per_tick = DEFAULT_TEMPO / 1e6 / ticks_per_beat
    for tick, message in timeline:
        while next_change is not None and next_change[0] <= tick:
            change_tick, tempo = next_change
            base_seconds += (change_tick - base_tick) * seconds_per_tick
            base_tick, seconds_per_tick = change_tick, tempo / 1e6 / ticks_per_beat
            next_change = next(changes, None)
        yield ScoreEvent(base_seconds + (tick - base_tick) * seconds_per_tick, message)
