"""The ``wav:PATH`` output: the performance rendered to a WAV file exactly as it was heard.

Each message is played on an offline FluidSynth at the moment it arrives: before it, the synth renders
the wall-clock time elapsed since the previous message, so late or bunched notes (the cluster's latency)
are late or bunched in the file too. The clock pauses between songs, after a tail that lets the last
notes ring out, so a worker idle for an hour does not write an hour of silence.

The file is valid after every write (Python's ``wave`` rewrites the header's lengths each time) and is
flushed at each song end and closed at shutdown, so a worker stopped by SIGTERM or Ctrl-C leaves it playable.
"""
from __future__ import annotations

import logging
import time
import wave
from pathlib import Path

import mido

from outputs.synth import SAMPLE_RATE, new_synth, play

logger = logging.getLogger(__name__)

# Long enough for a piano's release and the reverb to die away after a song's last note.
TAIL_SECONDS = 1.0
# Rendering silence still costs FluidSynth ~3 ms per second of audio (reverb and chorus run on), so once
# no voice has sounded for this long, silence is written as zeros instead: a long pause stays cheap.
SILENCE_RENDERED_SECONDS = 2.0
CHANNELS = 2
SAMPLE_BYTES = 2


class WavOutput:
    """Writes what the synth plays to ``path`` as 16-bit stereo WAV at the synth's sample rate."""

    def __init__(self, path: str | Path, soundfont: str | None) -> None:
        self.path = Path(path)
        self.synth = new_synth(soundfont)
        self.frames = 0
        self.silent_frames = 0
        # The monotonic time at which frame 0 would have been played; None while paused between songs.
        self.clock_origin: float | None = None
        try:
            self.file = open(self.path, "wb")
            self.wav = wave.open(self.file, "wb")
            self.wav.setnchannels(CHANNELS)
            self.wav.setsampwidth(SAMPLE_BYTES)
            self.wav.setframerate(SAMPLE_RATE)
            self.wav.writeframes(b"")  # the header now, so even a file with no notes is a valid WAV
            self.file.flush()
        except BaseException:
            self.synth.delete()
            raise
        logger.info("recording what is played to %s", self.path.resolve())

    def send(self, message: mido.Message) -> None:
        now = time.monotonic()
        if self.clock_origin is None:
            self.clock_origin = now - self.frames / SAMPLE_RATE
        self._render(round((now - self.clock_origin) * SAMPLE_RATE) - self.frames)
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
                chunk = min(frames, SAMPLE_RATE // 4)
                samples = self.synth.get_samples(chunk).tobytes()
                self.silent_frames += chunk
            self.wav.writeframes(samples)
            self.frames += chunk
            frames -= chunk

    def song_ended(self, still_playing: bool) -> None:
        """Let the last notes ring out and pause the clock, unless another song is still playing; flush."""
        if not still_playing:
            self._render(round(TAIL_SECONDS * SAMPLE_RATE))
            self.clock_origin = None
        self.file.flush()

    def close(self) -> None:
        try:
            if self.clock_origin is not None:
                self._render(round(TAIL_SECONDS * SAMPLE_RATE))
        finally:
            try:
                self.wav.close()
            finally:
                self.file.close()
                self.synth.delete()
        logger.info("wrote %.1f s of audio to %s", self.frames / SAMPLE_RATE, self.path.resolve())

    def __enter__(self) -> "WavOutput":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
