"""playback/song_book.py: which arriving events are to be played, and the songs that ended."""
from __future__ import annotations

from models.midi_event import MidiEvent
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
