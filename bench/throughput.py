"""Burst throughput on the embedded broker: produce-midi -s 0, and the worker into MIDI_OUTPUT=null,
each against plain aiokafka sending or reading one event per record in the same run.

    .venv/bin/python bench/throughput.py [--events N] [--smoke]
"""
from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from pathlib import Path

from common import ratio_line, raw_consume_rate, raw_produce_rate

from brokers.embedded import embedded_broker
from models.midi_event import encode_events
from harness.processes import WorkerProcess, run_producer
from tests.song_files import write_song

DONE_LINE = re.compile(r"^done \S+: (\d+) events sent in ([\d.]+) s", re.M)


def burst_song(path: Path, events: int) -> None:
    """Notes 1 ms apart, on and off in turn."""
    write_song(path, [(i * 0.001, [0x90 if i % 2 == 0 else 0x80, 40 + (i // 2) % 40, 90 if i % 2 == 0 else 0])
                      for i in range(events)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--smoke", action="store_true", help="a few thousand events, to check the benchmark runs")
    args = parser.parse_args()
    events = 5_000 if args.smoke else args.events
    folder = Path(tempfile.mkdtemp(prefix="midi-bench-"))
    song = folder / "burst.mid"
    burst_song(song, events)
    single_event_record = encode_events("burst.mid@0123abcd", 0, [(1.234, [0x90, 60, 90])], sent_at=time.time(),
                                        speed_ratio=0.0)

    with embedded_broker() as broker_url:
        env = {"BROKER_URL": broker_url, "MIDI_TOPIC": "bench-app", "MIDI_OUTPUT": "null"}
        produced = run_producer(["-s", "0", str(song)], env)
        done = DONE_LINE.search(produced.stderr)
        if produced.returncode != 0 or done is None:
            raise SystemExit(f"produce-midi failed:\n{produced.stderr}")
        app_produce = int(done.group(1)) / float(done.group(2))
        raw_produce = asyncio.run(raw_produce_rate(broker_url, "bench-raw", [single_event_record] * events))

        started = time.monotonic()
        with WorkerProcess(env) as worker:
            [summary] = worker.wait_for_summaries(1, timeout=120 + events / 1000)
        app_consume = summary["events"] / max(summary["last_played_at"] - summary["first_played_at"], 1e-9)
        raw_consume = asyncio.run(raw_consume_rate(broker_url, "bench-raw", events))

    print(f"{events:,} events; worker ready and done in {time.monotonic() - started:.1f} s; lost {summary['lost']}")
    print(ratio_line("produce-midi -s 0 (events/s)", app_produce, raw_produce, "ev/s"))
    print(ratio_line("worker into null (events/s)", app_consume, raw_consume, "ev/s"))


if __name__ == "__main__":
    main()
