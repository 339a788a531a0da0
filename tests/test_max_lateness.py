"""MIDI_MAX_LATENESS end to end: a worker coming up behind a song drops what is older than the limit,
counts it as dropped and plays the rest; without the setting it plays the whole backlog."""
from __future__ import annotations

import threading

import pytest

from harness.processes import WorkerProcess, run_producer
from tests.recording_backend import read_recording
from tests.song_files import write_song

EVENTS = 240
SPACING = 0.05  # a 12 s song, still playing when the worker gets ready (~7 s)
MAX_LATENESS = 1.0


def distinct_note_on(index: int) -> list[int]:
    return [0x90 | index % 16, 20 + index // 16, 100]


@pytest.mark.parametrize("max_lateness", [str(MAX_LATENESS), None])
def test_a_worker_behind_the_song_drops_only_what_is_later_than_max_lateness(
        tmp_path, worker_env, recording, max_lateness):
    score = [(index * SPACING, distinct_note_on(index)) for index in range(EVENTS)]
    song = tmp_path / "behind.mid"
    write_song(song, score)
    env = dict(worker_env)
    if max_lateness is not None:
        env["MIDI_MAX_LATENESS"] = max_lateness
    # The song starts while no worker runs; the worker's start-up puts it seconds behind.
    producing = threading.Thread(target=run_producer, args=([str(song)], env))
    producing.start()
    try:
        with WorkerProcess(env) as worker:
            [summary] = worker.wait_for_summaries(1, timeout=60)
    finally:
        producing.join(60)

    played = [entry["bytes"] for entry in read_recording(recording) if entry["bytes"][0] & 0xF0 == 0x90]
    print(f"MIDI_MAX_LATENESS={max_lateness}: {summary}")
    assert (summary["expected"], summary["lost"]) == (EVENTS, 0)
    if max_lateness is None:
        assert summary["latency_ms"]["max"] > MAX_LATENESS * 1000, "the worker was not behind the song"
        assert (summary["events"], summary["dropped"]) == (EVENTS, 0)
        assert played == [data for _, data in score]
        return
    assert summary["dropped"] > 0 and summary["events"] > 0
    assert summary["dropped"] + summary["events"] == EVENTS
    # The backlog is the start of the song: what plays is its end, in order, nothing dropped after it.
    assert played == [data for _, data in score[summary["dropped"]:]]
    assert summary["latency_ms"]["max"] <= MAX_LATENESS * 1000
