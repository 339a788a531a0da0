"""Where played events go: ports, the console, nowhere; always left silent when playing stops."""
from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager
from typing import Iterator, Protocol

import mido

from outputs.console import ConsoleOutput
from outputs.port import PortError, open_port
from settings import Settings

__all__ = ["Output", "OutputSet", "PortError", "SoundingNotes", "open_outputs"]

logger = logging.getLogger(__name__)

SUSTAIN_PEDAL = 64
ALL_SOUND_OFF = 120
ALL_NOTES_OFF = 123


class Output(Protocol):
    def send(self, message: mido.Message) -> None: ...


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
        messages += [mido.Message("control_change", channel=ch, control=SUSTAIN_PEDAL, value=0) for ch in sorted(self.pedals)]
        return messages


class OutputSet:
    """Sends each message to every output and remembers, per song, what is sounding."""

    def __init__(self, outputs: list[Output]) -> None:
        self.outputs = outputs
        self.sounding: dict[str, SoundingNotes] = {}

    def send(self, message: mido.Message, song: str = "") -> None:
        for output in self.outputs:
            output.send(message)
        sounding = self.sounding.get(song)
        if sounding is None:
            sounding = self.sounding[song] = SoundingNotes()
        sounding.track(message)

    def _send_all(self, messages: list[mido.Message]) -> None:
        for message in messages:
            for output in self.outputs:
                output.send(message)

    def release(self, song: str) -> None:
        """Release what ``song`` left sounding: note-offs, pedal up, All Notes Off and All Sound Off
        on the channels it used."""
        sounding = self.sounding.pop(song, None)
        if sounding is not None:
            self._send_all(sounding.note_offs() + channels_off(sounding.channels))

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
        for kind in settings.outputs:
            if kind == "port":
                port = open_port(settings.output_port, settings.virtual_port)
                if port is None:
                    logger.warning("no MIDI output port exists; printing notes instead (MIDI_OUTPUT=null measures only)")
                    outputs.append(ConsoleOutput())
                else:
                    stack.callback(port.close)
                    outputs.append(port)
            elif kind == "log":
                outputs.append(ConsoleOutput())
        output_set = OutputSet(outputs)
        try:
            yield output_set
        finally:
            output_set.silence()
