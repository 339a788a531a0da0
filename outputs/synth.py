"""The ``synth`` output: FluidSynth in-process with a General MIDI SoundFont, heard through the audio driver.

Also the shared parts of every output that makes sound from MIDI: finding a SoundFont, starting an
offline synth (the WAV output renders its samples) and playing a mido message on it. Where FluidSynth,
a SoundFont or an audio device is missing, :class:`SynthUnavailable` says which in one line, with the fix.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import sys
from pathlib import Path
from typing import Sequence

import mido

from outputs.c_stderr import stderr_of_c_libraries

logger = logging.getLogger(__name__)

SAMPLE_RATE = 44100
# FluidSynth's own default (0.2) leaves a single piano note near -32 dBFS; 0.8 is loud enough to
# listen to and still leaves room for dense chords before clipping.
GAIN = 0.8
# Where systems keep General MIDI SoundFonts, after the one libfluidsynth was built to use:
# Debian/Ubuntu (fluid-soundfont-gm, timgm6mb-soundfont), Arch/Fedora, Homebrew.
SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3", "/usr/share/soundfonts",
                  "/usr/local/share/soundfonts", "/opt/homebrew/share/soundfonts",
                  "/opt/homebrew/share/fluid-synth/sf2", "/usr/local/share/fluid-synth/sf2")
PREFERRED_SOUNDFONTS = ("default-GM.sf2", "default-GM.sf3", "FluidR3_GM.sf2", "FluidR3_GM.sf3",
                        "TimGM6mb.sf2", "default.sf2")
INSTALL_FLUIDSYNTH = ("apt-get install libfluidsynth3 (Debian/Ubuntu) or brew install fluid-synth (macOS), "
                      "then pip install pyfluidsynth")
INSTALL_SOUNDFONT = ("apt-get install fluid-soundfont-gm (Debian/Ubuntu), or set MIDI_SOUNDFONT to a "
                     "General MIDI .sf2 file")


class SynthUnavailable(Exception):
    """FluidSynth, a SoundFont or an audio device is missing; the message says which and how to fix it."""


def _fluidsynth():
    try:
        import fluidsynth
    except (ImportError, OSError) as exc:
        raise SynthUnavailable(f"FluidSynth is not installed ({exc}): {INSTALL_FLUIDSYNTH}") from None
    return fluidsynth


def _library_default_soundfont(fluidsynth, settings) -> str | None:
    """The SoundFont libfluidsynth was built to load (Debian: /usr/share/sounds/sf3/default-GM.sf3)."""
    value = ctypes.create_string_buffer(4096)
    found = fluidsynth.fluid_settings_copystr(settings, b"synth.default-soundfont", value, len(value))
    if found != fluidsynth.FLUIDSETTING_EXISTS:
        return None
    return value.value.decode() or None


def find_soundfont(library_default: str | None = None, search_dirs: tuple[str, ...] = SOUNDFONT_DIRS) -> Path:
    """The first SoundFont that exists: the library's default, then the usual names, then any in the usual places."""
    candidates = [Path(library_default)] if library_default else []
    for directory in map(Path, search_dirs):
        candidates += [directory / name for name in PREFERRED_SOUNDFONTS]
        if directory.is_dir():
            candidates += sorted(directory.glob("*.sf[23]"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise SynthUnavailable(f"no General MIDI SoundFont in {', '.join(search_dirs)}: {INSTALL_SOUNDFONT}")


def new_synth(soundfont: str | None):
    """A FluidSynth synth with a General MIDI SoundFont loaded on every channel (drums on channel 10).

    ``soundfont`` is MIDI_SOUNDFONT; None looks where the system keeps them.
    """
    fluidsynth = _fluidsynth()
    synth = fluidsynth.Synth(gain=GAIN, samplerate=SAMPLE_RATE)
    try:
        path = Path(soundfont) if soundfont else find_soundfont(_library_default_soundfont(fluidsynth, synth.settings))
        if not path.is_file():
            raise SynthUnavailable(f"MIDI_SOUNDFONT={soundfont} does not exist: {INSTALL_SOUNDFONT}")
        if synth.sfload(str(path), 1) == fluidsynth.FLUID_FAILED:
            raise SynthUnavailable(f"FluidSynth cannot load the SoundFont {path}: {INSTALL_SOUNDFONT}")
        # The first render loads the SoundFont's samples (~0.2 s here); do it now, not on the first note.
        synth.get_samples(64)
    except BaseException:
        synth.delete()
        raise
    logger.info("synth: FluidSynth with SoundFont %s", path)
    return synth


@functools.cache
def _pressure_functions(fluidsynth):
    """Channel and key pressure, which pyfluidsynth's Synth does not wrap."""
    args = (("synth", ctypes.c_void_p, 1), ("chan", ctypes.c_int, 1))
    channel = fluidsynth.cfunc("fluid_synth_channel_pressure", ctypes.c_int, *args, ("val", ctypes.c_int, 1))
    key = fluidsynth.cfunc("fluid_synth_key_pressure", ctypes.c_int, *args, ("key", ctypes.c_int, 1),
                           ("val", ctypes.c_int, 1))
    return channel, key


def play(synth, message: mido.Message) -> None:
    """Play one channel voice message on ``synth``."""
    kind, channel = message.type, getattr(message, "channel", 0)
    if kind == "note_on":
        synth.noteon(channel, message.note, message.velocity)
    elif kind == "note_off":
        synth.noteoff(channel, message.note)
    elif kind == "control_change":
        synth.cc(channel, message.control, message.value)
    elif kind == "program_change":
        synth.program_change(channel, message.program)
    elif kind == "pitchwheel":
        synth.pitch_bend(channel, message.pitch)
    elif kind == "aftertouch":
        _pressure_functions(_fluidsynth())[0](synth.synth, channel, message.value)
    elif kind == "polytouch":
        _pressure_functions(_fluidsynth())[1](synth.synth, channel, message.note, message.value)


class SynthOutput:
    """Plays every message on FluidSynth through the audio driver (the platform's default unless ``driver``);
    a sink for outputs.threaded.ThreadedOutput: a chord of nine note-ons took FluidSynth 80 µs here, time
    the port's next note would wait for on the event loop."""

    def __init__(self, soundfont: str | None, driver: str | None = None, device: str | None = None) -> None:
        fluidsynth = _fluidsynth()
        self.synth = new_synth(soundfont)
        try:
            if driver:
                self.synth.setting("audio.driver", driver)
            driver = self.synth.get_setting("audio.driver")
            if device:
                self.synth.setting(f"audio.{driver}.device", device)
            with stderr_of_c_libraries() as complaints:
                self.synth.audio_driver = fluidsynth.new_fluid_audio_driver(self.synth.settings, self.synth.synth)
            if not self.synth.audio_driver:
                said = ([line for line in complaints if line.startswith("fluidsynth:")]
                        or complaints or ["no reason given"])
                raise SynthUnavailable(
                    f"no audio device for the synth: FluidSynth's {driver} driver failed ({said[-1].strip()}); "
                    "connect a sound card or start an audio server, or record instead with MIDI_OUTPUT=wav:PATH")
        except BaseException:
            self.synth.delete()
            raise
        if complaints:
            print("\n".join(complaints), file=sys.stderr, flush=True)
        logger.info("playing through the built-in synth on FluidSynth's %s audio driver", driver)

    def play(self, messages: Sequence[mido.Message], at: float) -> None:
        for message in messages:
            play(self.synth, message)

    def song_ended(self, still_playing: bool, at: float) -> None:
        pass

    def close(self) -> None:
        self.synth.delete()
