"""Several songs published at once by real produce-midi processes, each of notes no other song sends, and
what the workers' ports made of them: for the tests where workers or brokers come and go mid-song.

Song ``k`` plays on channels 2k and 2k+1, each note on, then off (velocity 0) three quarters of a step
later: every message of every song is distinct, so counting it in the recordings says whether it was
lost or played twice. The releases a worker sends when it lets a song go (note-offs of velocity 64,
controls 64/120/123 at 0) are none of them.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness.processes import run_producer
from tests.recording_backend import read_recording
from tests.song_files import write_song
from aiokafka import AIOKafkaConsumer, TopicPartition

from config.settings import bootstrap_servers
from tests.topic_values import READ_TIMEOUT, TOPIC

ALL_NOTES_OFF = 123


def song_score(k: int, notes: int, spacing: float) -> list[tuple[float, list[int]]]:
    """``notes`` notes a ``spacing`` apart on channels 2k and 2k+1 (at most 216 notes, 8 songs)."""
    assert 0 <= k < 8 and notes <= 216
    score = []
    for index in range(notes):
        channel, pitch = 2 * k + index % 2, 20 + index // 2
        score.append((index * spacing, [0x90 | channel, pitch, 100]))
        score.append((index * spacing + 0.75 * spacing, [0x80 | channel, pitch, 0]))
    return score


@dataclass
class SongInFlight:
    """Song ``k``, published by its own produce-midi in a thread; ``song`` is its id once seen on the topic."""

    k: int
    score: list[tuple[float, list[int]]]
    producing: threading.Thread
    song: str | None = None
    partition: int | None = None
    results: list = field(default_factory=list)

    def events(self) -> set[tuple[int, ...]]:
        return {tuple(data) for _, data in self.score}


def publish_song(tmp_path: Path, env: dict[str, str], k: int, notes: int, spacing: float) -> SongInFlight:
    path = tmp_path / f"song{k}.mid"
    score = write_song(path, song_score(k, notes, spacing))
    results: list = []
    producing = threading.Thread(target=lambda: results.append(run_producer([str(path)], env)), daemon=True)
    producing.start()
    return SongInFlight(k, score, producing, results=results)


def songs_on_partitions(tmp_path: Path, env: dict[str, str], distinct: int, notes: int, spacing: float,
                        timeout: float = 60.0) -> list[SongInFlight]:
    """Publish songs until they are on ``distinct`` partitions of the notes topic (a song's partition
    comes from its random id): ``distinct`` at once, then one more at a time as long as needed."""
    songs = [publish_song(tmp_path, env, k, notes, spacing) for k in range(distinct)]
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, "songs not on the topic in time: " + "; ".join(
            s.results[0].stderr[-500:] for s in songs if s.results)
        located = locate(env["BROKER_URL"], songs, int(env["MIDI_TOPIC_PARTITIONS"]))
        if len({s.partition for s in songs if s.partition is not None}) >= distinct:
            return songs
        if located == len(songs):
            songs.append(publish_song(tmp_path, env, len(songs), notes, spacing))
        time.sleep(0.3)


async def song_partitions(broker_url: str, partitions: int) -> dict[str, int]:
    """{song id: partition} of every record on the notes topic's ``partitions`` partitions, assigned
    by number (the mock cluster's metadata names no partitions to a consumer that subscribed to none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), enable_auto_commit=False,
                                fetch_max_wait_ms=50)
    await consumer.start()
    try:
        assigned = [TopicPartition(TOPIC, partition) for partition in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        found: dict[str, int] = {}
        deadline = time.monotonic() + READ_TIMEOUT
        while any([await consumer.position(tp) < ends[tp] for tp in assigned]) and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    found.setdefault(record.key.decode(), record.partition)
        return found
    finally:
        await consumer.stop()


def locate(broker_url: str, songs: list[SongInFlight], partitions: int) -> int:
    """Fill in each song's id and partition from its records on the topic; how many are known."""
    partition_of = asyncio.run(song_partitions(broker_url, partitions))
    for song_id, partition in partition_of.items():
        k = int(song_id.split("@")[0].removeprefix("song").removesuffix(".mid"))
        if k < len(songs):
            songs[k].song, songs[k].partition = song_id, partition
    return sum(s.song is not None for s in songs)


def score_events_of(recording: Path, songs: list[SongInFlight]) -> list[dict]:
    """The entries of a recording that are some song's score events (releases left out)."""
    wanted = set().union(*(s.events() for s in songs))
    return [entry for entry in (read_recording(recording) if recording.exists() else [])
            if tuple(entry["bytes"]) in wanted]


def plays(recordings: list[Path], song: SongInFlight) -> Counter:
    """How many times each of ``song``'s events reached a port, over every worker's recording."""
    counts: Counter = Counter({event: 0 for event in song.events()})
    for recording in recordings:
        counts.update(tuple(entry["bytes"]) for entry in score_events_of(recording, [song]))
    return counts


def still_sounding(recording: Path) -> set[tuple[int, int]]:
    """The (channel, note) pairs a port was left sounding: note-ons without a later note-off or All
    Notes Off on their channel."""
    sounding: set[tuple[int, int]] = set()
    for entry in read_recording(recording) if recording.exists() else []:
        data = entry["bytes"]
        kind, channel = data[0] & 0xF0, data[0] & 0x0F
        if kind == 0x90 and data[2] > 0:
            sounding.add((channel, data[1]))
        elif kind in (0x80, 0x90):
            sounding.discard((channel, data[1]))
        elif kind == 0xB0 and data[1] == ALL_NOTES_OFF:
            sounding = {(ch, note) for ch, note in sounding if ch != channel}
    return sounding


def played_times(recording: Path, song: SongInFlight) -> list[float]:
    return [entry["time"] for entry in score_events_of(recording, [song])]
