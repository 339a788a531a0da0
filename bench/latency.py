"""Latency and timing error through the worker's MIDI output, live and buffered, on a song of dense
chords and fast runs, against plain aiokafka paced the same way, all on one embedded broker.

The app's figures are measured outside the worker: the recording mido backend stamps each message
as the port receives it, and the producer's send times are read back from the topic. The worker's
own song summary is printed beside them, to show that it agrees.

With ``--outputs``, what each other output costs the port: the song is played through the port alone,
then through the port and each kind (``synth`` on a JACK dummy server, ``wav:``, ``mid:``, ``log``,
``null``), one worker after the other on the same broker, each measured at the port.

    .venv/bin/python bench/latency.py [--seconds S | --song FILE] [--modes live,buffered]
                                      [--broker tansu|mock] [--outputs synth,wav,mid,log,null] [--smoke]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

from common import (BROKER_KINDS, RAW_FETCH_WAIT_MS, TopicTap, bench_broker, percentiles, ratio_line,
                    raw_paced_latency, timing_errors_ms, write_dense_song)

from models.midi_event import decode_record
from harness.processes import WorkerProcess, run_producer
from tests.jack_server import jack_server
from tests.recording_backend import read_recording
from tests.song_files import mido_score

MODES = {
    "live": {"MIDI_PLAYBACK": "live"},
    "buffered 0.2 s": {"MIDI_PLAYBACK": "buffered", "MIDI_PLAYOUT_DELAY": "0.2"},
}


def sent_times(values: list[bytes]) -> dict[int, float]:
    """seq -> the producer's send time, for every event in these records."""
    times: dict[int, float] = {}
    for value in values:
        for event in decode_record(value)[0]:
            times.setdefault(event.seq, event.sent_at)
    return times


def measure_app(broker_url: str, song: Path, score, mode_env: dict, folder: Path, topic: str,
                outputs: str = "port") -> tuple[dict, dict]:
    recording = folder / f"{topic}.rec"
    env = {"BROKER_URL": broker_url, "MIDI_TOPIC": topic, "MIDO_BACKEND": "tests.recording_backend",
           "RECORDING_BACKEND_FILE": str(recording), "MIDI_OUTPUT": "port", **mode_env}
    env.update({name: value for name, value in os.environ.items() if name.startswith("MIDI_")})
    env["MIDI_OUTPUT"] = outputs
    # The send times are read as the song is written: the mock cluster drops a partition's oldest records
    # past 5 MiB, so a long song's head is gone by its end.
    with WorkerProcess(env) as worker, TopicTap(broker_url, topic) as tap:
        produced = run_producer([str(song)], env)
        if produced.returncode != 0:
            raise SystemExit(f"produce-midi failed:\n{produced.stderr}")
        [summary] = worker.wait_for_summaries(1, timeout=60 + score[-1][0])
    played = read_recording(recording)[: len(score)]
    if [entry["bytes"] for entry in played] != [data for _, data in score]:
        raise SystemExit(f"{topic}: the port did not receive the score exactly")
    sent = sent_times(tap.values)
    errors = timing_errors_ms([entry["time"] for entry in played], [t for t, _ in score])
    chords: dict[float, list[float]] = {}
    for (score_time, _), entry in zip(score, played):
        chords.setdefault(score_time, []).append(entry["time"])
    outside = {
        "events": len(played),
        "latency_ms": percentiles([(entry["time"] - sent[seq]) * 1000 for seq, entry in enumerate(played)]),
        "timing_error_ms": percentiles(errors),
        # From the first to the last message of the events sharing a score time (a chord).
        "chord_spread_ms": percentiles([(max(times) - min(times)) * 1000
                                        for times in chords.values() if len(times) > 1]),
        "first_chord_error_ms": max(error for error, (score_time, _) in zip(errors, score)
                                    if score_time == score[0][0]),
    }
    return outside, summary


OUTPUT_KINDS = ("synth", "wav", "mid", "log", "null")


def output_entry(kind: str, folder: Path, topic: str) -> str:
    """``MIDI_OUTPUT`` for the port and ``kind``; file outputs write into ``folder``."""
    if kind == "port":
        return "port"
    return f"port,{kind}:{folder / topic}.{kind}" if kind in ("wav", "mid") else f"port,{kind}"


def measure_outputs(broker_url: str, song: Path, score, kinds: list[str], mode: str, folder: Path) -> None:
    """The song through the port alone, then through the port and each kind, each worker measured at the port."""
    mode_env = dict(MODES[mode])
    with ExitStack() as stack:
        if "synth" in kinds:
            if shutil.which("jackd") is None:
                print("synth: skipped, it needs an audio device and jackd is not installed (make system-deps)")
                kinds = [kind for kind in kinds if kind != "synth"]
            else:
                # The synth plays on a JACK dummy server's clock, as on a desktop's audio server.
                mode_env.update(stack.enter_context(jack_server()), MIDI_SYNTH_DRIVER="jack")
        rows = {}
        for kind in ["port", *kinds]:
            topic = f"bench-output-{kind}"
            outside, summary = measure_app(broker_url, song, score, mode_env, folder, topic,
                                           outputs=output_entry(kind, folder, topic))
            rows[kind] = outside, summary
    alone = rows["port"][0]["timing_error_ms"]["p99"]
    print(f"{mode}, measured at the port (ms): timing error p50 / p99, latency p50 / p99; the worker's own"
          " timing error p99")
    for kind, (outside, summary) in rows.items():
        error, latency = outside["timing_error_ms"], outside["latency_ms"]
        name = "port alone" if kind == "port" else f"port + {kind}"
        versus = "" if kind == "port" else f"  ({error['p99'] - alone:+.2f} ms p99 against the port alone)"
        print(f"output {name:<13} timing error {error['p50']:5.2f} / {error['p99']:5.2f}  latency "
              f"{latency['p50']:5.2f} / {latency['p99']:5.2f}  worker {summary['timing_error_ms']['p99']:5.2f}{versus}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the test song")
    parser.add_argument("--smoke", action="store_true", help="a 2 s song, to check the benchmark runs")
    parser.add_argument("--song", type=Path, help="play this MIDI file instead of the generated dense song")
    parser.add_argument("--modes", default=None, help="live, buffered or both (default both; live with --outputs)")
    parser.add_argument("--no-raw", dest="raw", action="store_false",
                        help="skip plain aiokafka paced the same way (saves one playing of the song)")
    parser.add_argument("--broker", choices=BROKER_KINDS, default="tansu",
                        help="the embedded Tansu broker, or librdkafka's mock cluster (partitions kept to 5 MiB)")
    parser.add_argument("--outputs", default=None,
                        help=f"output kinds to measure beside the port alone, of {','.join(OUTPUT_KINDS)}")
    args = parser.parse_args()
    kinds = [kind.strip() for kind in (args.outputs or "").split(",") if kind.strip()]
    if any(kind not in OUTPUT_KINDS for kind in kinds):
        parser.error(f"--outputs: choose from {','.join(OUTPUT_KINDS)}")
    modes = (args.modes or ("live" if kinds else "live,buffered")).split(",")
    folder = Path(tempfile.mkdtemp(prefix="midi-bench-"))
    if args.song:
        song, score = args.song, mido_score(args.song)
        print(f"song: {song.name}, {len(score)} events over {score[-1][0]:.1f} s; broker: {args.broker}")
    else:
        song = folder / "dense.mid"
        score = write_dense_song(song, 2.0 if args.smoke else args.seconds)
        print(f"song: {len(score)} events over {score[-1][0]:.1f} s"
              " (4-note chords every 250 ms, runs 30 ms apart, pedal)")
    topics = ["bench-raw", *(f"bench-{index}" for index in range(len(MODES))),
              *(f"bench-output-{kind}" for kind in ["port", *kinds])]
    with bench_broker(args.broker, topics) as broker_url:
        if kinds:
            for mode in MODES:
                if mode.split()[0] in modes:
                    measure_outputs(broker_url, song, score, kinds, mode, folder)
            return
        raw = asyncio.run(raw_paced_latency(broker_url, "bench-raw", score)) if args.raw else None
        for index, (mode, mode_env) in enumerate(MODES.items()):
            if mode.split()[0] not in modes:
                continue
            outside, summary = measure_app(broker_url, song, score, mode_env, folder, f"bench-{index}")
            print(f"{mode}: worker summary latency {summary['latency_ms']} timing error {summary['timing_error_ms']}"
                  f" events {summary['events']} lost {summary['lost']} late {summary['late']}")
            print(f"{mode}: measured at the port latency {outside['latency_ms']}"
                  f" timing error {outside['timing_error_ms']}")
            print(f"{mode}: chord spread {outside['chord_spread_ms']}, first chord's timing error "
                  f"{outside['first_chord_error_ms']:.2f} ms")
            for figure in ("latency_ms", "timing_error_ms"):
                for stat in ("p50", "p99"):
                    if raw is not None:
                        print(ratio_line(f"{mode} {figure} {stat}", outside[figure][stat], raw[figure][stat], "ms"))
    if raw is not None:
        print(f"raw aiokafka (one record per event, fetch wait {RAW_FETCH_WAIT_MS} ms): latency {raw['latency_ms']} "
              f"timing error {raw['timing_error_ms']}")


if __name__ == "__main__":
    main()
