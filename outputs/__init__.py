"""Where played events go: ports, the built-in synth, WAV and MIDI files, the console, nowhere; always left
silent when playing stops, and files finalised at each song end."""
from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager
from typing import Iterator, Protocol

import mido

from outputs.console import ConsoleOutput
from outputs.midi_recording import MidiRecording
from outputs.port import PortError, open_port
from outputs.synth import SynthOutput, SynthUnavailable
from outputs.wav import WavOutput
from config.settings import Settings

__all__ = ["Output", "OutputSet", "PortError", "Recording", "SoundingNotes", "SynthUnavailable", "open_outputs"]

logger = logging.getLogger(__name__)

SUSTAIN_PEDAL = 64
ALL_SOUND_OFF = 120
ALL_NOTES_OFF = 123
# Where ``port`` records the performance when there is neither a MIDI port nor an audio device.
FALLBACK_WAV = "performance.wav"


class Output(Protocol):
    def send(self, message: mido.Message) -> None: ...


class Recording(Output, Protocol):
    def song_ended(self, still_playing: bool) -> None:
        """A song's releases were sent; make the file complete. ``still_playing``: another song is sounding."""


class SoundingNotes:
    """Which notes are held and which channels have the sustain pedal down, to release them later."""

    def __init__(self) -> None:
        self.notes: set[tuple[int, int]] = set()
        self.pedals: set[int] = set()
        self.channels: set[int] = set()

    def track(self, message: mido.Message) -> None:
        kind = message.type
        if kind == "note_on" and message.velocity:
            self.notes.add((message.channel, message.note))
        elif kind in ("note_on", "note_off"):
            self.notes.discard((message.channel, message.note))
        elif kind == "control_change" and message.control == SUSTAIN_PEDAL:
            (self.pedals.add if message.value >= 64 else self.pedals.discard)(message.channel)
        if hasattr(message, "channel"):
            self.channels.add(message.channel)

    def note_offs(self) -> list[mido.Message]:
        """A note-off for each held note, then pedal up where it is down."""
        messages = [mido.Message("note_off", channel=ch, note=note) for ch, note in sorted(self.notes)]
        messages += [mido.Message("control_change", channel=ch, control=SUSTAIN_PEDAL, value=0)
                     for ch in sorted(self.pedals)]
        return messages


class OutputSet:
    """Sends each message to every output and remembers, per song, what is sounding."""

    def __init__(self, outputs: list[Output], recordings: list[Recording] = ()) -> None:
        self.outputs = outputs
        self.recordings = list(recordings)
        self.sounding: dict[str, SoundingNotes] = {}

    def send(self, message: mido.Message, song: str = "") -> None:
        self.send_together([(message, song)])

    def send_together(self, messages: list[tuple[mido.Message, str]]) -> None:
        """Send several messages (a chord), each with its song, back to back on each output."""
        # Tracked before sending: if an output raises, the outputs before it already sound the notes,
        # and the release that follows the crash must reach them.
        for message, song in messages:
            sounding = self.sounding.get(song)
            if sounding is None:
                sounding = self.sounding[song] = SoundingNotes()
            sounding.track(message)
        for output in self.outputs:
            for message, _ in messages:
                output.send(message)

    def _send_all(self, messages: list[mido.Message]) -> None:
        """Send every message to every output; an output that fails is logged, not left to stop the
        releases reaching the others."""
        for output in self.outputs:
            try:
                for message in messages:
                    output.send(message)
            except Exception:
                logger.exception("could not release the notes sounding on %s", output)

    def release(self, song: str) -> None:
        """Release what ``song`` left sounding: note-offs, pedal up, All Notes Off and All Sound Off
        on the channels it used."""
        sounding = self.sounding.pop(song, None)
        if sounding is not None:
            self._send_all(sounding.note_offs() + channels_off(sounding.channels))
            for recording in self.recordings:
                recording.song_ended(still_playing=bool(self.sounding))

    def silence(self) -> None:
        """Release every song still sounding."""
        for song in list(self.sounding):
            self.release(song)


def channels_off(channels: set[int]) -> list[mido.Message]:
    return [
        mido.Message("control_change", channel=channel, control=control, value=0)
        for channel in sorted(channels)
        for control in (ALL_NOTES_OFF, ALL_SOUND_OFF)
    ]


@contextmanager
def open_outputs(settings: Settings) -> Iterator[OutputSet]:
    """Open every output in ``settings.outputs``; on exit, silence them and close them."""
    with ExitStack() as stack:
        outputs: list[Output] = []
        for entry in settings.outputs:
            kind, _, path = entry.partition(":")
            if kind == "port":
                port = open_port(settings.output_port, settings.virtual_port)
                if port is None:
                    outputs.append(open_instead_of_port(settings, stack))
                else:
                    stack.callback(port.close)
                    outputs.append(port)
            elif kind == "log":
                outputs.append(ConsoleOutput())
            elif kind == "synth":
                outputs.append(stack.enter_context(SynthOutput(settings.soundfont)))
            elif kind == "wav":
                outputs.append(stack.enter_context(WavOutput(path, settings.soundfont)))
            elif kind == "mid":
                outputs.append(stack.enter_context(MidiRecording(path)))
        recordings = [output for output in outputs if isinstance(output, (WavOutput, MidiRecording))]
        # Files last, so rendering a WAV never delays what a port or the synth plays.
        live = [output for output in outputs if output not in recordings]
        output_set = OutputSet(live + recordings, recordings)
        try:
            yield output_set
        finally:
            output_set.silence()


def open_instead_of_port(settings: Settings, stack: ExitStack) -> Output:
    """No MIDI port exists: the built-in synth, else a WAV file of the performance, else notes on the console."""
    try:
        return stack.enter_context(SynthOutput(settings.soundfont))
    except SynthUnavailable as exc:
        no_synth = exc
    try:
        wav = stack.enter_context(WavOutput(FALLBACK_WAV, settings.soundfont))
    except SynthUnavailable as exc:
        logger.warning("no MIDI output port exists and %s; printing notes instead (MIDI_OUTPUT=null measures only)",
                       exc)
        return ConsoleOutput()
    logger.warning("no MIDI output port exists and %s; writing what is played to %s", no_synth, wav.path.resolve())
    return wav
