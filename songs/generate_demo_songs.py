"""Writes the demo songs in this folder from note data: public-domain tunes, nothing copied.

    python songs/generate_demo_songs.py

Each tune is a list of (note names, beats); a tuple of names is a chord. Ode to Joy is played on a
piano with the sustain pedal, Twinkle Twinkle on a music box, Frère Jacques as a two-voice round.
"""
from __future__ import annotations

from pathlib import Path

import mido

TICKS_PER_BEAT = 480
NOTE_NUMBERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def note_number(name: str) -> int:
    """'C4' is 60, 'F#3' is 54."""
    pitch, octave = name[:-1], int(name[-1])
    return 12 * (octave + 1) + NOTE_NUMBERS[pitch[0]] + pitch.count("#") - pitch.count("b")


def melody_track(tune, *, channel: int, program: int, velocity: int = 90, pedal_every: int = 0,
                 start_beats: float = 0) -> mido.MidiTrack:
    """One track playing ``tune``; with ``pedal_every`` the sustain pedal is re-pressed every N notes."""
    track = mido.MidiTrack()
    track.append(mido.Message("program_change", channel=channel, program=program, time=0))
    pending = int(start_beats * TICKS_PER_BEAT)
    for index, (names, beats) in enumerate(tune):
        names = (names,) if isinstance(names, str) else names
        if pedal_every and index % pedal_every == 0:
            track.append(mido.Message("control_change", channel=channel, control=64, value=0, time=pending))
            track.append(mido.Message("control_change", channel=channel, control=64, value=127, time=0))
            pending = 0
        for position, name in enumerate(names):
            track.append(mido.Message("note_on", channel=channel, note=note_number(name), velocity=velocity,
                                      time=pending if position == 0 else 0))
        pending = 0
        length = int(beats * TICKS_PER_BEAT * 0.9)
        for position, name in enumerate(names):
            track.append(mido.Message("note_off", channel=channel, note=note_number(name), velocity=0,
                                      time=length if position == 0 else 0))
        pending = int(beats * TICKS_PER_BEAT) - length
    if pedal_every:
        track.append(mido.Message("control_change", channel=channel, control=64, value=0, time=pending))
    return track


def song(tracks, bpm: int) -> mido.MidiFile:
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    tempo = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
    midi.tracks.append(tempo)
    midi.tracks.extend(tracks)
    return midi


ODE_TO_JOY = [
    (("E4", "C3"), 1), ("E4", 1), ("F4", 1), ("G4", 1), (("G4", "G2"), 1), ("F4", 1), ("E4", 1), ("D4", 1),
    (("C4", "A2"), 1), ("C4", 1), ("D4", 1), ("E4", 1), (("E4", "G2"), 1.5), ("D4", 0.5), ("D4", 2),
    (("E4", "C3"), 1), ("E4", 1), ("F4", 1), ("G4", 1), (("G4", "G2"), 1), ("F4", 1), ("E4", 1), ("D4", 1),
    (("C4", "A2"), 1), ("C4", 1), ("D4", 1), ("E4", 1), (("D4", "G2"), 1.5), ("C4", 0.5), (("C4", "E4", "C3"), 2),
]
TWINKLE = [
    ("C5", 1), ("C5", 1), ("G5", 1), ("G5", 1), ("A5", 1), ("A5", 1), ("G5", 2),
    ("F5", 1), ("F5", 1), ("E5", 1), ("E5", 1), ("D5", 1), ("D5", 1), ("C5", 2),
]
FRERE_JACQUES = [
    ("F4", 1), ("G4", 1), ("A4", 1), ("F4", 1), ("F4", 1), ("G4", 1), ("A4", 1), ("F4", 1),
    ("A4", 1), ("Bb4", 1), ("C5", 2), ("A4", 1), ("Bb4", 1), ("C5", 2),
    ("C5", 0.5), ("D5", 0.5), ("C5", 0.5), ("Bb4", 0.5), ("A4", 1), ("F4", 1),
    ("C5", 0.5), ("D5", 0.5), ("C5", 0.5), ("Bb4", 0.5), ("A4", 1), ("F4", 1),
    ("F4", 1), ("C4", 1), ("F4", 2), ("F4", 1), ("C4", 1), ("F4", 2),
]

DEMO_SONGS = {
    "ode_to_joy.mid": song([melody_track(ODE_TO_JOY, channel=0, program=0, pedal_every=4)], bpm=160),
    "twinkle_twinkle.mid": song([melody_track(TWINKLE, channel=1, program=10, velocity=80)], bpm=150),
    "frere_jacques_round.mid": song([
        melody_track(FRERE_JACQUES, channel=2, program=73),
        melody_track(FRERE_JACQUES, channel=3, program=71, velocity=70, start_beats=8),
    ], bpm=200),
}


def main() -> None:
    folder = Path(__file__).parent
    for name, midi in DEMO_SONGS.items():
        midi.save(folder / name)
        print(f"wrote {folder / name}: {midi.length:.1f} s")


if __name__ == "__main__":
    main()
