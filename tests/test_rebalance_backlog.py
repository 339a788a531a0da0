"""A rebalance while buffered workers hold a long backlog (issue 12, stall 3): the group must not wait
for the backlog to play, and each song's queued part resumes on its partition's owner, every event once.

Faust waits, before a worker may rejoin its group in a rebalance, for every record it handed the agent
to be acknowledged; a buffered song acknowledges its records only as they play, so with
MIDI_PLAYOUT_DELAY=10 the first worker held the rebalance for as long as its queue, past
MIDI_REBALANCE_TIMEOUT. Two real workers on the embedded broker, each with its own recording port.
"""
from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter
from datetime import datetime

from aiokafka.partitioner import DefaultPartitioner

from config.settings import bootstrap_servers
import pytest

from harness.processes import SONG_SUMMARY_MARK, WorkerProcess
from producer.publish import kafka_producer
from tests.recording_backend import read_recording
from tests.topic_values import TOPIC, create_topic, end_record, song_record, wait_for_recording

PLAYOUT_DELAY = 10.0
REBALANCE_TIMEOUT = 10.0
# 20 s of score: sent as the score goes, so at the rebalance (the second worker takes ~5 s to join) the
# first worker holds the ten seconds between what it plays and what was just sent.
EVENTS = 80
SPACING = 0.25
QUEUED_AT_THE_REVOKE = 9.0
# One song per partition. The played_seqs table's changelog partition comes from the key as the table
# serialises it (JSON), the notes topic's from the raw key: these two keys land on the same partition
# either way, so each song's resume point moves with its partition.
SONGS = {"song-5": 0, "song-0": 1}
ASSIGNED = re.compile(r"assigned partition\(s\) ([\d, ]*|none) of ")
LOGGED_AT = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def note_on(channel: int, index: int) -> list[int]:
    """The song's ``index``-th event: a note-on held to the end, a pitch of its own."""
    return [0x90 | channel, 30 + index, 100]


def publish_paced(broker_url: str, sent: list[tuple[float, int]]) -> None:
    """Both songs, one event per record, each sent when the score reaches it, then their ends; ``sent``
    gets (wall time, index) of each step."""
    async def publish() -> None:
        async with kafka_producer(bootstrap_servers(broker_url)) as producer:
            started = time.monotonic()
            for index in range(EVENTS):
                await asyncio.sleep(max(0.0, started + index * SPACING - time.monotonic()))
                for channel, song in enumerate(SONGS):
                    record = song_record(song, index, [(index * SPACING, note_on(channel, index))])
                    await producer.send(TOPIC, record, key=song.encode())
                sent.append((time.time(), index))
            for song in SONGS:
                await producer.send(TOPIC, end_record(song, EVENTS, (EVENTS - 1) * SPACING), key=song.encode())
    asyncio.run(publish())


def logged_at(line: str) -> float:
    match = LOGGED_AT.match(line)
    assert match, f"no time on the worker's line {line!r}"
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def assignments(worker: WorkerProcess) -> list[tuple[float, set[int]]]:
    """(when, notes partitions) of each assignment the worker logged."""
    found = []
    for line in worker.lines:
        match = ASSIGNED.search(line)
        if match:
            listed = match.group(1)
            found.append((logged_at(line), set() if listed == "none" else {int(p) for p in listed.split(", ")}))
    return found


def summaries_of(*workers: WorkerProcess) -> list[str]:
    return [line for worker in workers for line in worker.lines if SONG_SUMMARY_MARK in line]


def note_ons(recording) -> list[tuple[int, ...]]:
    if not recording.exists():
        return []
    return [tuple(entry["bytes"]) for entry in read_recording(recording)
            if entry["bytes"][0] & 0xF0 == 0x90 and entry["bytes"][2] > 0]


@pytest.mark.long
def test_a_rebalance_with_ten_seconds_queued_completes_in_time_and_each_song_plays_on_once(
        worker_env, broker_url, recording, tmp_path):
    partitioner = DefaultPartitioner()
    for song, partition in SONGS.items():
        assert partitioner(song.encode(), [0, 1], [0, 1]) == partition
        assert partitioner(json.dumps(song).encode(), [0, 1], [0, 1]) == partition
    env = {**worker_env, "MIDI_PLAYBACK": "buffered", "MIDI_PLAYOUT_DELAY": str(PLAYOUT_DELAY),
           "MIDI_TOPIC_PARTITIONS": "2", "MIDI_REBALANCE_TIMEOUT": str(REBALANCE_TIMEOUT),
           "MIDI_SESSION_TIMEOUT": "10"}
    second_recording = tmp_path / "second.rec"
    create_topic(broker_url, partitions=2)
    sent: list[tuple[float, int]] = []
    producing = threading.Thread(target=publish_paced, args=(broker_url, sent))

    with WorkerProcess(env) as first:
        producing.start()
        # Both songs have begun on the first worker: each has ten seconds queued behind what sounds.
        wait_for_recording(recording, 4, timeout=30)
        joined_at = time.time()
        with WorkerProcess({**env, "RECORDING_BACKEND_FILE": str(second_recording),
                            "APP_DATADIR": str(tmp_path / "second-data")}, ready_timeout=40) as second:
            deadline = time.monotonic() + 75
            while len(summaries_of(first, second)) < len(SONGS) and time.monotonic() < deadline:
                time.sleep(0.2)
            producing.join(5)
            print("first worker:", *first.lines, "second worker:", *second.lines, sep="\n")
            assert len(summaries_of(first, second)) == len(SONGS), "the songs did not finish within 75 s"
    first_assigned, second_assigned = assignments(first), assignments(second)
    print(f"first worker's assignments {first_assigned}, second's {second_assigned}, the second started at "
          f"{joined_at:.3f}")

    # The rebalance the second worker started (the first worker's revoke, as aiokafka logs it) completed
    # within the rebalance timeout, each worker with a partition of its own.
    revoked_at = [logged_at(line) for line in first.lines if "Revoking previously assigned partitions" in line]
    revoked_at = [at for at in revoked_at if at > joined_at]
    assert revoked_at, "no rebalance on the first worker"
    rebalanced = [(at, partitions) for at, partitions in first_assigned if at > revoked_at[0]]
    assert rebalanced and second_assigned, "a worker never got its assignment"
    (first_at, first_partitions), (second_at, second_partitions) = rebalanced[-1], second_assigned[-1]
    assert (first_partitions, second_partitions) in (({0}, {1}), ({1}, {0}))
    rebalance_seconds = max(first_at, second_at) - revoked_at[0]
    print(f"rebalance: {rebalance_seconds:.2f} s from the first worker's revoke to the last assignment")
    assert rebalance_seconds < REBALANCE_TIMEOUT
    assert any("queued on revoked partitions" in line for line in first.lines), "nothing let go at the revoke"
    # What the first worker held at the revoke: from the last note it had played to the last one sent.
    played_by_then = [entry["bytes"][1] - 30 for entry in read_recording(recording)
                      if entry["time"] <= revoked_at[0] and entry["bytes"][0] & 0xF0 == 0x90 and entry["bytes"][2]]
    queued = (max(index for at, index in sent if at <= revoked_at[0]) - max(played_by_then)) * SPACING
    print(f"queued at the revoke: {queued:.2f} s of score")
    assert queued >= QUEUED_AT_THE_REVOKE

    # Every event of both songs played once, across the two workers.
    first_played, second_played = note_ons(recording), note_ons(second_recording)
    counts = Counter(first_played + second_played)
    for channel, song in enumerate(SONGS):
        score = [tuple(note_on(channel, index)) for index in range(EVENTS)]
        missing = [index for index, note in enumerate(score) if counts[note] == 0]
        twice = [index for index, note in enumerate(score) if counts[note] > 1]
        assert (missing, twice) == ([], []), f"{song}: missing {missing}, played twice {twice}"

    # The song that moved: begun on the first worker, finished on the second, and nothing of it left
    # sounding on the first (every note-on it played there got its note-off).
    [moved] = [song for song, partition in SONGS.items() if partition in second_partitions]
    channel = list(SONGS).index(moved)
    played_first = {data[1] for data in first_played if data[0] & 0x0F == channel}
    assert played_first and any(data[0] & 0x0F == channel for data in second_played)
    released_first = {entry["bytes"][1] for entry in read_recording(recording)
                      if entry["bytes"][0] in (0x80 | channel, 0x90 | channel) and
                      (entry["bytes"][0] & 0xF0 == 0x80 or entry["bytes"][2] == 0)}
    assert played_first <= released_first, f"left sounding on the first worker: {played_first - released_first}"
