"""The ``log`` output: note names and octaves on the console, as the original consumer printed them."""
from __future__ import annotations

import sys
from typing import TextIO

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
    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream

    def send(self, message: mido.Message) -> None:
        print(describe(message), file=self.stream, flush=True)

    def close(self) -> None:
        self.stream.flush()
