"""playback/playout.py's one playout clock: buffered parts of a song played at the producer's song start +
score time + playout delay, so players that received them at different moments play them together; and
when the stamp is missing or too far off, anchored on the first event seen, as before it."""
from __future__ import annotations

import asyncio
import logging
import time

import mido
import pytest

from config.settings import Settings
from models.midi_event import encode_events
from outputs import OutputSet
from playback.player import Player
from playback.playout import ON_FIRST_EVENT, ON_SONG_START, song_anchor
from harness.processes import SONG_SUMMARY_MARK, parse_summary
from tests.recording_backend import PORT_NAMES, read_recording

SONG = "k525short.mid@1a2b3c4d"
DELAY = 0.2
WINDOW = 15.0


def anchor(score_offset: float, song_start: float | None, *, now: float = 1000.0, wall_now: float = 5000.0,
           delay: float = DELAY, window: float = WINDOW) -> tuple[float, str]:
    return song_anchor(score_offset, song_start, now=now, wall_now=wall_now, playout_delay=delay, window=window)


# The slot computation


def test_a_stamped_song_starts_at_its_stamp_moved_onto_the_precise_clock():
    # Score time 0 was due 30 ms ago on the producer's wall clock; this event (score 0.02 s) arrives now.
    start, clock = anchor(0.02, 5000.0 - 0.030)

    assert clock == ON_SONG_START
    assert start == pytest.approx(1000.0 - 0.030)
    # Its slot: the song's start + score time + the delay, whenever it arrived.
    assert start + 0.02 + DELAY == pytest.approx(1000.19)


def test_without_a_stamp_the_song_starts_where_its_first_event_puts_it():
    assert anchor(0.5, None) == (pytest.approx(999.5), ON_FIRST_EVENT)


def test_an_event_late_for_its_slot_within_the_window_stays_on_the_songs_clock():
    # Sent 10 s ago, so 9.8 s past its slot: a part taken over mid-song. It plays at once (late), and the
    # rest of the part after it, on time with the other parts.
    start, clock = anchor(3.0, 5000.0 - 13.0)

    assert (start, clock) == (pytest.approx(987.0), ON_SONG_START)


@pytest.mark.parametrize("song_start, why", [
    (5000.0 - 3.0 - DELAY - WINDOW - 0.001, "just over the window past its slot: a backlog"),
    (5000.0 - 3600.0, "an hour old"),
    (5000.0 - 3.0 + WINDOW + 0.001, "sent, by the stamp, further ahead of this clock than the window"),
])
def test_a_stamp_too_far_from_this_clock_anchors_the_song_on_its_first_event(song_start, why):
    assert anchor(3.0, song_start) == (pytest.approx(997.0), ON_FIRST_EVENT), why


def test_the_windows_edges_are_inside_it():
    assert anchor(3.0, 5000.0 - 3.0 - DELAY - WINDOW)[1] == ON_SONG_START
    assert anchor(3.0, 5000.0 - 3.0 + WINDOW)[1] == ON_SONG_START


def test_a_song_published_as_fast_as_possible_plays_on_its_stamp_only_while_it_is_fresh():
    # -s 0: every score offset is 0, every slot the stamp + the delay. Played as it is published, it
    # keeps the stamp; published a minute before the worker read it (a backlog), the first event.
    assert anchor(0.0, 5000.0 - 0.05)[1] == ON_SONG_START
    assert anchor(0.0, 5000.0 - 60.0) == (1000.0, ON_FIRST_EVENT)


def test_a_window_of_zero_keeps_the_stamp_only_for_events_in_time_for_their_slot():
    assert anchor(1.0, 5000.0 - 1.0 - DELAY, window=0.0)[1] == ON_SONG_START
    assert anchor(1.0, 5000.0 - 1.0 - DELAY - 0.01, window=0.0)[1] == ON_FIRST_EVENT


# Players receiving a song's parts at different moments


def stamped(part: str, first_seq: int, timed: list[tuple[float, list[int]]], song_start: float | None,
            end: bool = False) -> bytes:
    return encode_events(f"{SONG}/{part}", first_seq, timed, sent_at=time.time(), speed_ratio=1.0, end=end,
                         song_start=song_start)


@pytest.fixture
def two_ports(recording, monkeypatch):
    """Two recording ports, one per player, both writing to ``recording``, each entry naming its port."""
    monkeypatch.setenv("RECORDING_BACKEND_FILE", str(recording))
    backend = mido.Backend("tests.recording_backend", load=True)
    ports = [backend.open_output(name) for name in PORT_NAMES]
    try:
        yield [OutputSet([port]) for port in ports]
    finally:
        for port in ports:
            port.close()


def played_by_port(recording) -> dict[str, list[dict]]:
    entries = read_recording(recording) if recording.exists() else []
    return {name: [entry for entry in entries if entry["port"] == name] for name in PORT_NAMES}


def summaries(caplog) -> list[dict]:
    return [parse_summary(record.getMessage()) for record in caplog.records if SONG_SUMMARY_MARK in record.getMessage()]


async def test_two_players_given_one_chords_parts_at_different_moments_play_it_together(two_ports, recording,
                                                                                        caplog):
    caplog.set_level(logging.INFO)
    settings = Settings(playback="buffered", playout_delay=DELAY)
    first, second = (Player(outputs, settings) for outputs in two_ports)
    song_start = time.time()
    # A chord at score time 0.05 s across two parts: the first player has its part at once, the second
    # 120 ms later (a slower partition). Anchored on the first event each saw, they would play 120 ms apart.
    first.handle(stamped("ch1", 0, [(0.05, [0x90, 60, 90])], song_start))
    await asyncio.sleep(0.12)
    second.handle(stamped("ch2", 0, [(0.05, [0x91, 64, 90])], song_start))
    await asyncio.sleep(DELAY + 0.1)
    first.handle(stamped("ch1", 1, [(0.05, [])], song_start, end=True))
    second.handle(stamped("ch2", 1, [(0.05, [])], song_start, end=True))
    await asyncio.sleep(0.05)

    by_port = played_by_port(recording)
    [a, b] = [entries[0] for entries in by_port.values()]
    assert (a["bytes"], b["bytes"]) == ([0x90, 60, 90], [0x91, 64, 90])
    slot = song_start + 0.05 + DELAY
    assert abs(a["time"] - b["time"]) < 0.01, f"the parts played {abs(a['time'] - b['time']) * 1000:.1f} ms apart"
    # Never before the slot; a little after it, as the loop may be busy.
    assert slot - 0.002 <= a["time"] <= slot + 0.05 and slot - 0.002 <= b["time"] <= slot + 0.05
    assert {(summary["song"], summary["playout_clock"], summary["late"]) for summary in summaries(caplog)} == {
        (f"{SONG}/ch1", ON_SONG_START, 0), (f"{SONG}/ch2", ON_SONG_START, 0)}
    await first.stop()
    await second.stop()


async def test_a_part_arriving_after_its_slot_plays_its_late_notes_at_once_then_keeps_the_songs_clock(
        two_ports, recording, caplog):
    caplog.set_level(logging.INFO)
    player = Player(two_ports[0], Settings(playback="buffered", playout_delay=0.05))
    song_start = time.time() - 1.0  # its first two notes' slots (0.0 and 0.5 s) are past
    arrived_at = time.time()
    player.handle(stamped("tr2", 0, [(0.0, [0x90, 60, 90]), (0.5, [0x90, 62, 90]), (1.2, [0x90, 64, 90])],
                          song_start))
    player.handle(stamped("tr2", 3, [(1.2, [])], song_start, end=True))
    await asyncio.sleep(0.4)

    [late_one, late_two, in_time] = played_by_port(recording)[PORT_NAMES[0]][:3]
    assert late_one["time"] - arrived_at < 0.05 and late_two["time"] - arrived_at < 0.05
    slot = song_start + 1.2 + 0.05
    assert slot - 0.002 <= in_time["time"] <= slot + 0.05
    [summary] = summaries(caplog)
    assert (summary["late"], summary["playout_clock"], summary["part"]) == (2, ON_SONG_START, "tr2")
    await player.stop()


async def test_a_stamped_backlog_beyond_the_window_and_an_unstamped_song_play_from_their_first_event(
        two_ports, recording, caplog):
    caplog.set_level(logging.INFO)
    player = Player(two_ports[0], Settings(playback="buffered", playout_delay=0.05, playout_clock_window=1.0))
    arrived_at = time.time()
    # Published 60 s ago (a backlog), and by a producer without the stamp.
    player.handle(stamped("ch1", 0, [(0.0, [0x90, 60, 90]), (0.1, [0x90, 61, 90])], time.time() - 60.0))
    player.handle(stamped("ch2", 0, [(0.0, [0x91, 60, 90]), (0.1, [0x91, 61, 90])], None))
    player.handle(stamped("ch1", 2, [(0.1, [])], time.time() - 60.0, end=True))
    player.handle(stamped("ch2", 2, [(0.1, [])], None, end=True))
    await asyncio.sleep(0.3)

    played = played_by_port(recording)[PORT_NAMES[0]]
    for data, score_time in (([0x90, 60, 90], 0.0), ([0x90, 61, 90], 0.1), ([0x91, 60, 90], 0.0),
                             ([0x91, 61, 90], 0.1)):
        [entry] = [entry for entry in played if entry["bytes"] == data]
        # In the score's rhythm from their arrival, not all at once.
        assert arrived_at + 0.05 + score_time - 0.002 <= entry["time"] <= arrived_at + 0.05 + score_time + 0.05, data
    assert {(summary["part"], summary["playout_clock"], summary["late"]) for summary in summaries(caplog)} == {
        ("ch1", ON_FIRST_EVENT, 0), ("ch2", ON_FIRST_EVENT, 0)}
    assert [record.getMessage() for record in caplog.records if "from its first event" in record.getMessage()] == [
        f"playing {SONG}/ch1 from its first event: it arrived 60.0 s after its producer's clock sent it, beyond "
        "MIDI_PLAYOUT_CLOCK_WINDOW (1 s)"]
    await player.stop()


def test_live_playback_ignores_the_stamp(two_ports, recording, caplog):
    caplog.set_level(logging.INFO)
    player = Player(two_ports[0], Settings(playback="live"))
    handed_at = time.time()
    player.handle(stamped("ch1", 0, [(0.0, [0x90, 60, 90])], time.time() + 5.0))
    player.handle(stamped("ch1", 1, [(0.0, [])], time.time() + 5.0, end=True))

    [entry] = [entry for entry in played_by_port(recording)[PORT_NAMES[0]] if entry["bytes"] == [0x90, 60, 90]]
    assert entry["time"] - handed_at < 0.02
    [summary] = summaries(caplog)
    assert summary["playout_clock"] is None
