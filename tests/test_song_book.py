"""playback/song_book.py: which arriving events are to be played, and the songs that ended."""
from __future__ import annotations

import logging
import time

from models.midi_event import MidiEvent
from models.resume_point import ResumePoint
from playback.resume import ResumePoints
from playback.song_book import SongBook


def event(song: str, seq: int, end: bool = False):
    return MidiEvent.wire(song, seq, 0.0, [] if end else [0x90, 60, 1], 0.0, end)


def test_a_song_resumes_after_what_an_earlier_worker_played_and_copies_are_not_played():
    book = SongBook(ResumePoints({"s": 4}))

    assert book.arrive(event("s", 3)) is None, "played before the kill"
    stats = book.arrive(event("s", 5))
    assert stats is not None and stats.duplicates == 1
    assert book.arrive(event("s", 5)) is None and stats.duplicates == 2
    assert book.arrive(event("s", 6, end=True)) is stats and stats.expected == 6


def test_the_end_of_a_song_an_earlier_worker_finished_closes_it_here_too_and_later_copies_are_counted_apart():
    book = SongBook(ResumePoints({"s": 6}))

    assert book.arrive(event("s", 6, end=True)) is None
    assert list(book.finished) == ["s"] and book.songs == {}
    assert book.arrive(event("s", 2)) is None and book.after_end == 1


def test_a_new_song_is_announced_once():
    started = []
    book = SongBook(ResumePoints({}), on_new_song=lambda: started.append(1))

    book.arrive(event("a", 0))
    book.arrive(event("a", 1))
    book.arrive(event("b", 0))
    assert started == [1, 1]


def test_a_song_another_worker_played_reports_its_handover_at_the_first_event_played_here(caplog):
    caplog.set_level(logging.INFO)
    left_at = time.time() - 0.8
    book = SongBook(ResumePoints({"s": ResumePoint(seq=4, played_at=left_at, worker="there:2")}, worker="here:1"))

    stats = book.arrive(event("s", 5))
    assert stats.handover_ms is None, "nothing played here yet"
    played_at = time.time()
    stats.played([0x90, 60, 1], played_at, sent_at=played_at, target=None)
    stats.played([0x90, 61, 1], played_at + 1.0, sent_at=played_at, target=None)

    assert stats.handover_ms == round((played_at - left_at) * 1000, 1)
    assert 750 < stats.handover_ms < 2000
    summary = stats.summary()
    assert (summary["handover_ms"], summary["handover_from"]) == (stats.handover_ms, "there:2")
    [line] = [record.getMessage() for record in caplog.records if "handover" in record.getMessage()]
    assert line.startswith(f"handover of s from there:2: {stats.handover_ms:.0f} ms")


def test_a_song_this_worker_played_before_or_never_reports_no_handover():
    book = SongBook(ResumePoints({"mine": ResumePoint(seq=2, played_at=1.0, worker="here:1"), "old": 2},
                                 worker="here:1"))
    for song in ("mine", "old", "new"):
        stats = book.arrive(event(song, 3))
        stats.played([0x90, 60, 1], time.time(), sent_at=time.time(), target=None)
        assert stats.summary()["handover_ms"] is None, song
    assert book.songs["old"].handover_from is None and book.songs["mine"].handover_from is None
