"""An orchestra: a song keyed by channel over a 3-partition topic, played by two worker processes in one
group, each into its own recording port. Every part comes out complete, in order, once, from one worker;
nothing extra; and buffered, the notes of one chord played by the two workers sound together."""
from __future__ import annotations

import socket
import statistics
from collections import defaultdict

from harness.group import collect_summaries, is_release, wait_for_the_split
from harness.processes import WorkerProcess, run_producer
from playback.playout import ON_SONG_START
from tests.recording_backend import read_recording
from tests.song_files import write_song
from tests.topic_values import records_on_topic

PARTITIONS = 3
CHANNELS = 16
CHORDS = 30
SPACING = 0.125


def orchestra_score() -> list[tuple[float, list[int]]]:
    """A chord on all 16 channels every SPACING s, each note released half-way to the next chord.

    Sixteen parts, so both workers get some whatever the song id (a random suffix) hashes to: a given
    partition gets none of 16 keys about once in 660 songs ((2/3)^16)."""
    score = []
    for index in range(CHORDS):
        at = index * SPACING
        for channel in range(CHANNELS):
            pitch = 40 + (index + 3 * channel) % 48
            score.append((at, [0x90 | channel, pitch, 80]))
            score.append((at + SPACING / 2, [0x80 | channel, pitch, 0]))
    return score


def test_a_song_keyed_by_channel_is_played_by_two_workers_each_part_whole_once_in_order_and_in_time(
        tmp_path, worker_env):
    score = write_song(tmp_path / "orchestra.mid", orchestra_score())
    env = {**worker_env, "MIDI_TOPIC_PARTITIONS": str(PARTITIONS), "MIDI_PLAYBACK": "buffered",
           "MIDI_PLAYOUT_DELAY": "0.5"}
    envs = [{**env, "APP_DATADIR": str(tmp_path / f"data-{name}"),
             "RECORDING_BACKEND_FILE": str(tmp_path / f"recording-{name}.rec")} for name in "ab"]

    with WorkerProcess(envs[0]) as first, WorkerProcess(envs[1]) as second:
        workers = [first, second]
        assignments = wait_for_the_split(workers, PARTITIONS, timeout=60)
        result = run_producer(["--key-by", "channel", str(tmp_path / "orchestra.mid")], env)
        assert result.returncode == 0, result.stderr
        summaries = collect_summaries(workers, CHANNELS, timeout=60)
        parts_each = [{summary["song"] for summary in found} for found in summaries]
    print(f"assignments {assignments}; parts per worker {[len(parts) for parts in parts_each]}")
    print(result.stderr)

    [song_id] = {summary["song"].rsplit("/", 1)[0] for found in summaries for summary in found}
    # Where each part went, from the topic itself.
    partition_of = {record.key.decode(): record.partition for record in records_on_topic(env["BROKER_URL"])}
    expected_parts = {f"{song_id}/ch{channel + 1}" for channel in range(CHANNELS)}
    assert set(partition_of) == expected_parts
    assert parts_each[0].isdisjoint(parts_each[1]) and parts_each[0] | parts_each[1] == expected_parts

    played_at: dict[tuple[float, int], float] = {}
    for index, (worker, found) in enumerate(zip(workers, summaries)):
        recording = read_recording(tmp_path / f"recording-{'ab'[index]}.rec")
        by_channel = defaultdict(list)
        for entry in recording:
            by_channel[(entry["bytes"][0] & 0x0F) + 1].append(entry)
        mine = {int(part.rsplit("/ch", 1)[1]) for part in parts_each[index]}
        # Nothing of the parts the other worker played.
        assert set(by_channel) <= mine, f"worker {index} played channels {sorted(set(by_channel) - mine)} too"
        for channel in mine:
            expected = [data for _, data in score if (data[0] & 0x0F) + 1 == channel]
            played = [entry["bytes"] for entry in by_channel[channel]]
            # The part whole, once, in order; after its end only the releases the worker sends.
            assert played[:len(expected)] == expected, f"channel {channel} on worker {index}"
            assert all(is_release(data) for data in played[len(expected):]), played[len(expected):]
            score_times = [at for at, data in score if (data[0] & 0x0F) + 1 == channel]
            for at, entry in zip(score_times, by_channel[channel]):
                if entry["bytes"][0] & 0xF0 == 0x90:
                    played_at[(at, channel)] = entry["time"]
        worker_id = f"{socket.gethostname()}:{worker.process.pid}"
        for summary in found:
            assert (summary["lost"], summary["duplicates"], summary["reordered"]) == (0, 0, 0), summary
            assert summary["expected"] == summary["events"] == 2 * CHORDS
            assert summary["partition"] == partition_of[summary["song"]] and summary["partition"] in assignments[index]
            assert summary["worker"] == worker_id and summary["part"] == summary["song"].rsplit("/", 1)[1]
            assert summary["playout_clock"] == ON_SONG_START

    # Each chord's notes, played by the two workers: from the first to the last to sound.
    spreads_ms = []
    for index in range(CHORDS):
        chord = [time_played for (score_time, _), time_played in played_at.items() if score_time == index * SPACING]
        assert len(chord) == CHANNELS
        spreads_ms.append((max(chord) - min(chord)) * 1000)
    spreads_ms.sort()
    # What the spread is made of: each worker's own notes of a chord, and the two workers' medians apart.
    owner = {int(part.rsplit("/ch", 1)[1]): index for index, parts in enumerate(parts_each) for part in parts}
    within, apart = [], []
    for index in range(CHORDS):
        by_worker = defaultdict(list)
        for (score_time, channel), time_played in played_at.items():
            if score_time == index * SPACING:
                by_worker[owner[channel]].append(time_played)
        within += [(max(times) - min(times)) * 1000 for times in by_worker.values()]
        apart.append(abs(statistics.median(by_worker[0]) - statistics.median(by_worker[1])) * 1000)
    print(f"one worker's notes of a chord: max {max(within):.2f} ms apart; the two workers' medians: "
          f"p50 {sorted(apart)[CHORDS // 2]:.2f}, max {max(apart):.2f} ms apart")
    print(f"chords across the two workers: median {spreads_ms[len(spreads_ms) // 2]:.2f} ms apart, "
          f"worst {spreads_ms[-1]:.2f} ms")
    assert spreads_ms[len(spreads_ms) // 2] <= 3, spreads_ms
    assert spreads_ms[-2] <= 10, spreads_ms
