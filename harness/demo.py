"""``make run``: the whole app once, end to end, on an embedded broker.

Starts the embedded broker and a worker, publishes the songs given (default: songs/) with a progress
bar per song (plain lines when the output is not a terminal), waits for the worker to finish playing
each one, shuts everything down and prints a table of how every song was played, with where the
recording is. The worker's whole log goes to demo-worker.log; the console shows its warnings and what
it plays through (with ``-l debug``, all of it, Faust's start-up tables included).

    python -m harness.demo [-l info|debug] [PATH...]
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import threading
from pathlib import Path
from typing import TextIO

from brokers import local_fetch_wait
from brokers.embedded import embedded_broker, free_port
from harness.processes import WorkerProcess, run_producer, songs_published
from playback.realtime import SETTING as REALTIME_SETTING, broker_priority_below, take_realtime_priority
from terminal.progress import SongProgress
from terminal.song_table import print_song_table

SONG_TIMEOUT = 60.0
WEB_PORT = 6066
# What produce-midi prints (producer/passes.py, terminal/progress.py), read back to show its progress.
PLAYING = re.compile(r"^playing .+ as (?P<song>\S+): (?P<events>\d+) events, (?P<seconds>[\d.]+) s")
PROGRESS = re.compile(r"^(?P<song>\S+): +(?P<done_seconds>[\d.]+)/[\d.]+ s, (?P<done>\d+)/\d+ events sent")
DONE = re.compile(r"^(?P<line>(done|not sent) (?P<song>[^:\s]+):.*)$")
# A line of the worker's log: ``[2026-11-29 17:30:15,115] [2498] [WARNING] message``.
RECORD = re.compile(r"^\[[\d\- :,]+\] \[\d+\] \[(?P<level>[A-Z]+)\] (?P<message>.*)$")
SHOWN_LEVELS = {"WARNING", "ERROR", "CRITICAL"}
# Info lines that say where the music goes: the port, the synth, the file.
SHOWN_INFO = ("playing through", "recording what is played", "recording the MIDI played")
WROTE = re.compile(r"wrote (?P<seconds>[\d.]+) s of audio to (?P<path>.+?)\s*$")
# The demo shows the app at its best: where the system permits it, the worker and the producer keep time
# at this real-time priority (playback/realtime.py). A MIDI_REALTIME_PRIORITY of the user's own wins.
DEMO_REALTIME_PRIORITY = 10


class WorkerLines:
    """Chooses which of the worker's lines the console shows, and keeps them all in its log file.

    A log record's further lines (a traceback) go with it; lines of Faust's start-up tables (``+---``,
    ``| ...``) and the rest of the info chatter only with ``everything``."""

    def __init__(self, log: TextIO, show, everything: bool = False) -> None:
        self.log = log
        self.show = show
        self.everything = everything
        self.showing_record = True

    def __call__(self, line: str) -> None:
        self.log.write(line + "\n")
        if self.everything:
            self.show(f"worker | {line}")
            return
        record = RECORD.match(line)
        if record is not None:
            message = record["message"].rstrip()
            self.showing_record = record["level"] in SHOWN_LEVELS or message.startswith(SHOWN_INFO)
            if self.showing_record:
                level = "" if record["level"] == "INFO" else f"{record['level']} "
                self.show(f"worker | {level}{message}")
        elif self.showing_record and not line.startswith(("+", "|")):
            self.show(f"worker | {line}")


class ProducerLines:
    """Turns produce-midi's plain lines back into progress, for the bars."""

    def __init__(self, view: SongProgress) -> None:
        self.view = view

    def __call__(self, line: str) -> None:
        if match := PLAYING.match(line):
            self.view.started(match["song"], int(match["events"]), float(match["seconds"]), line=line)
        elif (match := PROGRESS.match(line)) and match["song"] in self.view.songs:
            self.view.advanced(match["song"], int(match["done"]), float(match["done_seconds"]))
        elif (match := DONE.match(line)) and match["song"] in self.view.songs:
            self.view.finished(match["song"], match["line"])
        else:
            self.view.say(line)


def recordings(worker_lines: list[str]) -> list[str]:
    """``/path/performance.wav: 31.9 s of audio`` for each WAV the worker wrote."""
    return [f"{match['path']}: {float(match['seconds']):.1f} s of audio"
            for line in worker_lines if (match := WROTE.search(line))]


def web_port() -> int:
    """Faust's 6066 unless something else holds it (another worker), then any free port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", WEB_PORT))
        except OSError:
            return free_port()
    return WEB_PORT


def realtime_settings() -> dict[str, str]:
    """``MIDI_REALTIME_PRIORITY`` for the demo's worker and producer if this user may take it (tried on a
    thread that then ends, so the demo itself keeps its priority); nothing if not, or if it is set already."""
    if os.environ.get(REALTIME_SETTING, "").strip():
        return {}
    permitted = []
    probe = threading.Thread(target=lambda: permitted.append(take_realtime_priority(DEMO_REALTIME_PRIORITY)[0]))
    probe.start()
    probe.join()
    return {REALTIME_SETTING: str(DEMO_REALTIME_PRIORITY)} if permitted[0] else {}


def main(paths: list[str], everything: bool = False, stream: TextIO = sys.stdout, workdir: Path | None = None) -> int:
    workdir = Path.cwd() if workdir is None else workdir
    paths = [str(Path(path).resolve()) for path in paths]
    terminal = stream.isatty()
    with open(workdir / "demo-worker.log", "w") as worker_log, SongProgress(stream, keep_finished=True) as view:
        realtime = realtime_settings()
        broker_log = str(workdir / "demo-broker.log")
        broker_priority = broker_priority_below(DEMO_REALTIME_PRIORITY if realtime else 0)
        with embedded_broker(log_path=broker_log, realtime_priority=broker_priority) as broker_url:
            # The embedded broker answers a fetch only when its wait ends (brokers/__init__.py).
            env = {"BROKER_URL": broker_url, **realtime, **local_fetch_wait()}
            view.say(f"embedded broker at {broker_url}; the worker's log: {workdir / 'demo-worker.log'}")
            with WorkerProcess(env, echo=WorkerLines(worker_log, view.say, everything), cwd=workdir,
                               web_port=web_port()) as worker:
                view.say(f"worker ready in {worker.ready_after:.1f} s; watch it play at {worker.web_url}")
                producer = run_producer(paths, env, echo=ProducerLines(view))
                songs = songs_published(producer.stderr)
                try:
                    summaries = worker.wait_for_summaries(songs, SONG_TIMEOUT * max(songs, 1))
                except TimeoutError as exc:
                    view.say(f"the worker did not finish playing: {exc}")
                    return 1
    if summaries:
        print_song_table(stream, terminal, summaries, recordings(worker.lines))
    notes = sum(summary["notes"] for summary in summaries)
    print(f"played {notes} notes from {songs} song{'' if songs == 1 else 's'}", file=stream, flush=True)
    return producer.returncode


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.demo", description=__doc__.splitlines()[0])
    parser.add_argument("-l", "--loglevel", choices=("info", "debug"), default="info",
                        help="debug shows every line the worker prints, Faust's start-up tables included")
    parser.add_argument("paths", nargs="*", default=["songs/"], help="MIDI files, folders or globs")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args(sys.argv[1:])
    sys.exit(main(arguments.paths, everything=arguments.loglevel == "debug"))
