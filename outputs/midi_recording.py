"""The ``mid:PATH`` output: the performance as a standard MIDI file, each message at its real playing time.

Times are seconds since the first message (gaps between songs included), at a resolution of 0.25 ms,
from the instant each chord was played, so the file lines up with the score once the constant delay is
removed. A MIDI file states its length up front, so the whole file is rewritten (to a temporary name,
then renamed over ``path``) at each song end and at shutdown: whatever stops the worker, ``path`` holds
a complete file. It runs on a thread of its own (outputs/threaded.py): that rewrite takes as long as the
file is big, and must not hold up the notes of another song playing meanwhile.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import mido

logger = logging.getLogger(__name__)

# 120 bpm, the MIDI default, with 2000 ticks a beat: one tick is 0.25 ms.
TEMPO = 500_000
TICKS_PER_BEAT = 2000


class MidiRecording:
    """Keeps every message with the time it was played and saves them as a type 0 MIDI file; a sink for
    outputs.threaded.ThreadedOutput."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=TEMPO, time=0)])
        self.started_at: float | None = None
        self.ticks = 0
        self.save()
        logger.info("recording the MIDI played to %s", self.path.resolve())

    def play(self, messages: Sequence[mido.Message], at: float) -> None:
        if self.started_at is None:
            self.started_at = at
        # Ticks from the start, not from the previous message, so rounding never accumulates.
        ticks = round(mido.second2tick(at - self.started_at, TICKS_PER_BEAT, TEMPO))
        for message in messages:
            self.track.append(message.copy(time=ticks - self.ticks))
            self.ticks = ticks

    def save(self) -> None:
        midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
        midi.tracks.append(self.track)
        partial = self.path.with_name(self.path.name + ".partial")
        midi.save(partial)
        os.replace(partial, self.path)

    def song_ended(self, still_playing: bool, at: float) -> None:
        self.save()

    def close(self) -> None:
        self.save()
        logger.info("wrote %d MIDI messages to %s", len(self.track) - 1, self.path.resolve())
