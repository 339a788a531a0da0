"""playback.player and playback.stats: what gets played, when, and how each song is counted.

The player plays into a real mido port of the recording backend; records are built as produce-midi
builds them.
"""
from __future__ import annotations

import asyncio
import os
import socket
import logging
import time

import math
import statistics

import mido
import numpy as np
import pytest
from hypothesis import given, strategies as st

from config.settings import Settings
from outputs import OutputSet
from playback.player import Player
from playback.stats import SeqsSeen, SongStats, median, percentiles
from harness.processes import SONG_SUMMARY_MARK, parse_summary
from tests.recording_backend import read_recording
from tests.topic_values import end_record, song_record

NOTE = [0x90, 60, 90]


@pytest.fixture
def outputs(recording, monkeypatch):
    monkeypatch.setenv("RECORDING_BACKEND_FILE", str(recording))
    port = mido.Backend("tests.recording_backend", load=True).open_output()
    try:
        yield OutputSet([port])
    finally:
        port.close()


def note(seq: int, score_time: float = 0.0) -> tuple[float, list[int]]:
    return (score_time, [0x90, 60 + seq, 90])


def event(song: str, seq: int, score_time: float = 0.0) -> bytes:
    return song_record(song, seq, [note(seq, score_time)])


def summaries(caplog) -> list[dict]:
    return [parse_summary(record.getMessage()) for record in caplog.records if SONG_SUMMARY_MARK in record.getMessage()]


def played(recording) -> list[list[int]]:
    return [entry["bytes"] for entry in read_recording(recording)] if recording.exists() else []


async def recorded(recording, count: int, timeout: float) -> list[list[int]]:
    """What was played once ``count`` messages are in, or at ``timeout``, without blocking the loop."""
    deadline = time.monotonic() + timeout
    while len(played(recording)) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return played(recording)


# Live playback


def test_live_plays_each_event_on_arrival_in_order_and_releases_at_the_end(outputs, recording, caplog):
    caplog.set_level(logging.INFO)
    player = Player(outputs)
    player.handle(song_record("a", 0, [note(0), note(1), note(2)]))
    assert played(recording) == [note(seq)[1] for seq in range(3)]
    player.handle(end_record("a", 3))

    [summary] = summaries(caplog)
    assert (summary["events"], summary["notes"], summary["expected"], summary["lost"]) == (3, 3, 3, 0)
    assert summary["ended"] == "end event"
    released = played(recording)[3:]
    assert {tuple(data[:2]) for data in released} == {(0x80, 60), (0x80, 61), (0x80, 62), (0xB0, 123), (0xB0, 120)}


def test_live_does_not_replay_duplicates_and_counts_them(outputs, recording, caplog):
    caplog.set_level(logging.INFO)
    player = Player(outputs)
    player.handle(song_record("a", 0, [note(0), note(1)]))
    player.handle(song_record("a", 0, [note(0), note(1)]))
    player.handle(event("a", 1))
    player.handle(end_record("a", 2))

    assert played(recording)[:3] == [note(0)[1], note(1)[1], [0x80, 60, 64]]
    [summary] = summaries(caplog)
    assert (summary["events"], summary["duplicates"], summary["lost"]) == (2, 3, 0)


def test_live_plays_reordered_events_on_arrival_and_counts_them(outputs, recording, caplog):
    caplog.set_level(logging.INFO)
    player = Player(outputs)
    for seq in (0, 2, 1, 3):
        player.handle(event("a", seq))
    player.handle(end_record("a", 4))

    assert played(recording)[:4] == [note(seq)[1] for seq in (0, 2, 1, 3)]
    [summary] = summaries(caplog)
    assert (summary["events"], summary["reordered"], summary["lost"]) == (4, 1, 0)


def test_lost_events_are_counted_from_gaps_and_from_the_end_events_count(outputs, caplog):
    caplog.set_level(logging.INFO)
    player = Player(outputs)
    for seq in (0, 3):
        player.handle(event("a", seq))
    assert "a: 2 events, lost 2," in player.status()
    player.handle(end_record("a", 6))

    [summary] = summaries(caplog)
    assert (summary["events"], summary["expected"], summary["lost"]) == (2, 6, 4)


def test_invalid_records_are_counted_and_play_nothing(outputs, recording):
    player = Player(outputs)
    for raw in (None, b"", b"\x00garbage", b"[]", song_record("a", 0, [(0.0, [0x90, 300, 90])])):
        player.handle(raw)
    player.handle(event("a", 0))

    assert played(recording) == [note(0)[1]]
    assert player.invalid == 5
    assert "5 invalid records skipped" in player.status()


def test_a_record_over_the_size_limit_is_invalid_and_not_parsed(outputs, recording, caplog):
    raw = song_record("a", 0, [note(0)])
    limit = len(raw)
    player = Player(outputs, Settings(max_record_bytes=limit))
    acknowledged = []
    # Valid JSON, one byte over the limit: whitespace as any producer may add.
    player.handle(raw + b" ", done=lambda: acknowledged.append(1))
    assert played(recording) == [], "the oversized record was played"
    player.handle(raw)

    assert played(recording) == [note(0)[1]], "a record of exactly the limit was not played"
    assert (player.invalid, acknowledged) == (1, [1])
    assert f"over the limit of {limit} (MIDI_MAX_RECORD_BYTES)" in caplog.text


# Buffered playback


async def test_buffered_plays_each_event_at_anchor_plus_score_time_plus_delay(outputs, recording):
    delay = 0.1
    player = Player(outputs, Settings(playback="buffered", playout_delay=delay))
    handed_at = time.time()
    player.handle(song_record("a", 0, [note(0, 0.0), note(1, 0.05), note(2, 0.1)]))
    player.handle(end_record("a", 3, 0.1))
    await asyncio.sleep(delay + 0.2)
    entries = read_recording(recording)

    assert [entry["bytes"] for entry in entries[:3]] == [note(seq)[1] for seq in range(3)]
    for seq, score_time in enumerate((0.0, 0.05, 0.1)):
        # Never before its slot; generously bounded after it, as the loop may be busy.
        assert handed_at + delay + score_time - 0.002 <= entries[seq]["time"] <= handed_at + delay + score_time + 0.05
    assert player.queues == {}


async def test_buffered_event_after_its_slot_plays_at_once_and_counts_as_late(outputs, recording, caplog):
    caplog.set_level(logging.INFO)
    delay = 0.05
    player = Player(outputs, Settings(playback="buffered", playout_delay=delay))
    player.handle(event("a", 0, 0.0))
    await asyncio.sleep(0.3)
    arrived_at = time.time()
    player.handle(event("a", 1, 0.01))
    player.handle(end_record("a", 2, 0.01))
    await asyncio.sleep(0.05)
    entries = read_recording(recording)

    assert [entry["bytes"] for entry in entries[:2]] == [note(0)[1], note(1)[1]]
    assert entries[1]["time"] - arrived_at < 0.03
    [summary] = summaries(caplog)
    assert (summary["events"], summary["late"]) == (2, 1)


async def test_buffered_songs_do_not_wait_for_each_other(outputs, recording):
    player = Player(outputs, Settings(playback="buffered", playout_delay=0.05))
    player.handle(song_record("slow", 0, [note(0, 0.0), note(1, 2.0)]))
    player.handle(song_record("quick", 0, [(0.0, [0x91, 40, 90]), (0.05, [0x91, 41, 90])]))

    # Were the songs played one after the other, the quick one would wait 2 s behind the slow one.
    # The two songs' first notes share a slot (to a few µs): either may sound first.
    played_notes = await recorded(recording, 3, timeout=1.5)
    assert sorted(played_notes[:2]) == sorted([note(0)[1], [0x91, 40, 90]])
    assert played_notes[2:] == [[0x91, 41, 90]]
    await player.stop()


async def test_stop_cancels_what_is_waiting_for_its_slot(outputs, recording):
    player = Player(outputs, Settings(playback="buffered", playout_delay=0.05))
    player.handle(song_record("a", 0, [note(0, 0.0), note(1, 0.3)]))
    await asyncio.sleep(0.1)
    await player.stop()
    await asyncio.sleep(0.3)

    assert played(recording) == [note(0)[1]]
    assert player.queues == {}


async def test_abandoned_song_plays_nothing_more_and_is_released(outputs, recording):
    player = Player(outputs, Settings(playback="buffered", playout_delay=0.05))
    acknowledged = []
    player.handle(song_record("moved", 0, [note(0, 0.0), note(1, 0.3)]), done=lambda: acknowledged.append(1))
    await asyncio.sleep(0.1)
    player.abandon("moved")
    await asyncio.sleep(0.4)

    assert acknowledged == [1], "an abandoned record must still be let go, or its partition's commits stall"

    assert played(recording)[0] == note(0)[1]
    assert note(1)[1] not in played(recording), "a queued event played after the song was abandoned"
    assert [0x80, 60, 64] in played(recording) or [0x80, 60, 0] in played(recording), "the held note was not released"
    assert "moved" not in player.queues
    await player.stop()


class FailingOutput:
    """An output that refuses one note, as a port that went away would."""

    def __init__(self, refused_note: int) -> None:
        self.refused_note = refused_note
        self.received: list[list[int]] = []

    def send(self, message) -> None:
        if message.type == "note_on" and message.note == self.refused_note:
            raise OSError("port went away")
        self.received.append(message.bytes())


async def test_a_failing_output_in_buffered_mode_stops_the_song_and_releases_its_notes(caplog):
    output = FailingOutput(refused_note=61)
    player = Player(OutputSet([output]), Settings(playback="buffered", playout_delay=0.02))
    acknowledged = []
    player.handle(song_record("a", 0, [note(0, 0.0), note(1, 0.05)]), done=lambda: acknowledged.append(1))
    player.handle(event("a", 2, 0.1), done=lambda: acknowledged.append(2))
    await asyncio.sleep(0.3)

    assert sorted(acknowledged) == [1, 2], "the failed song's records must still be let go"

    assert output.received[0] == note(0)[1]
    assert note(2)[1] not in output.received
    assert any(data[0] == 0x80 and data[1] == 60 for data in output.received), "note 60 was left sounding"
    assert any("stopped playing a: port went away" in record.getMessage() for record in caplog.records)
    await player.stop()


async def test_an_abandoned_song_arriving_again_resumes_and_each_record_is_let_go_once(outputs, recording, caplog):
    caplog.set_level(logging.INFO)
    played_seqs = {}
    player = Player(outputs, Settings(playback="buffered", playout_delay=0.05), played_seqs=played_seqs)
    acknowledged = []
    player.handle(song_record("back", 0, [note(0, 0.0), note(1, 0.2)]), done=lambda: acknowledged.append("first"))
    await asyncio.sleep(0.1)
    player.abandon("back")
    player.abandon("back")
    await asyncio.sleep(0.05)
    # Its partition came back: the same record again (the offset committed is before it), then the end.
    player.handle(song_record("back", 0, [note(0, 0.0), note(1, 0.2)]), done=lambda: acknowledged.append("again"))
    player.handle(end_record("back", 2, 0.2), done=lambda: acknowledged.append("end"))
    await asyncio.sleep(0.5)

    assert played_seqs["back"].seq == 2
    assert acknowledged == ["first", "again", "end"]
    assert [data for data in played(recording) if data[0] == 0x90] == [note(0)[1], note(1)[1]]
    [summary] = summaries(caplog)
    assert (summary["events"], summary["duplicates"], summary["lost"], summary["ended"]) == (1, 1, 0, "end event")


async def test_a_far_score_time_is_invalid_and_does_not_hold_the_song(outputs, recording):
    delay = 0.05
    player = Player(outputs, Settings(playback="buffered", playout_delay=delay, max_song_seconds=60))
    handed_at = time.time()
    player.handle(event("a", 0, 0.0))
    player.handle(event("a", 1, 1e9))
    player.handle(event("a", 2, 0.1))
    await asyncio.sleep(0.3)
    entries = read_recording(recording)

    assert [entry["bytes"] for entry in entries] == [note(0)[1], note(2)[1]]
    assert entries[1]["time"] <= handed_at + delay + 0.1 + 0.05, "the event after the far one was held"
    assert player.invalid == 1
    await player.stop()


# Songs whose producer went away


async def test_a_song_without_events_for_the_idle_timeout_ends_and_counts_what_never_came(outputs, recording,
                                                                                          caplog):
    caplog.set_level(logging.INFO)
    player = Player(outputs, Settings(song_idle_timeout=0.2))
    for seq in (0, 1, 3):
        player.handle(event("a", seq))
    await asyncio.sleep(0.1)
    assert summaries(caplog) == [], "ended before the idle timeout"
    await asyncio.sleep(0.3)

    [summary] = summaries(caplog)
    assert (summary["ended"], summary["events"], summary["expected"], summary["lost"]) == ("idle", 3, None, 1)
    assert {tuple(data[:2]) for data in played(recording)[3:]} >= {(0x80, 60), (0x80, 61), (0x80, 63)}
    assert player.songs == {}

    # The producer is back: its events play, after what was played, and the song ends again.
    released_at = len(played(recording))
    player.handle(event("a", 4))
    player.handle(end_record("a", 5))
    assert played(recording)[released_at] == note(4)[1]
    assert [(later["ended"], later["events"], later["lost"]) for later in summaries(caplog)[1:]] == [
        ("end event", 1, 0)]
    await player.stop()


async def test_buffered_song_is_not_idle_while_events_wait_for_their_slot(outputs, recording, caplog):
    caplog.set_level(logging.INFO)
    player = Player(outputs, Settings(playback="buffered", playout_delay=0.05, song_idle_timeout=0.2))
    player.handle(song_record("a", 0, [note(0, 0.0), note(1, 0.4)]))
    await asyncio.sleep(0.5)

    assert summaries(caplog) == [], "ended while an event waited for its slot"
    assert played(recording)[:2] == [note(0)[1], note(1)[1]]
    await asyncio.sleep(0.3)
    [summary] = summaries(caplog)
    assert (summary["ended"], summary["events"], summary["lost"]) == ("idle", 2, 0)
    assert player.queues == {}


# Per-song statistics


def test_percentiles_are_nearest_rank_rounded_to_microseconds():
    assert percentiles([]) is None
    assert percentiles([7.0]) == {"p50": 7.0, "p99": 7.0, "max": 7.0}
    assert percentiles([float(value) for value in range(100, 0, -1)]) == {"p50": 50.0, "p99": 99.0, "max": 100.0}
    assert percentiles([1.23456789]) == {"p50": 1.235, "p99": 1.235, "max": 1.235}


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300))
def test_percentiles_and_median_agree_with_sorting(values):
    ordered = sorted(values)
    assert percentiles(values) == {name: round(ordered[max(0, math.ceil(p * len(values)) - 1)], 3)
                                   for name, p in (("p50", 0.50), ("p99", 0.99), ("max", 1.0))}
    assert median(np.asarray(values)) == pytest.approx(statistics.median(values), rel=1e-12, abs=1e-9)


def test_timing_error_removes_the_constant_delay():
    stats = SongStats("a")
    # A steady 250 ms delay, one event 30 ms later than the rest.
    for score_time, extra in ((0.0, 0.0), (1.0, 0.0), (2.0, 0.030), (3.0, 0.0)):
        stats.played(NOTE, played_at=100.25 + score_time + extra, sent_at=100.0 + score_time, target=score_time)
    stats.played(NOTE, played_at=200.0, sent_at=199.0, target=None)

    assert stats.timing_errors_ms() == pytest.approx([0.0, 0.0, 30.0, 0.0], abs=1e-6)
    assert stats.summary()["timing_error_ms"]["max"] == pytest.approx(30.0, abs=0.001)
    assert stats.summary()["latency_ms"]["max"] == pytest.approx(1000.0, abs=0.001)


def test_notes_count_note_ons_and_note_offs_including_velocity_zero_events_count_everything():
    stats = SongStats("a")
    for message in ([0x90, 60, 90], [0x90, 60, 0], [0x81, 61, 0], [0xB0, 64, 127], [0xA0, 60, 30], [0xC0, 5],
                    [0xE0, 0, 64]):
        stats.played(message, played_at=1.0, sent_at=1.0, target=None)

    assert (stats.events, stats.notes) == (7, 3)


def test_arrivals_count_duplicates_reordering_and_losses():
    stats = SongStats("a")
    assert [stats.arrive(seq) for seq in (0, 2, 2, 1, 5)] == [True, True, False, True, True]
    assert (stats.duplicates, stats.reordered, stats.lost) == (1, 1, 2)
    stats.expected = 8
    assert stats.lost == 4


@given(st.lists(st.one_of(st.tuples(st.just("add"), st.integers(0, 40)),
                          st.tuples(st.just("all below"), st.integers(0, 40))), max_size=60),
       st.integers(0, 45))
def test_seqs_seen_answer_as_a_set_of_every_seq_would(steps, probe):
    seen, every = SeqsSeen(), set()
    for step, seq in steps:
        if step == "add":
            seen.add(seq)
            every.add(seq)
        else:
            seen.add_all_below(seq)
            every.update(range(seq))
    assert len(seen) == len(every)
    assert (probe in seen) == (probe in every)
    # What it holds beyond one number is only what arrived out of order, not one int per event.
    assert seen.above == {seq for seq in every if seq > seen.below} and seen.below not in every


def test_a_long_song_in_order_keeps_no_seq_beside_the_count():
    stats = SongStats("a")
    assert all(stats.arrive(seq) for seq in range(50_000))
    assert (len(stats.seen), stats.seen.above, stats.lost) == (50_000, set(), 0)


class BookkeepingWatch:
    """An output noting, at each message, how many events its song had counted as played."""

    def __init__(self) -> None:
        self.player: Player | None = None
        self.counted: list[int] = []

    def send(self, message) -> None:
        self.counted.append(self.player.songs["chord"].events)


def test_a_chords_notes_leave_back_to_back_and_are_counted_afterwards():
    # Counting each note before sending the next spread a ten-note chord over ~0.3 ms at the port.
    watch = BookkeepingWatch()
    player = watch.player = Player(OutputSet([watch]))
    player.handle(song_record("chord", 0, [(1.0, [0x90, 60 + index, 90]) for index in range(10)]))

    assert watch.counted == [0] * 10
    assert player.songs["chord"].events == 10


def test_a_finished_song_is_remembered_by_its_id_alone_and_a_late_copy_of_it_is_skipped_and_counted():
    # Its stats (every latency and seq of a ten-minute song, ~1 MB) stayed alive with it: the worker's
    # memory grew with every song of a day-long canary.
    player = Player(OutputSet([FailingOutput(refused_note=-1)]))
    player.handle(song_record("done", 0, [(0.0, [0x90, 60, 90]), (0.1, [0x80, 60, 0])]))
    player.handle(end_record("done", 2))

    assert dict(player.finished) == {"done": None} and "done" not in player.songs
    player.handle(song_record("done", 1, [(0.1, [0x80, 60, 0])]))
    assert player.after_end == 1 and "done" not in player.songs
    assert "1 copies of finished songs' events skipped" in player.status()


@pytest.fixture
def log_on_a_terminal():
    """The root logger writing to a pseudo-terminal, as a worker run by hand with ``-l info`` does; yields
    a function reading what reached the terminal."""
    import os
    import pty
    import select

    controller, terminal = pty.openpty()
    stream = os.fdopen(terminal, "w")
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)

    def said() -> str:
        # The kernel hands what was written to a pseudo-terminal over to its reading side in chunks, a
        # little later: read until nothing more arrives for a while, not once.
        stream.flush()
        received = b""
        while select.select([controller], [], [], 0.5)[0]:
            received += os.read(controller, 65536)
        return received.decode()

    try:
        yield said
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        stream.close()
        os.close(controller)


def test_on_a_terminal_each_song_summary_is_also_said_in_one_readable_line(log_on_a_terminal):
    player = Player(OutputSet([FailingOutput(refused_note=-1)]))
    player.handle(song_record("readable", 0, [(0.0, [0x90, 60, 90]), (0.1, [0x80, 60, 0])]), position=(2, 0))
    player.handle(end_record("readable", 2), position=(2, 1))
    lines = log_on_a_terminal().splitlines()

    [json_line] = [line for line in lines if SONG_SUMMARY_MARK in line]
    summary = parse_summary(json_line)
    [readable] = [line for line in lines if line.startswith("song readable ")]
    latency = summary["latency_ms"]
    worker = f"{socket.gethostname()}:{os.getpid()}"
    assert (summary["partition"], summary["worker"], summary["part"]) == (2, worker, None)
    assert readable == (f"song readable (partition 2, worker {worker}): events 2, lost 0, duplicates 0, late 0, "
                        f"latency p50/p99 "
                        f"{latency['p50']:.1f} / {latency['p99']:.1f} ms, timing error p50/p99 "
                        f"{summary['timing_error_ms']['p50']:.2f} / {summary['timing_error_ms']['p99']:.2f} ms")


def test_off_a_terminal_the_song_summary_is_json_alone(caplog):
    with caplog.at_level(logging.INFO):
        player = Player(OutputSet([FailingOutput(refused_note=-1)]))
        player.handle(song_record("machine", 0, [(0.0, [0x90, 60, 90])]))
        player.handle(end_record("machine", 1))
    songs_said = [record.getMessage() for record in caplog.records if record.getMessage().startswith("song ")]
    assert len(songs_said) == 1 and songs_said[0].startswith("song summary {")
