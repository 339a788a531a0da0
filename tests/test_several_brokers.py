"""A worker and real producers on librdkafka's mock cluster of three brokers, the notes topic and the table's
changelog of three partitions replicated three times (created through the mock, which has no
CreateTopics), partition p led by broker p + 1. Mid-song, the broker leading one partition that holds a
song goes down and comes back, or is made slow, or the partition's leader moves. Each test says what was
lost, played twice and reported, and checks that the worker's status named the partition in trouble.

Broker 1 leads partition 0 and is the group's coordinator and the cluster's controller; it is never the
one faulted, so each test is of the data path alone.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from brokers.mock_cluster import MockCluster, running_mock_cluster
from harness.processes import SONG_SUMMARY_MARK, WorkerProcess, parse_summary
from tests.songs_in_flight import SongInFlight, played_times, plays, songs_on_partitions
from tests.topic_values import TOPIC

pytestmark = pytest.mark.integration

BROKERS = PARTITIONS = 3
CHANGELOG = "midi_app-played_seqs-changelog"
COORDINATOR = 1
NOTES, SPACING = 200, 0.06  # 12 s songs of 400 events
PLAYING_BEFORE_FAULT = 40  # events of each song played before the fault
DOWN_SECONDS = 4.0
SLOW_RTT_MS = 200
PARTITION_LINE = "latency by partition since the last line: "


@dataclass
class Outcome:
    songs: list[SongInFlight]
    victim: int  # the partition whose broker was faulted
    summaries: dict[str, dict]
    lines: list[str]
    fault_at: float  # wall time
    recording: Path

    def on_victim(self) -> list[SongInFlight]:
        return [song for song in self.songs if song.partition == self.victim]

    def elsewhere(self) -> list[SongInFlight]:
        return [song for song in self.songs if song.partition != self.victim]

    def partition_lines(self, after: float = 0.0, before: float = float("inf")) -> list[dict[int, str]]:
        """The worker's latency-by-partition lines logged from ``after`` to ``before`` seconds past the
        fault, each as {partition: what it said of it}."""
        found = []
        for line in self.lines:
            if PARTITION_LINE in line and after <= logged_at(line) - self.fault_at <= before:
                said = line.split(PARTITION_LINE, 1)[1]
                found.append({int(p): text for p, text in re.findall(rf"{TOPIC}\[(\d)\] ([^,]+)", said)})
        return found


def logged_at(line: str) -> float:
    """The wall time of a worker log line (Faust's ``[2026-11-29 21:40:01,234]`` prefix)."""
    stamp = re.search(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\]", line)
    return time.mktime(time.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S")) + int(stamp.group(2)) / 1000


def p50_ms(text: str) -> float | None:
    match = re.match(r"p50 ([\d.]+) ms", text)
    return float(match.group(1)) if match else None


def lost_and_repeated(outcome: Outcome) -> dict[str, tuple[int, int]]:
    found = {}
    for song in outcome.songs:
        counts = plays([outcome.recording], song)
        found[song.song] = (sum(count == 0 for count in counts.values()), sum(count > 1 for count in counts.values()))
    return found


def play_through_fault(tmp_path: Path, fault: Callable[[MockCluster, int], None]) -> Outcome:
    """Songs on two partitions or more, played by one worker; once each has begun, ``fault(cluster,
    partition)`` on the highest partition holding a song (never partition 0: see above)."""
    recording = tmp_path / "recording.rec"
    topics = {TOPIC: PARTITIONS, CHANGELOG: PARTITIONS}
    with running_mock_cluster(BROKERS, topics, log_path=str(tmp_path / "mock.log")) as cluster:
        cluster.pin_coordinator("midi_app", COORDINATOR)
        env = {"BROKER_URL": cluster.url, "APP_DATADIR": str(tmp_path / "worker-data"),
               "MIDO_BACKEND": "tests.recording_backend", "RECORDING_BACKEND_FILE": str(recording),
               "MIDI_OUTPUT": "port", "MIDI_STATUS_INTERVAL": "1",
               "MIDI_TOPIC_PARTITIONS": str(PARTITIONS), "MIDI_TOPIC_REPLICAS": str(BROKERS)}
        with WorkerProcess(env) as worker:
            songs = songs_on_partitions(tmp_path, env, 2, NOTES, SPACING)
            deadline = time.monotonic() + 30
            while any(len(played_times(recording, song)) < PLAYING_BEFORE_FAULT for song in songs):
                assert time.monotonic() < deadline, "the songs did not begin playing"
                time.sleep(0.05)
            victim = max(song.partition for song in songs)
            fault_at = time.time()
            fault(cluster, victim)
            deadline = time.monotonic() + 90
            while sum(SONG_SUMMARY_MARK in line for line in list(worker.lines)) < len(songs):
                assert time.monotonic() < deadline, "songs not finished:\n" + "\n".join(worker.lines[-40:])
                time.sleep(0.2)
            for song in songs:
                song.producing.join(30)
            lines = list(worker.lines)
    summaries = {summary["song"]: summary
                 for summary in map(parse_summary, (line for line in lines if SONG_SUMMARY_MARK in line))}
    outcome = Outcome(songs, victim, summaries, lines, fault_at, recording)
    print(f"partition {victim} faulted; songs {[(s.song, s.partition) for s in songs]}")
    for song in songs:
        s = outcome.summaries[song.song]
        print(f"  {song.song} on partition {song.partition}: lost {s['lost']}, duplicates {s['duplicates']}, "
              f"reordered {s['reordered']}, latency {s['latency_ms']}, producer: "
              f"{song.results[0].stderr.strip().splitlines()[-1] if song.results else '?'}")
    print("  lost/repeated at the port:", lost_and_repeated(outcome))
    print("  partition lines after the fault:", *outcome.partition_lines(), sep="\n    ")
    print("  warnings:", *[line for line in lines if "WARNING" in line or "ERROR" in line][:20], sep="\n    ")
    return outcome


def assert_every_event_once(outcome: Outcome) -> None:
    assert all(found == (0, 0) for found in lost_and_repeated(outcome).values()), lost_and_repeated(outcome)
    for song in outcome.songs:
        summary = outcome.summaries[song.song]
        assert (summary["lost"], summary["expected"], summary["events"]) == (0, 2 * NOTES, 2 * NOTES), summary


def test_a_broker_down_mid_song_and_up_again_stalls_its_partition_only_and_loses_nothing(tmp_path):
    def down_and_up(cluster: MockCluster, partition: int) -> None:
        cluster.broker_down(partition + 1)
        time.sleep(DOWN_SECONDS)
        cluster.broker_up(partition + 1)

    outcome = play_through_fault(tmp_path, down_and_up)

    assert_every_event_once(outcome)
    # While its broker was down, the worker said that partition's songs were waiting.
    during = outcome.partition_lines(after=1.5, before=DOWN_SECONDS)
    assert any("nothing played" in said.get(outcome.victim, "") for said in during), during
    for song in outcome.on_victim():
        assert outcome.summaries[song.song]["latency_ms"]["max"] >= (DOWN_SECONDS - 1) * 1000


@pytest.mark.long
def test_a_slow_broker_puts_its_partition_s_songs_behind_and_the_worker_names_that_partition(tmp_path):
    outcome = play_through_fault(tmp_path, lambda cluster, partition: cluster.broker_rtt(partition + 1, SLOW_RTT_MS))

    assert_every_event_once(outcome)
    # Once the slowness shows (a line later), every line naming the partition puts it behind the others.
    named = [said for said in outcome.partition_lines(after=2.0) if p50_ms(said.get(outcome.victim, "")) is not None]
    assert named, outcome.partition_lines()
    for said in named:
        others = [p50_ms(text) for partition, text in said.items() if partition != outcome.victim]
        assert p50_ms(said[outcome.victim]) >= SLOW_RTT_MS * 0.75, said
        assert all(other is None or other < p50_ms(said[outcome.victim]) for other in others), said
    # The other partitions' songs are slowed too, less (see the README: the catch-up fetch wait, which the
    # slow partition's lag switches on for every fetch, is held in full by a broker that answers only
    # when it ends): each song's median latency still tells the slow partition's from the others'.
    slowest_elsewhere = max(outcome.summaries[song.song]["latency_ms"]["p50"] for song in outcome.elsewhere())
    for song in outcome.on_victim():
        assert outcome.summaries[song.song]["latency_ms"]["p50"] >= max(SLOW_RTT_MS * 0.75, slowest_elsewhere)


@pytest.mark.long
def test_a_partition_leader_moved_mid_song_loses_and_repeats_nothing(tmp_path):
    outcome = play_through_fault(tmp_path, lambda cluster, partition: cluster.move_leader(TOPIC, partition, 1))

    assert_every_event_once(outcome)
    for song in outcome.on_victim():
        print(f"{song.song}: latency max {outcome.summaries[song.song]['latency_ms']['max']} ms after the move")
