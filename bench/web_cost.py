"""What the web page costs the worker's timing: the dense song played with no web server, with the page
open in headless chromium, and with a page that never reads, live and buffered, timed at the port.

Runs are interleaved (each variant once per round) so a busy spell of the machine spreads over all of
them; the spread of the runs without the web is what the others are judged against. A page that never
reads is closed by the worker's WebSocket heartbeat after about 15 s, so songs here last 12 s.

    .venv/bin/python bench/web_cost.py [--seconds S | --song FILE] [--runs N] [--modes live,buffered]
        [--broker tansu|mock]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import threading
from pathlib import Path

import aiohttp

from common import BROKER_KINDS, bench_broker, percentiles, timing_errors_ms, write_dense_song

from brokers.embedded import free_port
from harness.processes import WorkerProcess, run_producer
from tests.browser import headless_chromium, wait_until
from tests.recording_backend import read_recording
from tests.silent_client import silent_websocket
from tests.song_files import mido_score

MODES = {"live": {"MIDI_PLAYBACK": "live"},
         "buffered": {"MIDI_PLAYBACK": "buffered", "MIDI_PLAYOUT_DELAY": "0.2"}}
VARIANTS = ("no web", "page open", "page open at nice 10", "updates read by a script", "page never reads")
# The niced browser's priority: below the worker's, so it gets what CPU the worker leaves.
BROWSER_NICENESS = 10


def memory_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@contextlib.contextmanager
def script_reader(url: str):
    """Every update read as it comes, by a script in a thread of its own: the worker's side of a page
    without the browser's drawing."""
    stop = threading.Event()
    counted = []

    async def read() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket:
            while not stop.is_set():
                try:
                    await socket.receive(timeout=0.2)
                    counted.append(1)
                except asyncio.TimeoutError:
                    pass
    reader = threading.Thread(target=lambda: asyncio.run(read()), daemon=True)
    reader.start()
    try:
        yield counted
    finally:
        stop.set()
        reader.join(5)


@contextlib.contextmanager
def viewer(variant: str, worker: WorkerProcess):
    if variant.startswith("page open"):
        with headless_chromium(niceness=BROWSER_NICENESS if variant.endswith("nice 10") else 0) as browser:
            browser.get(worker.web_url)
            wait_until(lambda: browser.execute_script("return window.midiView.updates") > 0, 15, "the page live")
            yield
    elif variant == "updates read by a script":
        with script_reader(worker.web_url.replace("http", "ws") + "live") as counted:
            wait_until(lambda: counted, 15, "the first update")
            yield
    elif variant == "page never reads":
        with silent_websocket("127.0.0.1", worker.web_port):
            yield
    else:
        yield


def play_once(broker_url: str, song: Path, score, mode_env: dict, variant: str, topic: str, folder: Path) -> dict:
    recording = folder / f"{topic}.rec"
    env = {"BROKER_URL": broker_url, "MIDI_TOPIC": topic, "MIDO_BACKEND": "tests.recording_backend",
           "RECORDING_BACKEND_FILE": str(recording), "MIDI_OUTPUT": "port", "APP_DATADIR": str(folder / topic),
           **mode_env}
    web_port = None if variant == "no web" else free_port()
    with WorkerProcess(env, web_port=web_port) as worker, viewer(variant, worker):
        before = memory_kib(worker.process.pid)
        if run_producer([str(song)], env).returncode != 0:
            raise SystemExit("produce-midi failed")
        [summary] = worker.wait_for_summaries(1, timeout=60 + score[-1][0])
        after = memory_kib(worker.process.pid)
    played = read_recording(recording)[: len(score)]
    if [entry["bytes"] for entry in played] != [data for _, data in score]:
        raise SystemExit(f"{topic}: the port did not receive the score exactly")
    errors = timing_errors_ms([entry["time"] for entry in played], [t for t, _ in score])
    return {"p99": percentiles(errors)["p99"], "summary_p99": summary["timing_error_ms"]["p99"],
            "memory_growth_kib": after - before}


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--song", type=Path, help="play this MIDI file instead of the generated dense song "
                                                  "(under ~15 s for the variant of a page that never reads)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="live,buffered")
    parser.add_argument("--broker", choices=BROKER_KINDS, default="tansu")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="midi-web-cost-"))
    if args.song:
        song, score = args.song, mido_score(args.song)
    else:
        song = folder / "dense.mid"
        score = write_dense_song(song, args.seconds)
    modes = [mode for mode in MODES if mode in args.modes.split(",")]
    variants = [variant for variant in VARIANTS if variant in args.variants.split(",")]
    topics = [f"web-{mode}-{index}-{run}"
              for mode in modes for index in range(len(VARIANTS)) for run in range(args.runs)]
    print(f"song: {song.name}, {len(score)} events over {score[-1][0]:.1f} s; broker {args.broker}; "
          f"{args.runs} runs of each")
    with bench_broker(args.broker, topics) as broker_url:
        for mode in modes:
            results: dict[str, list[dict]] = {variant: [] for variant in variants}
            for run in range(args.runs):
                for index, variant in enumerate(variants):
                    result = play_once(broker_url, song, score, MODES[mode], variant,
                                       f"web-{mode}-{index}-{run}", folder)
                    results[variant].append(result)
                    print(f"{mode}, {variant}, run {run + 1}: timing error p99 {result['p99']:.2f} ms at the port "
                          f"({result['summary_p99']:.2f} in the summary), memory +{result['memory_growth_kib']} KiB",
                          flush=True)
            for variant, runs in results.items():
                print(f"{mode}, {variant}: timing error p99 min/median/max {spread([r['p99'] for r in runs])} ms; "
                      f"memory growth over the song {spread([r['memory_growth_kib'] for r in runs])} KiB")


if __name__ == "__main__":
    main()
