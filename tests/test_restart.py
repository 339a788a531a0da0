"""A worker killed without warning (SIGKILL) mid-song, and a new one in its place: the song plays on,
every event exactly once but the one being played at the kill, through the played_seqs table."""
from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import pytest

from processes import WorkerProcess, run_producer
from tests.recording_backend import read_recording
from tests.song_files import write_song

EVENTS = 400
SPACING = 0.01
# A SIGKILLed member stays in the group until its session times out, so the new worker waits for that.
RESTART_READY_TIMEOUT = 60


def distinct_note_on(index: int) -> list[int]:
    """A note-on that no other event of the song sends: channel and pitch from the index."""
    return [0x90 | index % 16, 20 + index // 16, 100]


def note_ons_played(recording) -> list[tuple[int, ...]]:
    """The song's events as the port got them; the releases sent at the end are note-offs."""
    return [tuple(entry["bytes"]) for entry in read_recording(recording)
            if entry["bytes"][0] & 0xF0 == 0x90 and entry["bytes"][2] > 0]


def wait_for_lines(path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and sum(1 for _ in open(path)) >= count:
            return
        time.sleep(0.01)
    raise TimeoutError(f"fewer than {count} messages played within {timeout:.0f} s")


@pytest.mark.parametrize("playback", ["live", "buffered"])
def test_a_worker_killed_mid_song_is_replaced_and_the_song_plays_on_exactly_once(
        tmp_path, worker_env, recording, playback):
    score = [(index * SPACING, distinct_note_on(index)) for index in range(EVENTS)]
    song = tmp_path / "restart.mid"
    write_song(song, score)
    env = {
        **worker_env,
        "MIDI_PLAYBACK": playback,
        # No offset commit before the kill, so the new worker reads again everything the killed one
        # played: only the table can keep it from playing that twice.
        "BROKER_COMMIT_INTERVAL": "600",
    }
    producing = threading.Thread(target=run_producer, args=([str(song)], env))

    with WorkerProcess(env) as first:
        assert first.ready_after < 15, f"worker took {first.ready_after:.1f} s to get ready"
        producing.start()
        wait_for_lines(recording, EVENTS // 3, timeout=30)
        first.signal(signal.SIGKILL)
        first.process.wait(10)
    played_before_kill = len(note_ons_played(recording))
    killed_at = time.monotonic()

    with WorkerProcess(env, ready_timeout=RESTART_READY_TIMEOUT) as second:
        restart_seconds = time.monotonic() - killed_at
        [summary] = second.wait_for_summaries(1, timeout=60)
        resumed = [line for line in second.lines if "resuming restart.mid@" in line]
    producing.join(30)

    counts = Counter(note_ons_played(recording))
    missing = [index for index in range(EVENTS) if counts[tuple(distinct_note_on(index))] == 0]
    repeated = [index for index in range(EVENTS) if counts[tuple(distinct_note_on(index))] > 1]
    print(f"{playback}: {played_before_kill} played before the kill, new worker ready {restart_seconds:.1f} s "
          f"after it; missing {missing}, repeated {repeated}; summary {summary}")
    assert 0 < played_before_kill < EVENTS, "the kill did not land mid-song"
    assert len(missing) + len(repeated) <= 1, f"missing {missing}, repeated {repeated}"
    assert max(counts.values()) <= 2
    assert resumed, "the new worker did not resume the song from the table"
    # It read again what the killed worker had played, and skipped it.
    assert summary["duplicates"] >= played_before_kill - 1
    assert summary["events"] == EVENTS - played_before_kill + len(repeated) - len(missing)
    assert (summary["expected"], summary["lost"]) == (EVENTS, 0)
