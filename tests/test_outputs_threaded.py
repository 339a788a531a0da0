"""outputs/threaded.py: an output on its own thread gets every chord with its instant, in order; one that
fails or falls behind is reported once and never holds up the ports or the other outputs."""
from __future__ import annotations

import logging
import threading

import mido

from outputs import OutputSet, ThreadedOutput, threaded


def note(number: int) -> mido.Message:
    return mido.Message("note_on", note=number, velocity=90)


class Port:
    def __init__(self) -> None:
        self.received: list[int] = []

    def send(self, message: mido.Message) -> None:
        self.received.append(message.note)


class Kept:
    """A sink keeping what it was handed, with the instants; ``gate`` (when given) holds its thread."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.entered = threading.Event()
        self.played: list[tuple[list[int], float]] = []
        self.ended: list[tuple[bool, float]] = []
        self.closed = False

    def play(self, messages, at: float) -> None:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait()
        self.played.append(([message.note for message in messages if hasattr(message, "note")], at))

    def song_ended(self, still_playing: bool, at: float) -> None:
        self.ended.append((still_playing, at))

    def close(self) -> None:
        self.closed = True


class Broken(Kept):
    def play(self, messages, at: float) -> None:
        raise OSError("No space left on device")


def test_each_chord_reaches_the_thread_with_the_instant_it_was_played_and_the_song_end_after_it():
    instants = iter([10.0, 11.0, 12.0, 13.0, 14.0])
    sink = Kept()
    with ThreadedOutput(sink, "kept") as output:
        output_set = OutputSet([], [output], clock=lambda: next(instants))
        output_set.send_together([(note(60), "a"), (note(64), "a")])
        output_set.send(note(67), "a")
        output_set.release("a")
    assert sink.played[:2] == [([60, 64], 10.0), ([67], 11.0)]
    # The release (note-offs, then All Notes Off and All Sound Off), then the song's end.
    assert sorted(sink.played[2][0]) == [60, 64, 67] and sink.played[2][1] == 12.0
    assert sink.ended == [(False, 13.0)]
    assert sink.closed


def test_an_output_that_falls_behind_holds_up_neither_the_port_nor_the_others():
    gate = threading.Event()
    slow, other, port = Kept(gate), Kept(), Port()
    with ThreadedOutput(slow, "slow") as slow_output, ThreadedOutput(other, "other") as other_output:
        output_set = OutputSet([port], [slow_output, other_output])
        for number in range(20):
            output_set.send(note(40 + number), "song")
        # The slow output's thread is still held on its first chord, and everything else went on.
        assert port.received == list(range(40, 60))
        assert slow.played == []
        gate.set()
    assert [notes for notes, _ in slow.played] == [[40 + number] for number in range(20)]
    assert [notes for notes, _ in other.played] == [[40 + number] for number in range(20)]


def test_a_failing_output_is_reported_once_and_the_others_get_everything(caplog):
    broken, other, port = Broken(), Kept(), Port()
    with caplog.at_level(logging.INFO, logger="outputs"):
        with ThreadedOutput(broken, "wav:full.wav") as broken_output, ThreadedOutput(other, "other") as other_output:
            output_set = OutputSet([port], [broken_output, other_output])
            for number in range(10):
                output_set.send(note(60 + number), "song")
    failures = [record for record in caplog.records if "wav:full.wav failed" in record.getMessage()]
    assert len(failures) == 1 and "No space left on device" in failures[0].getMessage()
    assert "wav:full.wav: 10 hand-offs failed" in caplog.text and "left out" not in caplog.text
    assert port.received == list(range(60, 70)) and len(other.played) == 10
    assert broken.closed, "a failing output is still finalised"


def test_an_output_too_far_behind_has_the_newest_chords_left_out_and_says_so_once(monkeypatch, caplog):
    monkeypatch.setattr(threaded, "MAX_BACKLOG", 3)
    gate = threading.Event()
    stuck = Kept(gate)
    with ThreadedOutput(stuck, "log") as output:
        output_set = OutputSet([], [output])
        output_set.send(note(60), "song")
        assert stuck.entered.wait(5)
        for number in range(1, 10):
            output_set.send(note(60 + number), "song")
        gate.set()
    # The first chord was taken by the thread (held at the gate), three more waited, six were left out.
    assert [notes for notes, _ in stuck.played] == [[60], [61], [62], [63]]
    assert sum("fell 3 chords behind" in record.getMessage() for record in caplog.records) == 1
    assert "log: 6 messages were left out while it fell behind" in caplog.text
