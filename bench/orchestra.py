"""Orchestra: a real multi-channel song keyed by channel over three partitions, played buffered by three
workers, each into its own port; then the same with one worker stopped (SIGTERM) and one killed
(SIGKILL) in the middle of the song.

Measured outside the workers: each worker's recording port stamps every message it receives, and each
part (a channel) is matched against the file's own messages on that channel (read by mido). Cross-worker
timing error: each message's played time minus its score time, one median removed for the whole song
across all workers. Per case: parts lost (messages no worker played), repeated (played twice), notes
left sounding on the worker that left, and the handover of each part that moved (its last message on the
old owner to its first on the new one), beside the worker's own `handover_ms` where it reports one.

    .venv/bin/python bench/orchestra.py [--song FILE] [--cases together,stop,kill] [--at 0.4] [--smoke]
        [--broker tansu|mock]
"""
from __future__ import annotations

import argparse
import signal
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

from common import BROKER_KINDS, bench_broker, percentiles

from harness.group import collect_summaries, is_release, wait_for_the_split
from harness.processes import WorkerProcess, run_producer
from tests.recording_backend import read_recording
from tests.song_files import mido_score, write_song

OPENMSX = Path("/usr/share/games/openttd/baseset/openmsx")
# 5432gone_redfarn.mid (openttd-openmsx, GPL-2): 5 channels, 60 s, real chords.
DEFAULT_SONG = OPENMSX / "5432gone_redfarn.mid"
WORKERS, PARTITIONS = 3, 3
CASES = {"together": None, "stop": signal.SIGTERM, "kill": signal.SIGKILL}


def channel_of(data: list[int]) -> int:
    return (data[0] & 0x0F) + 1


def parts_of(score) -> dict[int, list[tuple[float, list[int]]]]:
    parts = defaultdict(list)
    for at, data in score:
        parts[channel_of(data)].append((at, data))
    return dict(parts)


def analyse(score, recordings: list[list[dict]], left: int | None) -> dict:
    """Per part, every worker's messages of its channel in the order they sounded, walked against the
    part's own messages: lost, repeated and extra messages; each resumption (a gap where the part went
    on from elsewhere in the score: a handover to another worker, or the same worker resuming after a
    rebalance) and its time; cross-worker timing errors."""
    offsets, lost, repeated, extra, handovers, resumed = [], 0, 0, 0, [], []
    for channel, expected in parts_of(score).items():
        heard = sorted(((entry["time"], index, entry["bytes"]) for index, recording in enumerate(recordings)
                        for entry in recording if channel_of(entry["bytes"]) == channel))
        cursor, last = 0, None  # next expected message; (time, worker) of the last one played
        for at, worker, data in heard:
            if cursor < len(expected) and data == expected[cursor][1]:
                position = cursor
            elif is_release(data):
                continue  # a worker silencing the part as it lets it go
            else:
                position = resumes_at(expected, cursor, data)
                if position is None:
                    extra += 1
                    continue
                repeated += max(0, cursor - position)
                lost += max(0, position - cursor)
                if last is not None and worker == last[1]:
                    resumed.append(round((at - last[0]) * 1000, 1))
            if last is not None and worker != last[1]:
                handovers.append(round((at - last[0]) * 1000, 1))
            offsets.append(at - expected[position][0])
            cursor, last = position + 1, (at, worker)
        lost += len(expected) - cursor
    median = statistics.median(offsets)
    return {"timing_error_ms": percentiles([abs(offset - median) * 1000 for offset in offsets]),
            "lost": lost, "repeated": repeated, "extra": extra,
            "sounding": sounding(recordings[left]) if left is not None else 0,
            "handover_ms": handovers, "resumed_ms": resumed}


def resumes_at(expected: list, cursor: int, data: list[int]) -> int | None:
    """Where in the part a message out of turn resumes it: the first place from a few messages back whose
    message it is (a repeat of the last played, or a jump past some)."""
    for position in range(max(0, cursor - 3), len(expected)):
        if expected[position][1] == data:
            return position
    return None


def sounding(recording: list[dict]) -> int:
    """Notes a recording leaves on: note-ons with no later note-off nor silencing controller on the channel."""
    on: set[tuple[int, int]] = set()
    for entry in recording:
        data = entry["bytes"]
        kind, channel = data[0] & 0xF0, data[0] & 0x0F
        if kind == 0x90 and data[2] > 0:
            on.add((channel, data[1]))
        elif kind == 0x80 or kind == 0x90:
            on.discard((channel, data[1]))
        elif kind == 0xB0 and data[1] in (120, 123):
            on = {note for note in on if note[0] != channel}
    return len(on)


def play(song: Path, score, case: str, at: float, folder: Path, broker: str = "tansu") -> dict:
    parts = parts_of(score)
    topic = f"orchestra-{case}"
    with bench_broker(broker, [topic], str(folder / f"broker-{case}.log"), partitions=PARTITIONS) as broker_url:
        env = {"BROKER_URL": broker_url, "MIDI_TOPIC": topic, "MIDI_TOPIC_PARTITIONS": str(PARTITIONS),
               "MIDI_PLAYBACK": "buffered", "MIDI_PLAYOUT_DELAY": "0.5", "MIDI_OUTPUT": "port",
               "MIDO_BACKEND": "tests.recording_backend"}
        envs = [{**env, "APP_DATADIR": str(folder / f"{case}-data-{index}"),
                 "RECORDING_BACKEND_FILE": str(folder / f"{case}-{index}.rec")} for index in range(WORKERS)]
        with ExitStack() as stack:
            workers = [stack.enter_context(WorkerProcess(worker_env)) for worker_env in envs]
            left = None
            assignments = wait_for_the_split(workers, PARTITIONS, timeout=90)
            producer = threading.Thread(target=run_producer, args=(["--key-by", "channel", str(song)], env))
            producer.start()
            started = time.monotonic()
            if CASES[case] is not None:
                # The worker with the most partitions leaves, so the most parts move.
                left = max(range(WORKERS), key=lambda index: len(assignments[index]))
                time.sleep(max(0.0, started + at * score[-1][0] - time.monotonic()))
                workers[left].signal(CASES[case])
            # From every worker: the one that left may have finished a part before it went.
            found = collect_summaries(workers, len(parts), timeout=score[-1][0] + 90,
                                      done=lambda found: {summary["song"].rsplit("/ch", 1)[1] for each in found
                                                          for summary in each} >= {str(c) for c in parts})
            producer.join()
        for index, worker in enumerate(workers):
            (folder / f"{case}-worker-{index}.log").write_text("\n".join(worker.lines) + "\n")
    recordings = [read_recording(folder / f"{case}-{index}.rec") for index in range(WORKERS)]
    result = analyse(score, recordings, left)
    result["reported_handover_ms"] = sorted(summary["handover_ms"] for each in found for summary in each
                                            if summary.get("handover_ms") is not None)
    result["assignments"] = assignments
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--song", type=Path, default=DEFAULT_SONG)
    parser.add_argument("--cases", default="together,stop,kill")
    parser.add_argument("--at", type=float, default=0.4, help="when a worker leaves, as a fraction of the song")
    parser.add_argument("--smoke", action="store_true", help="the first 12 s of the song, together only")
    parser.add_argument("--broker", choices=BROKER_KINDS, default="tansu",
                        help="the embedded Tansu broker, or librdkafka's mock cluster (bench/common.py)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="midi-orchestra-"))
    song, score = args.song, mido_score(args.song)
    cases = args.cases.split(",")
    if args.smoke:
        song, cases = folder / "excerpt.mid", ["together"]
        score = write_excerpt(args.song, song, seconds=12.0)
    print(f"song: {args.song.name}, {len(score)} messages on {len(parts_of(score))} channels over "
          f"{score[-1][0]:.0f} s; {WORKERS} workers, {PARTITIONS} partitions, buffered 0.5 s; broker: {args.broker}; "
          f"files in {folder}")
    for case in cases:
        result = play(song, score, case, args.at, folder, args.broker)
        error = result["timing_error_ms"]
        print(f"{case:>8}: cross-worker timing error p50 / p99 / max {error['p50']:.2f} / {error['p99']:.2f} / "
              f"{error['max']:.2f} ms; lost {result['lost']}, repeated {result['repeated']}, extra {result['extra']}, "
              f"left sounding {result['sounding']}; handovers {result['handover_ms']} ms, resumed on the same worker "
              f"after {result['resumed_ms']} ms "
              f"(the workers said {result['reported_handover_ms']}); partitions {result['assignments']}")


def write_excerpt(source: Path, target: Path, seconds: float):
    return write_song(target, [(at, data) for at, data in mido_score(source) if at <= seconds])


if __name__ == "__main__":
    main()
