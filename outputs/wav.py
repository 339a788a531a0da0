"""The ``wav:PATH`` output: the performance rendered to a WAV file exactly as it was heard.

Runs on a thread of its own (outputs/threaded.py), handed each chord with the instant it was played:
before playing it on an offline FluidSynth, it renders the time from the previous chord's instant to
this one's, so late or bunched notes (the cluster's latency) are late or bunched in the file too, each
within one FluidSynth block (64 frames, 1.5 ms) of its instant however far behind the thread runs. The
clock pauses between songs, after a tail that lets the last notes ring out, so a worker idle for an
hour does not write an hour of silence.

The header, which states the data's length, is written when the file opens (an empty WAV), at each
song end and at close, not at every write: Python's ``wave`` rewrote it (two seeks and a write) for
every chunk of samples. So the file is complete after each song, and at shutdown, however the worker
stops short of SIGKILL; killed mid-song, it holds what was played up to the last song end.
"""
from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Sequence

import mido

from outputs.synth import SAMPLE_RATE, new_synth, play

logger = logging.getLogger(__name__)

# Long enough for a piano's release and the reverb to die away after a song's last note.
TAIL_SECONDS = 1.0
# Rendering silence still costs FluidSynth ~3 ms per second of audio (reverb and chorus run on), so once
# no voice has sounded for this long, silence is written as zeros instead: a long pause stays cheap.
SILENCE_RENDERED_SECONDS = 2.0
# Frames rendered per call: a quarter of a second, so a long gap is rendered in pieces that each
# check whether any voice still sounds.
RENDER_CHUNK = SAMPLE_RATE // 4
CHANNELS = 2
SAMPLE_BYTES = 2
HEADER_BYTES = 44


def wav_header(frames: int) -> bytes:
    """The 44-byte header of a 16-bit PCM WAV file holding ``frames`` frames."""
    data = frames * CHANNELS * SAMPLE_BYTES
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", HEADER_BYTES - 8 + data, b"WAVE", b"fmt ", 16, 1, CHANNELS,
                       SAMPLE_RATE, SAMPLE_RATE * CHANNELS * SAMPLE_BYTES, CHANNELS * SAMPLE_BYTES,
                       SAMPLE_BYTES * 8, b"data", data)


class WavOutput:
    """Writes what the synth plays to ``path`` as 16-bit stereo WAV at the synth's sample rate; a sink
    for outputs.threaded.ThreadedOutput."""

    def __init__(self, path: str | Path, soundfont: str | None) -> None:
        self.path = Path(path)
        self.synth = new_synth(soundfont)
        self.frames = 0
        self.silent_frames = 0
        # The monotonic time at which frame 0 would have been played; None while paused between songs.
        self.clock_origin: float | None = None
        try:
            self.file = open(self.path, "wb")
            self.file.write(wav_header(0))
            self.file.flush()
        except BaseException:
            self.synth.delete()
            raise
        logger.info("recording what is played to %s", self.path.resolve())

    def play(self, messages: Sequence[mido.Message], at: float) -> None:
        if self.clock_origin is None:
            self.clock_origin = at - self.frames / SAMPLE_RATE
        self._render(round((at - self.clock_origin) * SAMPLE_RATE) - self.frames)
        for message in messages:
            play(self.synth, message)

    def _render(self, frames: int) -> None:
        """Append ``frames`` frames of what the synth sounds like now."""
        while frames > 0:
            if self.synth.get_active_voice_count():
                self.silent_frames = 0
            if self.silent_frames >= SILENCE_RENDERED_SECONDS * SAMPLE_RATE:
                samples = bytes(frames * CHANNELS * SAMPLE_BYTES)
                chunk = frames
            else:
                chunk = min(frames, RENDER_CHUNK)
                samples = self.synth.get_samples(chunk).tobytes()
                self.silent_frames += chunk
            self.file.write(samples)
            self.frames += chunk
            frames -= chunk

    def _complete(self) -> None:
        """Make the file on disk a complete WAV of everything rendered so far."""
        self.file.seek(0)
        self.file.write(wav_header(self.frames))
        self.file.seek(0, 2)
        self.file.flush()

    def song_ended(self, still_playing: bool, at: float) -> None:
        """Let the last notes ring out and pause the clock, unless another song is still playing; complete the file."""
        if not still_playing:
            self.play([], at)
            self._render(round(TAIL_SECONDS * SAMPLE_RATE))
            self.clock_origin = None
        self._complete()

    def close(self) -> None:
        try:
            if self.clock_origin is not None:
                self._render(round(TAIL_SECONDS * SAMPLE_RATE))
            self._complete()
        finally:
            self.file.close()
            self.synth.delete()
        logger.info("wrote %.1f s of audio to %s", self.frames / SAMPLE_RATE, self.path.resolve())
