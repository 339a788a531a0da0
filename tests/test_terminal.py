"""terminal/: progress bars on a terminal, produce-midi's plain lines elsewhere, and make run's table."""
from __future__ import annotations

import io
import logging
import re

from terminal.progress import SongProgress
from terminal.song_table import print_song_table

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def summary(song: str, **figures) -> dict:
    return {"song": song, "events": 130, "notes": 128, "lost": 0, "duplicates": 0, "late": 0,
            "latency_ms": {"p50": 3.456, "p99": 7.089, "max": 9.0},
            "timing_error_ms": {"p50": 0.568, "p99": 2.357, "max": 3.1}, **figures}


def test_without_a_terminal_a_song_gets_a_plain_line_a_second_as_produce_midi_always_printed():
    stream, clock = io.StringIO(), Clock()
    with SongProgress(stream, terminal=False, clock=clock) as view:
        view.started("ode.mid@1", 98, 12.0, " (pass 1/2)", line="playing ode.mid as ode.mid@1: 98 events, 12.00 s")
        for sent in range(1, 99):
            clock.now += 0.125
            view.advanced("ode.mid@1", sent, sent * 0.125)
        view.finished("ode.mid@1", "done ode.mid@1: 98 events sent")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "playing ode.mid as ode.mid@1: 98 events, 12.00 s"
    assert lines[1] == "ode.mid@1:    1.00/12.00 s, 8/98 events sent (pass 1/2)"
    assert len(lines) == 1 + 12 + 1 and lines[-1] == "done ode.mid@1: 98 events sent"
    assert not ANSI.search(stream.getvalue())


def test_on_a_terminal_a_song_is_a_bar_which_gives_way_to_its_done_line():
    stream, clock = io.StringIO(), Clock()
    with SongProgress(stream, terminal=True, clock=clock) as view:
        view.started("ode.mid@1", 98, 12.0, line="playing ...")
        for sent in range(1, 50):
            clock.now += 0.125
            view.advanced("ode.mid@1", sent, sent * 0.125)
        view.finished("ode.mid@1", "done ode.mid@1: 98 events sent")
    text = stream.getvalue()
    plain = ANSI.sub("", text)
    assert ANSI.search(text) and "━" in plain
    # Redrawn every 0.25 s: after the 48th event, not the 49th.
    assert "48/98 events" in plain and "events sent" not in plain.replace("done ode.mid@1: 98 events sent", "")
    assert "playing ..." not in plain, "the bar announces the song"
    assert plain.rstrip().endswith("done ode.mid@1: 98 events sent")


def test_log_records_written_while_the_bars_show_go_above_them():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with SongProgress(stream, terminal=True, keep_finished=True) as view:
            view.started("ode.mid@1", 98, 12.0)
            logging.getLogger("aiokafka").warning("connection to the broker lost")
            assert handler.stream is not stream
        assert handler.stream is stream, "the handler writes to the stream itself again"
    finally:
        root.removeHandler(handler)
    assert "connection to the broker lost" in ANSI.sub("", stream.getvalue())


def test_the_table_has_a_row_of_figures_per_song_and_the_recordings_beneath():
    stream = io.StringIO()
    print_song_table(stream, False, [summary("ode.mid@1"), summary("twinkle.mid@2", lost=2, latency_ms=None)],
                     ["/tmp/performance.wav: 31.9 s of audio"])
    text = stream.getvalue()
    assert not ANSI.search(text)
    rows = {cells[0]: cells[1:] for line in text.splitlines() if line.startswith("│")
            for cells in [[cell.strip() for cell in line.strip("│").split("│")]]}
    assert rows["ode.mid@1"] == ["130", "0", "0", "0", "3.5 / 7.1 ms", "0.57 / 2.36 ms"]
    assert rows["twinkle.mid@2"][1] == "2" and rows["twinkle.mid@2"][4] == "-"
    header = next(line for line in text.splitlines() if "events" in line)
    assert [cell.strip() for cell in header.strip("┃").split("┃")] == [
        "song", "events", "lost", "duplicates", "late", "latency p50/p99", "timing error p50/p99"]
    assert "/tmp/performance.wav: 31.9 s of audio" in text
