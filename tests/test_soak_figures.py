"""The soak's closing figures from its lines (bench/soak.py): whether a run slowed down, said so that
a run that did and one that did not read differently."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import soak  # noqa: E402  (the benchmarks import each other from their folder)

from models.midi_event import encode_events  # noqa: E402


def lines(p99s: list[float | None]) -> list[dict]:
    return [{"window": index, "timing_error_ms": None if p99 is None else {"p99": p99}}
            for index, p99 in enumerate(p99s)]


def test_a_run_that_slows_down_says_so_in_each_figure():
    figures = soak.timing_trend("buffered", lines([0.05 + 0.01 * minute for minute in range(30)]), 60.0)
    assert figures["last_over_first"] == 6.8
    assert figures["slope_ms_per_hour"] == 0.6
    assert (figures["first_stretch_ms"], figures["last_stretch_ms"]) == (0.095, 0.295)
    assert figures["later_within"] < 0.25  # only near neighbours, once the lines are large
    assert figures["within_bound"] == 30


def test_a_flat_run_can_miss_the_last_over_first_target_and_its_other_figures_say_it_is_flat():
    """Two kinds of minute taking turns, as a soak's songs do: the last over the first is 1.5x, the
    medians of the first and last ten minutes are the same, the slope small."""
    figures = soak.timing_trend("buffered", lines([0.04, 0.06] * 15), 60.0)
    assert figures["last_over_first"] == 1.5
    assert figures["first_stretch_ms"] == figures["last_stretch_ms"] == 0.05
    assert abs(figures["slope_ms_per_hour"]) < 0.03
    assert 0.7 < figures["later_within"] < 0.8  # the later of two lines within 1.2x in three pairs of four


def test_lines_over_the_modes_bound_are_counted_and_lines_with_nothing_played_left_out():
    figures = soak.timing_trend("live", lines([1.5, None, 3.2, 1.4, None, 1.6]), 60.0)
    assert (figures["lines"], figures["within_bound"], figures["max_ms"]) == (4, 3, 3.2)
    assert (figures["first_ms"], figures["last_ms"]) == (1.5, 1.6)
    assert soak.timing_trend("buffered", lines([0.05, None, 0.06]), 60.0) is None  # two lines: no trend


def test_lines_over_the_bound_say_what_kept_the_machine_itself_from_running_then():
    rows = lines([1.5, 3.2, 3.4, 1.4])
    for row, stolen, longest in zip(rows, [0, 40, 10, 20], [7.0, 9.2, 1.1, 0.0]):
        row["steal_ms"], row["machine"] = stolen, {"stalls": 1, "max_ms": longest}
    figures = soak.timing_trend("live", rows, 60.0)
    assert figures["within_bound"] == 2
    assert (figures["over_steal_ms"], figures["median_steal_ms"]) == ([40, 10], 15)
    assert figures["over_with_machine_stall"] == 1  # the 9.2 ms stall; the 7 ms one fell in a line within
    assert "the 2 lines over 3 ms had 40, 10 ms of steal time (median of all lines 15), 1 of them a stall" \
        in soak.over_bound_text(figures)
    unwatched = lines([1.5, 3.2, 1.4])
    for row in unwatched:
        row["steal_ms"] = 0
    figures = soak.timing_trend("live", unwatched, 60.0)
    assert figures["over_with_machine_stall"] is None
    assert soak.over_bound_text(figures).endswith("(median of all lines 0)")
    assert soak.over_bound_text(soak.timing_trend("live", lines([1.5, 1.2, 1.4]), 60.0)) == ""
    # No line over and no watcher: nothing to say of stalls, not "0 of them".
    assert soak.timing_trend("live", lines([1.5, 1.2, 1.4]), 60.0)["over_with_machine_stall"] is None


def test_played_messages_are_paired_with_their_events_and_a_songs_end_releases_counted_apart():
    """Two songs on the topic; the port got the first whole, the worker's release of it (a held note's
    note-off, pedal up, All Notes Off, All Sound Off: in no song), one stray message, and the second but
    its last event."""
    first = encode_events("a", 0, [(0.0, [0x90, 60, 64]), (0.5, [0x80, 60, 0])], sent_at=10.0, speed_ratio=1.0)
    second = encode_events("b", 0, [(0.0, [0x91, 62, 64]), (0.5, [0x81, 62, 0])], sent_at=20.0, speed_ratio=1.0)
    port = [[0x90, 60, 64], [0x80, 60, 0], [0x80, 67, 64], [0xB0, 64, 0], [0xB0, 123, 0], [0xB0, 120, 0],
            [0xB0, 7, 100], [0x91, 62, 64]]
    played = [{"time": 100.0 + index, "bytes": data} for index, data in enumerate(port)]
    matched, counts = soak.match_played(played, [first, second])
    assert matched == [(100.0, 0.0, 10.0, "a"), (101.0, 0.5, 10.0, "a"), (107.0, 0.0, 20.0, "b")]
    assert counts == {"releases": 4, "unmatched": 1, "missing": 1}


class Tap:
    """What the soak reads of TopicTap: the values written to the topic so far."""

    def __init__(self) -> None:
        self.values: list[bytes] = []


def test_each_pass_begins_where_a_play_of_the_first_song_begins_and_the_last_line_from_the_first_far_enough():
    tap = Tap()
    passes = soak.PassStarts(tap, Path("/songs/one.mid"))

    def play(song: str, song_start: float) -> None:
        tap.values.append(encode_events(song, 0, [(0.0, [0x90, 60, 64])], sent_at=song_start, speed_ratio=1.0,
                                        song_start=song_start))
        tap.values.append(encode_events(song, 1, [(1.0, [0x80, 60, 0])], sent_at=song_start + 1, speed_ratio=1.0,
                                        song_start=song_start))

    assert passes.update() == []
    play("one.mid@a", 1000.0)
    play("two.mid@b", 1100.0)
    play("one.mid@c", 1200.0)
    assert passes.update() == [1000.0, 1200.0]
    assert passes.same_music_from(150.0) == 1200.0
    assert passes.same_music_from(250.0) is None  # no pass so late yet
    play("two.mid@d", 1300.0)
    play("one.mid@e", 1400.0)
    assert passes.same_music_from(250.0) == 1400.0
    assert passes.update() == [1000.0, 1200.0, 1400.0]  # each value read once


def test_a_window_counts_the_events_played_within_it_by_their_error_from_their_songs_median_offset():
    # Song "a" plays 2 s after its score, but one event 5 ms later than that; song "b" 3 s after.
    matched = [(102.0, 100.0, 101.997, "a"), (103.0, 101.0, 102.997, "a"), (104.005, 102.0, 104.0, "a"),
               (203.0, 200.0, 202.996, "b")]
    timings = soak.PlayedTimings(matched)
    window = timings.between(102.5, 104.5)
    assert window["events"] == 2
    assert window["worst"] == (5.0, "a", 102.0)
    assert round(window["timing_error_ms"]["p99"], 3) == 5.0
    # Of those 5 ms, the producer's: it sent that event 3 ms later than the song's usual 1.997 s.
    assert round(window["send_lag_ms"]["p99"], 3) == 3.0 and window["send_lag_ms"]["p50"] == 0.0
    assert timings.between(150.0, 210.0)["events"] == 1
    assert timings.between(104.5, 150.0) == {"events": 0, "timing_error_ms": None, "latency_ms": None,
                                             "send_lag_ms": None}


def test_lines_over_the_bound_say_how_late_the_producer_sent_their_events():
    rows = lines([1.5, 3.2, 3.4, 1.4])
    for row, lag in zip(rows, [0.05, 2.1, 0.04, 0.05]):
        row["steal_ms"], row["send_lag_ms"] = 20, {"p99": lag}
    text = soak.over_bound_text(soak.timing_trend("live", rows, 60.0))
    assert "ms of steal time (median of all lines 20), their events sent with a lag p99 of 2.10, 0.04 ms" in text


def test_a_memory_that_steps_up_once_early_is_flat_once_warm():
    """A producer's memory: one step when it first reads the largest song, flat after."""
    rows = [{"window": index, "producer_anon_mib": 53.6 if index < 6 else 56.5} for index in range(60)]
    trend = soak.memory_trend(rows, 60.0, "producer_anon_mib")
    assert (trend["lines"], trend["first_mib"], trend["last_mib"]) == (10, 53.6, 56.5)
    assert trend["slope_mib_per_hour"] > 1.0  # the step, read as a growth over every line
    assert trend["warm_slope_mib_per_hour"] == 0.0
    growing = [{"window": index, "producer_anon_mib": 50 + index / 60} for index in range(60)]
    assert soak.memory_trend(growing, 60.0, "producer_anon_mib")["warm_slope_mib_per_hour"] == 1.0
    assert soak.memory_trend(rows[:3], 60.0, "producer_anon_mib")["warm_slope_mib_per_hour"] is None
