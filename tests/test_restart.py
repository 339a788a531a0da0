"""A worker killed without warning (SIGKILL) mid-song, and a new one in its place: the song plays on,
every event exactly once but the one being played at the kill, through the played_seqs table."""
from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import pytest

from harness.processes import WorkerProcess, run_producer
from tests.recording_backend import read_recording
from tests.song_files import write_song
from tests.topic_values import (committed_offset, end_record, events_on_topic, produce_values, records_on_topic,
                                song_record,
                                wait_for_recording)

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
        wait_for_recording(recording, EVENTS // 3, timeout=30)
        first.signal(signal.SIGKILL)
        first.process.wait(10)
    played_before_kill = len(note_ons_played(recording))
    killed_at = time.monotonic()
    # Faust may have committed anyway (a rebalance commits); what it committed is not read again.
    committed_before_restart = committed_offset(env["BROKER_URL"]) or 0

    with WorkerProcess(env, ready_timeout=RESTART_READY_TIMEOUT) as second:
        restart_seconds = time.monotonic() - killed_at
        [summary] = second.wait_for_summaries(1, timeout=60)
        resumed = [line for line in second.lines if "resuming restart.mid@" in line]
    producing.join(30)

    counts = Counter(note_ons_played(recording))
    missing = [index for index in range(EVENTS) if counts[tuple(distinct_note_on(index))] == 0]
    repeated = [index for index in range(EVENTS) if counts[tuple(distinct_note_on(index))] > 1]
    print(f"{playback}: {played_before_kill} played before the kill, offset {committed_before_restart} "
          f"committed, new worker ready {restart_seconds:.1f} s "
          f"after it; missing {missing}, repeated {repeated}; summary {summary}")
    assert 0 < played_before_kill < EVENTS, "the kill did not land mid-song"
    assert len(missing) + len(repeated) <= 1, f"missing {missing}, repeated {repeated}"
    assert max(counts.values()) <= 2
    assert resumed, "the new worker did not resume the song from the table"
    # It read again what the killed worker had played past the committed offset, and skipped all of
    # it but what the kill left unsaved.
    committed_events = sum(1 for offset, _, _ in events_on_topic(env["BROKER_URL"])
                           if offset < committed_before_restart)
    assert summary["duplicates"] == played_before_kill - len(repeated) - committed_events
    assert summary["events"] == EVENTS - played_before_kill + len(repeated) - len(missing)
    assert (summary["expected"], summary["lost"]) == (EVENTS, 0)


def test_a_buffered_record_still_waiting_at_the_kill_is_read_again_though_a_later_one_was_played(
        worker_env, recording):
    """Two songs on one partition. Song a's record holds a note due 4 s after its first; song b's
    record, read after it, is played at once. A worker killed while a's second note waits must leave
    a's record to its successor, which plays that note and not the first one again."""
    a_first, a_second, b_only = distinct_note_on(0), distinct_note_on(1), distinct_note_on(2)
    env = {**worker_env, "MIDI_PLAYBACK": "buffered", "MIDI_PLAYOUT_DELAY": "0.2",
           # Frequent commits, so a commit past a's record would have happened before the kill.
           "BROKER_COMMIT_INTERVAL": "0.2"}

    with WorkerProcess(env) as first:
        produce_values(worker_env["BROKER_URL"], [song_record("a", 0, [(0.0, a_first), (4.0, a_second)])], key=b"a")
        produce_values(worker_env["BROKER_URL"], [song_record("b", 0, [(0.0, b_only)])], key=b"b")
        wait_for_recording(recording, 2, timeout=10)
        time.sleep(1.0)  # several commit intervals
        first.signal(signal.SIGKILL)
        first.process.wait(10)
    assert tuple(a_second) not in note_ons_played(recording), "the kill came after a's second note"

    with WorkerProcess(env, ready_timeout=RESTART_READY_TIMEOUT) as second:
        produce_values(worker_env["BROKER_URL"], [end_record("a", 2, 4.0)], key=b"a")
        produce_values(worker_env["BROKER_URL"], [end_record("b", 1)], key=b"b")
        summaries = {summary["song"]: summary for summary in second.wait_for_summaries(2, timeout=30)}
    print("first worker:", *first.lines, "second worker:", *second.lines, sep="\n")

    assert Counter(note_ons_played(recording)) == {tuple(a_first): 1, tuple(a_second): 1, tuple(b_only): 1}
    assert (summaries["a"]["events"], summaries["a"]["lost"]) == (1, 0)
    assert (summaries["b"]["events"], summaries["b"]["lost"]) == (0, 0)


CHANGELOG = "midi_app-played_seqs-changelog"


def test_a_finished_songs_resume_point_leaves_the_table_once_its_end_is_committed(tmp_path, worker_env, broker_url):
    # One key per song ever played, kept for good, grew the table (and the broker) with the run.
    song = tmp_path / "short.mid"
    write_song(song, [(index * 0.02, distinct_note_on(index)) for index in range(20)])
    env = {**worker_env, "BROKER_COMMIT_INTERVAL": "0.5"}

    with WorkerProcess(env) as worker:
        assert run_producer([str(song)], env).returncode == 0
        [summary] = worker.wait_for_summaries(1, timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            writes = [record for record in records_on_topic(broker_url, CHANGELOG)
                      if record.key is not None and summary["song"] in record.key.decode()]
            if writes and writes[-1].value is None:
                break
            time.sleep(0.5)

    assert writes, "the song's resume points were never written"
    assert writes[-1].value is None, f"no tombstone after the song's end was committed: {writes[-1]}"
    assert all(write.value is not None for write in writes[:-1])
