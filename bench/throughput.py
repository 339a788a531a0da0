"""Burst throughput on the embedded broker: produce-midi -s 0 against plain aiokafka sending one event per
record, and the worker catching up on that backlog into MIDI_OUTPUT=null against plain aiokafka reading and
JSON-decoding the same backlog, in the same run; then where the worker's time per event goes, by stage.

    .venv/bin/python bench/throughput.py [--events N | --song FILE --copies N] [--rounds N] [--smoke]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import ratio_line, raw_produce_rate, values_from_start

from brokers.embedded import embedded_broker
from models.midi_event import decode_record, encode_events
from outputs import OutputSet
from playback.player import Player
from playback.resume import InOrderAcks, ResumePoints
from playback.song_book import SongBook
from harness.processes import WorkerProcess, run_producer
from tests.song_files import write_song

DONE_LINE = re.compile(r"^done \S+: (\d+) events sent in ([\d.]+) s", re.M)


def burst_song(path: Path, events: int) -> None:
    """Notes 1 ms apart, on and off in turn."""
    write_song(path, [(i * 0.001, [0x90 if i % 2 == 0 else 0x80, 40 + (i // 2) % 40, 90 if i % 2 == 0 else 0])
                      for i in range(events)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events of the generated burst song")
    parser.add_argument("--song", type=Path, help="publish copies of this MIDI file (a real one) instead")
    parser.add_argument("--copies", type=int, default=8, help="with --song: how many copies (songs) to publish")
    parser.add_argument("--rounds", type=int, default=3,
                        help="publish and read the backlog this many times (a topic each), for the spread")
    parser.add_argument("--smoke", action="store_true", help="a few thousand events, to check the benchmark runs")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="midi-bench-"))
    if args.song:
        songs = [folder / f"{index:03d}-{args.song.name}" for index in range(args.copies)]
        for copy in songs:
            shutil.copy(args.song, copy)
    else:
        songs = [folder / "burst.mid"]
        burst_song(songs[0], 5_000 if args.smoke else args.events)
    single_event_record = encode_events("burst.mid@0123abcd", 0, [(1.234, [0x90, 60, 90])], sent_at=time.time(),
                                        speed_ratio=0.0)

    with embedded_broker() as broker_url:
        rounds = [catch_up_round(broker_url, f"bench-app-{index}", songs, single_event_record)
                  for index in range(1 if args.smoke else args.rounds)]

    source = f"{len(songs)} copies of {args.song.name}" if args.song else "a generated burst song"
    print(f"{source}: {rounds[0].events:,} events in {len(rounds[0].values):,} records, {len(rounds)} round(s), "
          "each on a topic of its own")
    for index, result in enumerate(rounds):
        print(f"round {index + 1}: worker ready and done in {result.worker_seconds:.1f} s; lost {result.lost}")
        print(ratio_line("produce-midi -s 0 (events/s)", result.app_produce, result.raw_produce, "ev/s"))
        print(ratio_line("worker into null (events/s)", result.app_consume, result.raw_consume, "ev/s",
                         "aiokafka reading + json.loads the same backlog"))
    if len(rounds) > 1:
        print(ratio_line("median worker into null (events/s)", statistics.median(r.app_consume for r in rounds),
                         statistics.median(r.raw_consume for r in rounds), "ev/s", "aiokafka + json.loads"))
        print(f"worker/aiokafka per round: {', '.join(f'{r.app_consume / r.raw_consume:.2f}' for r in rounds)}; "
              f"median {statistics.median(r.app_consume / r.raw_consume for r in rounds):.2f}")
    print_stage_profile(rounds[-1].values, statistics.median(r.app_consume for r in rounds))


@dataclass
class Round:
    events: int
    lost: int
    app_produce: float
    raw_produce: float
    app_consume: float
    raw_consume: float
    worker_seconds: float
    values: list[bytes]


def catch_up_round(broker_url: str, topic: str, songs: list[Path], single_event_record: bytes) -> Round:
    """Publish ``songs`` with -s 0 into ``topic``, then a worker (a new consumer group starts from the topic's
    start) and plain aiokafka each read it all, one after the other."""
    env = {"BROKER_URL": broker_url, "MIDI_TOPIC": topic, "MIDI_OUTPUT": "null"}
    produced = run_producer(["-s", "0", *map(str, songs)], env)
    dones = DONE_LINE.findall(produced.stderr)
    if produced.returncode != 0 or len(dones) != len(songs):
        raise SystemExit(f"produce-midi failed:\n{produced.stderr}")
    events = sum(int(count) for count, _ in dones)
    app_produce = events / sum(float(seconds) for _, seconds in dones)
    raw_records = [single_event_record] * min(events, 200_000)
    raw_produce = asyncio.run(raw_produce_rate(broker_url, f"{topic}-raw", raw_records))

    started = time.monotonic()
    with WorkerProcess(env) as worker:
        summaries = worker.wait_for_summaries(len(songs), timeout=120 + events / 1000)
    worker_seconds = time.monotonic() - started
    first = min(summary["first_played_at"] for summary in summaries)
    last = max(summary["last_played_at"] for summary in summaries)
    app_consume = sum(summary["events"] for summary in summaries) / max(last - first, 1e-9)
    raw_consume, values = asyncio.run(raw_read_and_decode(broker_url, topic))
    return Round(events, sum(summary["lost"] for summary in summaries), app_produce, raw_produce, app_consume,
                 raw_consume, worker_seconds, values)


async def raw_read_and_decode(broker_url: str, topic: str) -> tuple[float, list[bytes]]:
    """Events/s of a plain aiokafka consumer reading ``topic`` from its start and decoding every value
    with json.loads, timed from its first record; and the values, for the stage profile."""
    values, decoded_events, started = [], 0, None
    async for value in values_from_start(broker_url, topic):
        started = started or time.perf_counter()
        decoded = json.loads(value)
        decoded_events += len(decoded) if isinstance(decoded, list) else 1
        values.append(value)
    return decoded_events / (time.perf_counter() - started), values


def print_stage_profile(values: list[bytes], app_rate: float) -> None:
    """Where the worker's time per event goes: each stage of its own work timed in-process on the same
    records, each pass adding one stage to the one before, and what is left of its measured time per
    event (Faust's delivery of the record, the acknowledgements, the table's writes through Faust's
    producer)."""
    count = sum(len(decode_record(value)[0]) for value in values)

    def per_event(work) -> float:
        """The best of three passes: the stages are told apart by differences, which noise would swamp."""
        times = []
        for _ in range(3):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        return min(times) / count * 1e6

    def decode_and_dedupe(book: SongBook) -> None:
        for value in values:
            for event in decode_record(value)[0]:
                book.arrive(event)

    def play_all(player: Player) -> None:
        acks = InOrderAcks()
        for offset, value in enumerate(values):
            player.handle(value, done=acks.track(0, lambda: None), position=(0, offset))

    def decode_all() -> None:
        for value in values:
            decode_record(value)  # not kept: a list of them all would cost collections the worker never makes

    decoding = per_event(decode_all)
    deduping = per_event(lambda: decode_and_dedupe(SongBook(ResumePoints({}))))
    playing = per_event(lambda: play_all(Player(OutputSet([]), played_seqs={})))
    total = 1e6 / app_rate
    print(f"worker, us per event: {total:.2f} in all = decoding {decoding:.2f} + dedupe {deduping - decoding:.2f}"
          f" + stats, resume points and playout {playing - deduping:.2f} (in-process, output null)"
          f" + Faust's delivery, acks and table writes {total - playing:.2f} (the rest)")


if __name__ == "__main__":
    main()
