"""producer/passes.py: between songs, produce-midi reads the next file and collects its garbage at
ordinary priority, then keeps time at real-time priority again."""
from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pytest

from producer.passes import read_between_songs
from producer.songs import SongError, read_song
from playback.realtime import take_realtime_priority
from tests.test_realtime import in_a_thread, needs_root

FIXTURES = Path(__file__).parent / "fixtures"


@needs_root
def test_produce_midi_reads_each_song_at_ordinary_priority_and_keeps_time_again_after(tmp_path):
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"not a MIDI file")
    read = partial(read_song, max_file_bytes=10_000_000, max_song_seconds=3600.0, max_song_events=1_000_000)

    def read_both():
        take_realtime_priority(10)
        policies = []

        def reading(path: Path):
            policies.append(os.sched_getscheduler(0))
            return read(path)

        song = read_between_songs(reading, FIXTURES / "k525short.mid")
        with pytest.raises(SongError):
            read_between_songs(reading, broken)
        return len(song.events), policies, os.sched_getscheduler(0)

    events, policies, after = in_a_thread(read_both)

    assert events > 0
    assert policies == [os.SCHED_OTHER, os.SCHED_OTHER]
    assert after == os.SCHED_FIFO
