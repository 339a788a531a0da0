"""Where played events go: ports, the built-in synth, WAV and MIDI files, the console, nowhere; always left
silent when playing stops, and files finalised at each song end.

A port plays on the event loop, as it is the moment of play and costs a system call; in buffered playback,
where each chord's slot is known ahead, the port is opened in a process of its own that sends each chord
at its slot (outputs/port_process.py). Every other output is handed each chord with the instant it was
played and does its work on a thread of its own (outputs/threaded.py), so no output delays a note.
"""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import ExitStack, contextmanager
from typing import Awaitable, Callable, Iterator, Protocol

import mido

from outputs.console import ConsoleOutput
from outputs.midi_recording import MidiRecording
from outputs.port import PortError, open_port
from outputs.port_process import PortProcess, open_port_process
from outputs.synth import SynthOutput, SynthUnavailable
from outputs.threaded import Sink, ThreadedOutput
from outputs.wav import WavOutput
from config.settings import PlaybackMode, Settings

__all__ = ["Output", "OutputSet", "PortError", "SoundingNotes", "SynthUnavailable", "ThreadedOutput",
           "open_outputs"]

logger = logging.getLogger(__name__)

SUSTAIN_PEDAL = 64
ALL_SOUND_OFF = 120
ALL_NOTES_OFF = 123
# Where ``port`` records the performance when there is neither a MIDI port nor an audio device.
FALLBACK_WAV = "performance.wav"


class Output(Protocol):
    """A MIDI port (mido's BaseOutput), played on the event loop."""

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
        messages += [mido.Message("control_change", channel=ch, control=SUSTAIN_PEDAL, value=0)
                     for ch in sorted(self.pedals)]
        return messages


class OutputSet:
    """Sends each message to every output and remembers, per song, what is sounding.

    ``ports`` are sent each message on the spot; ``threaded`` outputs are handed each chord with
    ``clock()`` at the moment it was played."""

    def __init__(self, ports: list[Output], threaded: list[ThreadedOutput] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ports = list(ports)
        self.threaded = list(threaded)
        # All of them, for whoever asks whether there is any (the player, before building messages).
        self.outputs = [*self.ports, *self.threaded]
        self.clock = clock
        self.sounding: dict[str, SoundingNotes] = {}
        # Ports that send at a slot themselves (play_at), and the chords handed to them not yet reported
        # sent, per song: a song released meanwhile has them cancelled first.
        self.ports_ahead = [port for port in self.ports if isinstance(port, PortProcess)]
        self.ports_here = [port for port in self.ports if not isinstance(port, PortProcess)]
        self.handed: dict[str, set[tuple[PortProcess, int]]] = {}

    def send(self, message: mido.Message, song: str = "") -> None:
        self.send_together([(message, song)])

    def send_together(self, messages: list[tuple[mido.Message, str]]) -> None:
        """Send several messages (a chord), each with its song, back to back on each port, then hand
        them to the threaded outputs."""
        at = self.clock()
        chord = [message for message, _ in messages]
        try:
            for port in self.ports:
                for message in chord:
                    port.send(message)
        finally:
            # Tracked once sent, so the first message leaves at once (~1 µs a message, 0.1 ms for the
            # 109 at the start of a 13-channel piece); tracked even when a port raised, as the ports
            # before it already sound the notes and the release that follows the crash must reach them.
            self._track(messages)
        for output in self.threaded:
            output.hand_off(chord, at)

    async def play_at(self, messages: list[tuple[mido.Message, str]], slot: float,
                      wait: Callable[[float], Awaitable[None]]) -> float:
        """Play a chord (each message with its song) at ``slot``, a ``time.perf_counter()``, and return
        the ``time.time()`` it was played. Ports in a process of their own are handed it at once and send
        it at the slot themselves; the others are sent it once ``wait(slot)`` returns (a precise wait on
        the event loop: playback/timing.py). The threaded outputs are handed it once played."""
        chord = [message for message, _ in messages]
        # Tracked before it sounds: a release (the song stopped meanwhile) then covers every note of it.
        self._track(messages)
        handed = [(port, *port.play_at(chord, slot)) for port in self.ports_ahead]
        mine = {(port, number) for port, number, _ in handed}
        songs = {song for _, song in messages}
        for song in songs:
            self.handed.setdefault(song, set()).update(mine)
        try:
            at, played_at = None, None
            if self.ports_here or not handed:
                await wait(slot)
                for port in self.ports_here:
                    for message in chord:
                        port.send(message)
                at, played_at = self.clock(), time.time()
            for _, _, played in handed:
                sent_clock, played_at = await played
                # The child's clock is perf_counter; the threaded outputs' is self.clock.
                at = self.clock() - (time.perf_counter() - sent_clock)
        except asyncio.CancelledError:
            for port, number, _ in handed:
                port.cancel(number)
            raise
        finally:
            for song in songs:
                left = self.handed.get(song)
                if left is not None:
                    left -= mine
                    if not left:
                        del self.handed[song]
        for output in self.threaded:
            output.hand_off(chord, at)
        return played_at

    def _track(self, messages: list[tuple[mido.Message, str]]) -> None:
        for message, song in messages:
            sounding = self.sounding.get(song)
            if sounding is None:
                sounding = self.sounding[song] = SoundingNotes()
            sounding.track(message)

    def _send_all(self, messages: list[mido.Message]) -> None:
        """Send every message to every output; a port that fails is logged, not left to stop the
        releases reaching the others."""
        at = self.clock()
        for port in self.ports:
            try:
                for message in messages:
                    port.send(message)
            except PortError as exc:
                # A port whose process is gone (and is being started again) says why in one line.
                logger.error("could not release the notes sounding on %s: %s", port, exc)
            except Exception:
                logger.exception("could not release the notes sounding on %s", port)
        for output in self.threaded:
            output.hand_off(messages, at)

    def release(self, song: str) -> None:
        """Release what ``song`` left sounding: note-offs, pedal up, All Notes Off and All Sound Off
        on the channels it used."""
        # What was handed ahead and has not left yet must not sound after the release.
        for port, number in self.handed.pop(song, ()):
            port.cancel(number)
        sounding = self.sounding.pop(song, None)
        if sounding is not None:
            self._send_all(sounding.note_offs() + channels_off(sounding.channels))
            at = self.clock()
            for output in self.threaded:
                output.song_ended(still_playing=bool(self.sounding), at=at)

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
    """Open every output in ``settings.outputs``; on exit, silence them and close them (the threaded
    ones finish what they were handed and finalise their files)."""
    with ExitStack() as stack:
        ports: list[Output] = []
        threaded: list[ThreadedOutput] = []

        def on_own_thread(sink: Sink, name: str) -> None:
            threaded.append(stack.enter_context(ThreadedOutput(sink, name)))

        for entry in settings.outputs:
            kind, _, path = entry.partition(":")
            if kind == "port":
                # Buffered, each chord's slot is known ahead: a process of its own sends it then.
                opener = (open_port_process if PlaybackMode(settings.playback) is PlaybackMode.BUFFERED
                          else open_port)
                port = opener(settings.output_port, settings.virtual_port)
                if port is None:
                    on_own_thread(*open_instead_of_port(settings))
                else:
                    stack.callback(port.close)
                    ports.append(port)
            elif kind == "log":
                on_own_thread(ConsoleOutput(), "log")
            elif kind == "synth":
                on_own_thread(SynthOutput(settings.soundfont, settings.synth_driver), "synth")
            elif kind == "wav":
                on_own_thread(WavOutput(path, settings.soundfont), entry)
            elif kind == "mid":
                on_own_thread(MidiRecording(path), entry)
        output_set = OutputSet(ports, threaded)
        try:
            yield output_set
        finally:
            output_set.silence()


def open_instead_of_port(settings: Settings) -> tuple[Sink, str]:
    """No MIDI port exists: the built-in synth, else a WAV file of the performance, else notes on the
    console; with the name reports give it."""
    try:
        return SynthOutput(settings.soundfont, settings.synth_driver), "synth"
    except SynthUnavailable as exc:
        no_synth = exc
    try:
        wav = WavOutput(FALLBACK_WAV, settings.soundfont)
    except SynthUnavailable as exc:
        logger.warning("no MIDI output port exists and %s; printing notes instead (MIDI_OUTPUT=null measures only)",
                       exc)
        return ConsoleOutput(), "log"
    logger.warning("no MIDI output port exists and %s; writing what is played to %s", no_synth, wav.path.resolve())
    return wav, f"wav:{FALLBACK_WAV}"
