"""Reading MIDI files into songs: the channel voice messages with their score times."""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import mido

MIDI_SUFFIXES = (".mid", ".midi")


class SongError(Exception):
    """A path or file that cannot become a song; the message names it and says why."""


@dataclass(frozen=True)
class ScoreEvent:
    score_time: float
    message: tuple[int, ...]


@dataclass(frozen=True)
class Song:
    path: Path
    events: tuple[ScoreEvent, ...]

    @property
    def duration(self) -> float:
        return self.events[-1].score_time if self.events else 0.0


def find_midi_files(paths: Iterable[str]) -> tuple[list[Path], list[SongError]]:
    """Expand files, folders (their .mid/.midi files, sorted) and globs, in the order given."""
    found: list[Path] = []
    problems: list[SongError] = []
    for spec in paths:
        matches = sorted(glob.glob(spec)) if glob.has_magic(spec) else [spec]
        if not matches:
            problems.append(SongError(f"{spec}: no file matches this pattern"))
        for match in map(Path, matches):
            if match.is_dir():
                files = sorted(p for p in match.iterdir() if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
                if not files:
                    problems.append(SongError(f"{match}: folder has no .mid or .midi files"))
                found.extend(files)
            elif match.is_file():
                found.append(match)
            else:
                problems.append(SongError(f"{match}: no such file or folder"))
    return found, problems


def read_song(path: Path) -> Song:
    """Parse a whole MIDI file; raises SongError naming the file for anything that is wrong."""
    try:
        midi = mido.MidiFile(path)
    except OSError as exc:
        raise SongError(f"{path}: cannot read: {exc.strerror or exc}") from None
    now = 0.0
    events = []
    for message in midi:
        now += message.time
        if not message.is_meta and message.type != "sysex":
            events.append(ScoreEvent(now, tuple(message.bytes())))
    return Song(path, tuple(events))
