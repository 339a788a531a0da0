"""Nothing stays sounding: whatever ends a song's playing on a worker, its held notes get their note-off,
the pedal goes up and every channel it used gets All Notes Off (CC123) and All Sound Off (CC120).

Each test holds notes with the pedal down on two channels, ends the playing one way (song end, SIGTERM,
Ctrl-C, the agent crashing, the partition moving to another worker) and reads what the port was sent.
"""
from __future__ import annotations

import signal
import time

import pytest

from harness.processes import WorkerProcess
from tests.recording_backend import read_recording
from tests.topic_values import create_topic, end_record, produce_values, song_record, wait_for_recording

# Pedal down on channels 0 and 1, three notes held on channel 0 and one on channel 1; one note comes
# and goes, so it must not be released again.
HELD = [
    (0.00, [0xB0, 64, 127]),
    (0.01, [0xB1, 64, 127]),
    (0.02, [0x90, 60, 90]),
    (0.03, [0x90, 64, 90]),
    (0.04, [0x91, 48, 90]),
    (0.05, [0x90, 67, 90]),
    (0.06, [0x90, 67, 0]),
    (0.07, [0x90, 72, 90]),
]
HELD_NOTES = {(0, 60), (0, 64), (1, 48), (0, 72)}
CHANNELS = {0, 1}
RELEASE_WITHIN = 1.0


def on_channel(channel: int, score: list[tuple[float, list[int]]]) -> list[tuple[float, list[int]]]:
    return [(at, [data[0] & 0xF0 | channel, *data[1:]]) for at, data in score]


def released(messages: list[list[int]]) -> tuple[set[tuple[int, int]], set[tuple[int, int, int]]]:
    """The (channel, note) note-offs and the (channel, control, value) control changes among ``messages``;
    fails on any other kind of message."""
    notes, controls = set(), set()
    for data in messages:
        kind, channel = data[0] & 0xF0, data[0] & 0x0F
        if kind == 0x80 or (kind == 0x90 and data[2] == 0):
            notes.add((channel, data[1]))
        elif kind == 0xB0 and data[2] == 0:
            controls.add((channel, data[1], data[2]))
        else:
            raise AssertionError(f"{data} is not a release")
    return notes, controls


def assert_released(messages: list[list[int]], notes: set[tuple[int, int]], channels: set[int]) -> None:
    """Exactly the held ``notes`` released, and on each channel: pedal up, All Notes Off, All Sound Off."""
    released_notes, controls = released(messages)
    assert released_notes == notes
    assert controls == {(channel, control, 0) for channel in channels for control in (64, 120, 123)}


def hold_notes(broker_url: str, recording, song: str = "held", **produce_options) -> list[dict]:
    """Publish HELD as the start of ``song`` (no end) and wait until the port has played all of it."""
    already = len(read_recording(recording)) if recording.exists() else 0
    produce_values(broker_url, [song_record(song, 0, HELD[:4]), song_record(song, 4, HELD[4:])], key=song.encode(),
                   **produce_options)
    return wait_for_recording(recording, already + len(HELD))


def test_song_end_releases_what_it_left_sounding(worker_env, broker_url, recording):
    with WorkerProcess(worker_env) as worker:
        hold_notes(broker_url, recording)
        produce_values(broker_url, [end_record("held", len(HELD), 0.1)], key=b"held")
        [summary] = worker.wait_for_summaries(1, timeout=20)
        played = read_recording(recording)
        assert worker.process.poll() is None

    assert summary["events"] == len(HELD) and summary["lost"] == 0
    assert [entry["bytes"] for entry in played[: len(HELD)]] == [data for _, data in HELD]
    assert_released([entry["bytes"] for entry in played[len(HELD):]], HELD_NOTES, CHANNELS)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_stopping_the_worker_mid_song_releases_everything_within_a_second(worker_env, broker_url, recording, signum):
    with WorkerProcess(worker_env) as worker:
        hold_notes(broker_url, recording)
        signalled_at = time.time()
        worker.signal(signum)
        worker.process.wait(20)

    after = read_recording(recording)[len(HELD):]
    assert_released([entry["bytes"] for entry in after], HELD_NOTES, CHANNELS)
    release_latency = max(entry["time"] for entry in after) - signalled_at
    print(f"{signal.Signals(signum).name}: last release {release_latency * 1000:.1f} ms after the signal")
    assert min(entry["time"] for entry in after) >= signalled_at
    assert release_latency < RELEASE_WITHIN


def test_a_crash_of_the_agent_releases_the_notes_before_faust_restarts_it(worker_env, broker_url, recording):
    crash_note = 66
    env = {**worker_env, "MIDO_BACKEND": "tests.crashing_backend", "CRASHING_BACKEND_NOTE": str(crash_note)}
    with WorkerProcess(env) as worker:
        hold_notes(broker_url, recording)
        produce_values(broker_url, [song_record("held", len(HELD), [(0.1, [0x90, crash_note, 90])])], key=b"held")
        assert worker.wait_for(lambda line: "PortFailed" in line, timeout=20), "the agent did not crash"
        # The restarted agent plays on: the song's next event sounds after the releases.
        produce_values(broker_url, [song_record("held", len(HELD) + 1, [(0.2, [0x91, 50, 90])])], key=b"held")
        played = wait_for_recording(recording, len(HELD) + 1)
        deadline = time.monotonic() + 20
        while played[-1]["bytes"] != [0x91, 50, 90] and time.monotonic() < deadline:
            played = wait_for_recording(recording, len(played) + 1, timeout=deadline - time.monotonic())
        assert worker.process.poll() is None, "the worker died instead of restarting the agent"

    messages = [entry["bytes"] for entry in played]
    assert messages[: len(HELD)] == [data for _, data in HELD]
    # The refused note counts as sounding: a port before the failing one would be playing it.
    assert_released(messages[len(HELD):-1], HELD_NOTES | {(0, crash_note)}, CHANNELS)
    assert messages[-1] == [0x91, 50, 90]


def test_a_worker_losing_a_partition_in_a_rebalance_releases_that_partitions_songs(
        worker_env, broker_url, recording, tmp_path):
    env = {**worker_env, "MIDI_TOPIC_PARTITIONS": "2", "MIDI_SESSION_TIMEOUT": "6", "MIDI_REBALANCE_TIMEOUT": "6"}
    second_recording = tmp_path / "second.rec"
    create_topic(broker_url, partitions=2)
    with WorkerProcess(env) as first:
        # One song per partition, on its own channel, so the recording tells them apart.
        hold_notes(broker_url, recording, "song-0", partition=0)
        produce_values(broker_url, [song_record("song-1", 0, on_channel(2, HELD[:4])),
                                    song_record("song-1", 4, on_channel(2, HELD[4:]))],
                       key=b"song-1", partition=1)
        wait_for_recording(recording, 2 * len(HELD))
        with WorkerProcess({**env, "RECORDING_BACKEND_FILE": str(second_recording)}, ready_timeout=40):
            line = first.wait_for(lambda text: "partition moved to another worker" in text, timeout=20)
            assert line is not None, "the first worker released nothing in the rebalance"
            after = read_recording(recording)[2 * len(HELD):]
            assert first.process.poll() is None

    [moved_song] = [song for song in ("song-0", "song-1") if song in line]
    moved_channels = CHANNELS if moved_song == "song-0" else {2}
    moved_notes = HELD_NOTES if moved_song == "song-0" else {(2, note) for _, note in HELD_NOTES}
    assert_released([entry["bytes"] for entry in after], moved_notes, moved_channels)
