"""The ``log`` output: note names and octaves on the console, as the original consumer printed them.

It runs on a thread of its own (outputs/threaded.py): a write to a terminal or a pipe can block for as
long as its reader takes, and printing on the event loop put 10 ms p99 of timing error on the port.
"""
from __future__ import annotations

import sys
from typing import Sequence, TextIO

import mido

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(note: int) -> str:
    """Scientific pitch notation: 60 is C4."""
    return f"{NOTE_NAMES[note % 12]}{note // 12 - 1}"


def describe(message: mido.Message) -> str:
    if message.type in ("note_on", "note_off"):
        state = "on" if message.type == "note_on" and message.velocity else "off"
        return f"ch{message.channel + 1:<2} {note_name(message.note):<4} {state:<3} vel {message.velocity}"
    return f"ch{message.channel + 1:<2} {message}"


class ConsoleOutput:
    """A line per message on ``stream`` (the process's standard output); a sink for outputs.threaded.ThreadedOutput."""

    def __init__(self, stream: TextIO | None = None) -> None:
        # Looked up when opened, not when this module was imported: Faust replaces sys.stdout meanwhile.
        self.stream = sys.__stdout__ if stream is None else stream

    def play(self, messages: Sequence[mido.Message], at: float) -> None:
        self.stream.write("".join(describe(message) + "\n" for message in messages))
        self.stream.flush()

    def song_ended(self, still_playing: bool, at: float) -> None:
        pass

    def close(self) -> None:
        self.stream.flush()
