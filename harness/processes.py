"""Running the app's two commands as a user would, for ``make run``, the tests and the benchmarks."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Mapping

# The repository's root: the commands run there, as `faust -A midi_app` finds the app from it.
ROOT = Path(__file__).resolve().parent.parent
SONG_SUMMARY_MARK = "song summary "
READY_MARK = "Worker]: Ready"


def faust_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "faust", "-A", "midi_app", *args]


def stop_process(process: subprocess.Popen, timeout: float = 5.0, signum: int = signal.SIGTERM) -> int:
    """Ask a child to stop, kill it if it has not within ``timeout`` s; its exit code."""
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def parse_summary(line: str) -> dict:
    return json.loads(line.split(SONG_SUMMARY_MARK, 1)[1].strip())


class WorkerProcess:
    """``faust -A midi_app worker`` in a child process, its output lines kept for reading.

    Use as a context manager: entering starts it and waits until Faust says it is ready (unless
    ``ready_timeout`` is None); leaving sends SIGTERM (as a user's Ctrl-C would) and waits for it to stop.
    With ``web_port`` it serves its page there (web/); without, it runs ``--without-web``, as two workers
    on one machine would both want Faust's port 6066.
    """

    def __init__(self, env: Mapping[str, str], ready_timeout: float | None = 30.0,
                 echo: Callable[[str], None] = lambda line: None, cwd: Path = ROOT,
                 web_port: int | None = None) -> None:
        # From another folder (where its files, performance.wav and midi_app-data, then go), the app is
        # found through PYTHONPATH.
        self.env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.echo = echo
        self.lines: list[str] = []
        self._unread: queue.Queue[str | None] = queue.Queue()
        self.process: subprocess.Popen | None = None
        self.ready_after: float | None = None
        self.web_port = web_port

    def __enter__(self) -> "WorkerProcess":
        started = time.monotonic()
        self.process = subprocess.Popen(
            faust_command("worker", *self.web_options(), "-l", "info"), cwd=self.cwd, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        if self.ready_timeout is None:
            return self
        if self.wait_for(lambda line: READY_MARK in line, self.ready_timeout) is None:
            self.stop()
            raise RuntimeError(f"worker not ready within {self.ready_timeout:.0f} s:\n" + "\n".join(self.lines[-30:]))
        self.ready_after = time.monotonic() - started
        return self

    def web_options(self) -> list[str]:
        return ["--without-web"] if self.web_port is None else ["--web-port", str(self.web_port)]

    @property
    def web_url(self) -> str:
        """The page's address (MIDI_WEB_BIND's default, loopback)."""
        return f"http://127.0.0.1:{self.web_port}/"

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _pump(self) -> None:
        for line in self.process.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self.echo(line)
            self._unread.put(line)
        self._unread.put(None)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str | None:
        """The next unread line satisfying ``predicate``; None when the time or the output runs out."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._unread.get(timeout=remaining)
            except queue.Empty:
                return None
            if line is None:
                self._unread.put(None)
                return None
            if predicate(line):
                return line
        return None

    def wait_for_summaries(self, count: int, timeout: float) -> list[dict]:
        """The next ``count`` song summaries; raises TimeoutError naming how many came."""
        summaries = []
        deadline = time.monotonic() + timeout
        while len(summaries) < count:
            line = self.wait_for(lambda text: SONG_SUMMARY_MARK in text, deadline - time.monotonic())
            if line is None:
                # The worker's last words are what tells a stalled consumer from a slow producer.
                raise TimeoutError(f"{len(summaries)} of {count} song summaries within {timeout:.0f} s; "
                                   "the worker's last lines:\n" + "\n".join(self.lines[-40:]))
            summaries.append(parse_summary(line))
        return summaries

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int:
        return stop_process(self.process, timeout)


def run_producer(args: list[str], env: Mapping[str, str], timeout: float = 600.0,
                 echo: Callable[[str], None] = lambda line: None) -> subprocess.CompletedProcess:
    """Run ``produce-midi`` to completion, echoing its progress lines; they are kept in ``stderr``."""
    process = subprocess.Popen(faust_command("produce-midi", *args), cwd=ROOT, env={**os.environ, **env},
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        lines = []
        for line in process.stderr:
            lines.append(line)
            echo(line.rstrip("\n"))
        stdout = process.stdout.read()
        process.wait()
    finally:
        timer.cancel()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, "".join(lines))


def songs_published(producer_stderr: str) -> int:
    return sum(line.startswith("done ") for line in producer_stderr.splitlines())
