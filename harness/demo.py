"""``make run``: the whole app once, end to end, on an embedded broker.

Starts the embedded broker and a worker, publishes the songs given (default: songs/), waits for the
worker to finish playing each one, prints how many notes were played, shuts everything down.
"""
from __future__ import annotations

import socket
import sys

from brokers.embedded import embedded_broker, free_port
from harness.processes import ROOT, SONG_SUMMARY_MARK, WorkerProcess, run_producer, songs_published

SONG_TIMEOUT = 60.0
WEB_PORT = 6066


def echo_worker_line(line: str) -> None:
    """Notes the worker prints, warnings, and its per-song summaries; not Faust's start-up chatter."""
    if not line.startswith("[") or any(
            mark in line for mark in ("WARNING", "ERROR", SONG_SUMMARY_MARK, "playing through", "status:")):
        print(f"worker | {line.split('] ', 3)[-1]}", flush=True)


def web_port() -> int:
    """Faust's 6066 unless something else holds it (another worker), then any free port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", WEB_PORT))
        except OSError:
            return free_port()
    return WEB_PORT


def main(paths: list[str]) -> int:
    with embedded_broker(log_path=str(ROOT / "demo-broker.log")) as broker_url:
        env = {"BROKER_URL": broker_url}
        print(f"embedded broker at {broker_url}", flush=True)
        with WorkerProcess(env, echo=echo_worker_line, web_port=web_port()) as worker:
            print(f"worker ready in {worker.ready_after:.1f} s; watch it play at {worker.web_url}", flush=True)
            producer = run_producer(paths, env, echo=lambda line: print(line, file=sys.stderr, flush=True))
            songs = songs_published(producer.stderr)
            try:
                summaries = worker.wait_for_summaries(songs, SONG_TIMEOUT * max(songs, 1))
            except TimeoutError as exc:
                print(f"the worker did not finish playing: {exc}", file=sys.stderr)
                return 1
    print(f"played {sum(summary['notes'] for summary in summaries)} notes from {songs} songs", flush=True)
    return producer.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["songs/"]))
