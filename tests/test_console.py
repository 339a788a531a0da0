"""outputs/console.py: note names in scientific pitch notation and one readable line per message."""
from __future__ import annotations

import io

import mido
import pytest

from outputs.console import ConsoleOutput, describe, note_name


@pytest.mark.parametrize("note, name", [
    (60, "C4"), (61, "C#4"), (69, "A4"), (71, "B4"), (72, "C5"), (59, "B3"), (0, "C-1"), (127, "G9"), (21, "A0"),
])
def test_note_name_is_scientific_pitch_with_middle_c_as_c4(note, name):
    assert note_name(note) == name


def test_every_note_has_a_distinct_name():
    assert len({note_name(note) for note in range(128)}) == 128


@pytest.mark.parametrize("message, line", [
    (mido.Message("note_on", channel=0, note=60, velocity=90), "ch1  C4   on  vel 90"),
    (mido.Message("note_off", channel=15, note=61, velocity=10), "ch16 C#4  off vel 10"),
    # A note-on with velocity 0 is how most files end a note.
    (mido.Message("note_on", channel=9, note=38, velocity=0), "ch10 D2   off vel 0"),
])
def test_notes_are_described_by_channel_name_state_and_velocity(message, line):
    assert describe(message) == line


def test_other_messages_show_their_channel_counted_from_one_and_the_message():
    message = mido.Message("control_change", channel=2, control=64, value=127)

    assert describe(message) == f"ch3  {message}"


def test_console_output_prints_one_line_per_message():
    stream = io.StringIO()
    console = ConsoleOutput(stream)
    console.play([mido.Message("note_on", note=60, velocity=1), mido.Message("pitchwheel", channel=1, pitch=100)],
                 at=0.0)
    console.close()

    assert stream.getvalue().splitlines() == ["ch1  C4   on  vel 1", "ch2  pitchwheel channel=1 pitch=100 time=0"]
