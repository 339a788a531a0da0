"""``make run``: the whole app once, end to end, on an embedded broker.

Starts the embedded broker and a worker, publishes the songs given (default: songs/), waits for the
worker to finish playing each one, prints how many notes were played, shuts everything down.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from embedded_broker import embedded_broker

WORKER_READY_TIMEOUT = 30.0
SONG_SUMMARY_MARK = "song summary "
HERE = Path(__file__).resolve().parent


def faust_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "faust", "-A", "midi_app", *args]


def pump_lines(stream, lines: "queue.Queue[str]") -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put("")


def wait_for(lines: "queue.Queue[str]", predicate, timeout: float, echo=lambda line: None) -> str | None:
    """The first line satisfying ``predicate`` within ``timeout`` s; None if the time or the stream ran out."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            return None
        if line == "":
            return None
        echo(line)
        if predicate(line):
            return line
    return None


def echo_worker_line(line: str) -> None:
    if any(mark in line for mark in ("WARNING", "ERROR", SONG_SUMMARY_MARK, "playing through", "status:")):
        print(f"worker | {line.split('] ', 3)[-1]}", flush=True)


def main(paths: list[str]) -> int:
    env = dict(os.environ)
    with embedded_broker(log_path=str(HERE / "demo-broker.log")) as broker_url:
        env["BROKER_URL"] = broker_url
        print(f"embedded broker at {broker_url}", flush=True)
        worker = subprocess.Popen(
            faust_command("worker", "-l", "info"), cwd=HERE, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=pump_lines, args=(worker.stdout, lines), daemon=True).start()
        try:
            started = time.monotonic()
            if wait_for(lines, lambda line: "Worker]: Ready" in line, WORKER_READY_TIMEOUT, echo_worker_line) is None:
                print(f"worker did not get ready within {WORKER_READY_TIMEOUT:.0f} s", file=sys.stderr)
                return 1
            print(f"worker ready in {time.monotonic() - started:.1f} s", flush=True)
            producer = subprocess.run(faust_command("produce-midi", *paths), cwd=HERE, env=env, text=True,
                                      stderr=subprocess.PIPE)
            sys.stderr.write(producer.stderr)
            songs = producer.stderr.count("\ndone ") + producer.stderr.startswith("done ")
            notes = 0
            for _ in range(songs):
                line = wait_for(lines, lambda line: SONG_SUMMARY_MARK in line, 30.0, echo_worker_line)
                if line is None:
                    print("worker stopped reporting before every song was played", file=sys.stderr)
                    return 1
                notes += json.loads(line.split(SONG_SUMMARY_MARK, 1)[1])["notes"]
            print(f"played {notes} notes from {songs} songs", flush=True)
            return producer.returncode
        finally:
            worker.terminate()
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["songs/"]))
