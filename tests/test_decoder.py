"""playback/decoder.py: a value within the worker's limits becomes events; outside them, a problem."""
from __future__ import annotations

import pytest

from models.midi_event import InvalidEvent
from playback.decoder import RecordDecoder
from tests.topic_values import song_record


def test_a_value_over_the_size_limit_is_refused_unparsed():
    decoder = RecordDecoder(max_record_bytes=100)

    with pytest.raises(InvalidEvent, match="over the limit of 100 \\(MIDI_MAX_RECORD_BYTES\\)"):
        decoder.decode(b"{" + b" " * 200)


def test_an_event_due_past_the_longest_song_is_left_out_and_its_neighbours_kept():
    decoder = RecordDecoder(max_song_seconds=60)

    events, problems = decoder.decode(song_record("s", 0, [(1.0, [0x90, 60, 1]), (61.0, [0x90, 61, 1]),
                                                          (59.0, [0x90, 62, 1])]))

    assert [event.seq for event in events] == [0, 2]
    assert [str(problem) for problem in problems] == [
        "seq 1 of s plays 61 s after the song's start, past MIDI_MAX_SONG_SECONDS (60)"]
