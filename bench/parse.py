"""MIDI file parsing speed: the producer's read_song (which checks every file fully) against mido's
own merged iteration, on real-world files (Debian's openttd-openmsx) and the demo songs.

    .venv/bin/python bench/parse.py [--smoke]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import mido
from common import ROOT, ratio_line

from producer.songs import read_song
from config.settings import Settings

REAL_WORLD = Path("/usr/share/games/openttd/baseset/openmsx")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the demo songs only")
    args = parser.parse_args()
    files = sorted((ROOT / "songs").glob("*.mid"))
    if not args.smoke:
        files += sorted(REAL_WORLD.glob("*.mid"))
    limits = Settings()
    app_events, app_seconds = 0, 0.0
    raw_events, raw_seconds = 0, 0.0
    for path in files:
        started = time.perf_counter()
        song = read_song(path, max_file_bytes=limits.max_file_bytes, max_song_seconds=limits.max_song_seconds,
                         max_song_events=limits.max_song_events)
        app_seconds += time.perf_counter() - started
        app_events += len(song.events)
        started = time.perf_counter()
        raw_events += sum(not message.is_meta and message.type != "sysex" for message in mido.MidiFile(path))
        raw_seconds += time.perf_counter() - started
    print(f"{len(files)} files, {app_events:,} channel messages")
    print(ratio_line("read_song (events/s)", app_events / app_seconds, raw_events / raw_seconds, "ev/s",
                     baseline="mido iteration"))


if __name__ == "__main__":
    main()
