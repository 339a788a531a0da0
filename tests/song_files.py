"""MIDI files generated for tests: every kind of channel voice message, chords and fast runs."""
from __future__ import annotations

import struct
from pathlib import Path

import mido

TICKS_PER_BEAT = 960
TEMPO = 500_000  # 120 bpm: one tick is 1/1920 s

# A real piece by others, kept in the tests (licence beside it): 16 s of Mozart, 5 tracks after the
# conductor's, one channel each, chords of up to 9 notes.
K525_SHORT = Path(__file__).resolve().parent / "fixtures" / "k525short.mid"


def seconds_to_ticks(seconds: float) -> int:
    return round(seconds * 1_000_000 * TICKS_PER_BEAT / TEMPO)


def write_song(path: Path, timeline: list[tuple[float, list[int]]]) -> list[tuple[float, list[int]]]:
    """Write ``(seconds, message bytes)`` pairs as a one-track MIDI file; returns them as the score."""
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=TEMPO, time=0)])
    previous = 0
    for seconds, data in sorted(timeline, key=lambda item: item[0]):
        ticks = seconds_to_ticks(seconds)
        track.append(mido.Message.from_bytes(data, time=ticks - previous))
        previous = ticks
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    midi.save(path)
    return [(seconds_to_ticks(t) * TEMPO / 1_000_000 / TICKS_PER_BEAT, data)
            for t, data in sorted(timeline, key=lambda item: item[0])]


def every_kind_timeline(seconds: float = 4.0, spacing: float = 0.05) -> list[tuple[float, list[int]]]:
    """Program change, pedal, chords, pitch bend and both aftertouches, on two channels, spaced apart."""
    timeline: list[tuple[float, list[int]]] = [(0.0, [0xC0, 0]), (spacing, [0xC1, 40]), (2 * spacing, [0xB0, 64, 127])]
    at = 3 * spacing
    note = 60
    while at < seconds:
        chord = [note, note + 4, note + 7]
        for offset, pitch in enumerate(chord):
            timeline.append((at + offset * spacing, [0x90, pitch, 90]))
        timeline.append((at + 3 * spacing, [0xE1, 0, 0x50]))
        timeline.append((at + 4 * spacing, [0xD0, 40]))
        timeline.append((at + 5 * spacing, [0xA0, chord[0], 30]))
        for offset, pitch in enumerate(chord):
            timeline.append((at + (6 + offset) * spacing, [0x80, pitch, 0]))
        timeline.append((at + 9 * spacing, [0x91, note - 12, 70]))
        timeline.append((at + 10 * spacing, [0x91, note - 12, 0]))
        at += 11 * spacing
        note = 48 + (note + 5) % 36
    timeline.append((at, [0xB0, 64, 0]))
    return timeline


def mido_score(path: Path) -> list[tuple[float, list[int]]]:
    """A file's channel messages with their times as mido's own merged playback yields them: the
    reference, independent of the app's reader, for what a port must receive."""
    score, now = [], 0.0
    for message in mido.MidiFile(path):
        now += message.time
        if not message.is_meta and message.type != "sysex":
            score.append((now, message.bytes()))
    return score


def running_status_flood(path: Path, size: int) -> int:
    """Write a one-track file of at most ``size`` bytes that is nothing but program changes at tick 0, each
    after the first in 2 bytes (a delta and a data byte, under running status): the most messages
    a file of that size can hold. Returns how many it holds."""
    count = (size - 14 - 8 - 3 - 4) // 2 + 1
    body = b"\x00\xc0\x00" + b"\x00\x01" * (count - 1) + b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">Ihhh", 6, 0, 1, TICKS_PER_BEAT)
    path.write_bytes(header + b"MTrk" + struct.pack(">I", len(body)) + body)
    return count
