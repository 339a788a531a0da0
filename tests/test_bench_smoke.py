"""CI runs each benchmark briefly: it must run end to end and print its comparison with raw aiokafka.

Their figures are not asserted against the targets (benchmarks are for a quiet machine, not for CI), except
for a functional bound on a one-minute soak: a run that slows down as it goes fails it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # each benchmark starts its own broker and worker

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize("script, expected_rows", [
    ("throughput.py", ["produce-midi -s 0 (events/s)", "worker into null (events/s)"]),
    ("latency.py", ["live latency_ms p99", "live timing_error_ms p99", "buffered 0.2 s timing_error_ms p99"]),
    ("parse.py", ["read_song (events/s)"]),
])
def test_benchmark_smoke_run_prints_its_comparison(script, expected_rows):
    result = subprocess.run([sys.executable, str(BENCH / script), "--smoke"],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    for row in expected_rows:
        line = next((line for line in result.stdout.splitlines() if line.startswith(row)), None)
        assert line is not None, f"{row!r} missing from:\n{result.stdout}"
        assert "app/raw" in line


# The soak's target is the last minute within 1.2x of the first; CI only guards against a run that
# slows down for good, with a bound far above that (and a floor, as a first window can be quiet).
SOAK_GROWTH_BOUND = 3.0
SOAK_FLOOR_MS = 3.0


# A real piece of 16 s (tests/fixtures/k525short.LICENSE), played over and over: the soak's last line can
# be the first line's music again within seconds of the minute.
SHORT_PIECE = Path(__file__).resolve().parent / "fixtures" / "k525short.mid"


def test_a_one_minute_soak_does_not_slow_down():
    """With --same-music-end the minute's three lines of 20 s are followed by a fourth, from the start of
    the first pass to begin 40 s or more into the run (the piece's fourth): the first line's music."""
    result = subprocess.run([sys.executable, str(BENCH / "soak.py"), "--smoke", "--broker", "mock", "--json",
                             "--same-music-end", "--songs", str(SHORT_PIECE)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line.split("soak row ", 1)[1])
            for line in result.stdout.splitlines() if line.startswith("soak row ")]
    assert [(row["start_s"], row["end_s"]) for row in rows[:3]] == [(0, 20), (20, 40), (40, 60)], result.stdout
    assert len(rows) == 4 and rows[-1]["same_music_as_first"], result.stdout
    assert 48 < rows[-1]["start_s"] < 60 and rows[-1]["end_s"] == rows[-1]["start_s"] + 20, result.stdout
    assert all(row["events"] > 100 for row in rows), result.stdout
    # Each line says how long the host kept the machine's CPUs (steal time; 0 on a machine of its own).
    assert all(isinstance(row["steal_ms"], int) and row["steal_ms"] >= 0 for row in rows), result.stdout
    assert all(row["producer_anon_mib"] > 1 for row in rows), result.stdout
    first, last = (row["timing_error_ms"]["p99"] for row in (rows[0], rows[-1]))
    assert last <= SOAK_GROWTH_BOUND * max(first, SOAK_FLOOR_MS), result.stdout
    closing = [json.loads(line.split("soak timing ", 1)[1])
               for line in result.stdout.splitlines() if line.startswith("soak timing ")]
    assert [(figures["lines"], figures["first_ms"], figures["last_ms"], figures["last_same_music"])
            for figures in closing] == [(4, first, last, True)]
    # Every message the port got is an event of a song or the worker's release at a song's end.
    assert "0 other played messages matched nothing, 0 events sent but not played" in result.stdout, result.stdout


def test_a_soak_whose_producer_publishes_nothing_says_so_and_fails(tmp_path):
    """A file that is no MIDI file: produce-midi ends at once, having published nothing; the soak says so
    rather than waiting for a first song, and exits with an error."""
    not_midi = tmp_path / "notes.mid"
    not_midi.write_text("not a MIDI file\n")
    result = subprocess.run([sys.executable, str(BENCH / "soak.py"), "--smoke", "--broker", "mock",
                             "--songs", str(not_midi)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "live: the producer ended before its first song (exit" in result.stdout, result.stdout
    assert "no line measured for live" in result.stderr, result.stderr


def test_latency_smoke_run_measures_each_output_kind_beside_the_port_alone():
    result = subprocess.run([sys.executable, str(BENCH / "latency.py"), "--smoke", "--outputs", "wav,mid,log,null"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("output ")]
    assert [row.split(" timing error")[0].strip() for row in rows] == [
        "output port alone", "output port + wav", "output port + mid", "output port + log", "output port + null"]
    assert all("against the port alone" in row for row in rows[1:]), result.stdout


def test_a_soak_stopped_with_sigterm_stops_its_worker_broker_and_producer_and_says_what_it_played():
    """--together plays each mode in a thread of its own; a SIGTERM must reach those too (it stopped only
    the main thread, and the soak went on to its end). The machine's watchers end with it too."""
    soak = subprocess.Popen([sys.executable, str(BENCH / "soak.py"), "--minutes", "10", "--window", "10",
                             "--modes", "live", "--together", "--broker", "mock", "--machine-stalls"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = []
        for line in soak.stdout:  # the first window's line: worker, producer and broker all running
            lines.append(line)
            if line.startswith("  live    10 s:"):
                break
        soak.terminate()
        output, _ = soak.communicate(timeout=60)
    finally:
        if soak.poll() is None:
            os.killpg(soak.pid, signal.SIGKILL)
    output = "".join(lines) + output
    assert soak.returncode == 143, output
    assert "0 events sent but not played" in output, output
    assert "machine stalls: a watcher on each of" in output, output
    left = subprocess.run(["pgrep", "-s", str(soak.pid)], capture_output=True, text=True).stdout.split()
    assert left == [], f"still running after the soak ended: {left}"
