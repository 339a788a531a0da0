"""The machine's own stalls: moments when no thread of the soak could run, whatever its priority.

A timing error says when a note left, not why it left late. On a virtual machine the host may take a
virtual CPU away for milliseconds (the guest counts it as steal time), and the kernel may hold a CPU
for its own work: a worker's thread at real-time priority cannot run then either, and a chord that
arrives meanwhile leaves late by that much. So the soak runs a watcher on every CPU: a thread pinned to
it at a real-time priority above every thread the soak starts (workers and producers at 10, port
processes at 11, brokers at 5), which wakes every millisecond and reports each wake-up more than
``OVER_MS`` late. Nothing in the machine but the kernel and the host can keep it from running, so
each such wake-up is a stall of that CPU, not of the app.

Measured (2026-12-01, 03:22-03:32, the project's 2-core virtual machine, beside a soak of both modes):
98 stalls over 2 ms in ten minutes, most of them 2-7 ms, bunched in some minutes and none in others,
and once both CPUs at once for 41 and 56 ms (a live chord 60 ms late, a buffered one 56 ms). Of the
ten live chords over 3 ms late while it watched, five fell in a stall.

It is not free: its thousand wake-ups a second on each CPU preempt what runs there, and on this
virtual machine a wake-up costs tens of microseconds. Beside it the buffered worker's timing error
p99 was 0.10-0.42 ms a minute, where it is 0.03-0.24 without. So the soak watches only when asked
(``--machine-stalls``); the CPUs' steal time, read from /proc/stat once a minute, costs nothing and is
always there.

    python bench/machine_stalls.py [--seconds 60]   # watch alone, and print what was seen
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

PERIOD = 0.001
OVER_MS = 2.0
PRIORITY = 50


def watch(cpu: int, over_ms: float, priority: int) -> None:
    """The watcher (a process of its own, so no other thread holds its interpreter): JSON lines on
    stdout, the first saying its priority (None: not permitted), then each late wake-up, until its
    stdout closes."""
    # Ended by its soak (SIGTERM), not by the Ctrl-C that reaches the whole process group first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.sched_setaffinity(0, {cpu})
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError):
        priority = None
    say = sys.stdout
    say.write(json.dumps({"cpu": cpu, "priority": priority}) + "\n")
    say.flush()
    over = over_ms / 1000
    last = time.perf_counter()
    try:
        while True:
            time.sleep(PERIOD)
            now = time.perf_counter()
            if now - last - PERIOD > over:
                say.write(json.dumps({"t": time.time(), "late_ms": round((now - last - PERIOD) * 1000, 2)}) + "\n")
                say.flush()
                now = time.perf_counter()  # the write is not a stall
            last = now
    except BrokenPipeError:
        pass


class MachineStalls:
    """A watcher per CPU (``watch``), started on entering and ended on leaving; :meth:`between` says what
    they saw in a stretch of wall-clock time."""

    def __init__(self, over_ms: float = OVER_MS, priority: int = PRIORITY) -> None:
        self.over_ms = over_ms
        self.priority = priority
        self.watchers: list[subprocess.Popen] = []
        self.readers: list[threading.Thread] = []
        self.stalls: list[tuple[float, float, int]] = []  # (wall time woken, ms late, cpu)
        self.realtime = True

    def __enter__(self) -> "MachineStalls":
        try:
            for cpu in sorted(os.sched_getaffinity(0)):
                watcher = subprocess.Popen(
                    [sys.executable, __file__, "--watch", str(cpu), "--over-ms", str(self.over_ms),
                     "--priority", str(self.priority)], stdout=subprocess.PIPE, text=True)
                self.watchers.append(watcher)
                first = json.loads(watcher.stdout.readline() or "{}")
                self.realtime = self.realtime and first.get("priority") is not None
                reader = threading.Thread(target=self._read, args=(cpu, watcher), daemon=True)
                reader.start()
                self.readers.append(reader)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        for watcher in self.watchers:
            watcher.terminate()
        for watcher in self.watchers:
            watcher.wait()
        for reader in self.readers:
            reader.join()

    def _read(self, cpu: int, watcher: subprocess.Popen) -> None:
        for line in watcher.stdout:
            seen = json.loads(line)
            self.stalls.append((seen["t"], seen["late_ms"], cpu))

    def start_line(self) -> str:
        where = (f"at real-time priority {self.priority}" if self.realtime else
                 "at ordinary priority (real-time not permitted: its stalls include waits for a core)")
        return (f"machine stalls: a watcher on each of {len(self.watchers)} CPUs {where} reports wake-ups more "
                f"than {self.over_ms:g} ms late")

    def between(self, start: float, end: float) -> dict:
        """The stalls that ended in [start, end) (wall clock): how many, and the longest (ms)."""
        late = [ms for at, ms, _ in list(self.stalls) if start <= at < end]
        return {"stalls": len(late), "max_ms": max(late, default=0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watch", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--over-ms", type=float, default=OVER_MS)
    parser.add_argument("--priority", type=int, default=PRIORITY)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    if args.watch is not None:
        watch(args.watch, args.over_ms, args.priority)
        return
    with MachineStalls(args.over_ms, args.priority) as machine:
        print(machine.start_line(), flush=True)
        started = time.time()
        time.sleep(args.seconds)
        seen = machine.between(started, time.time())
    print(f"{args.seconds:g} s: {seen['stalls']} stalls over {args.over_ms:g} ms, the longest {seen['max_ms']:.2f} ms")


if __name__ == "__main__":
    main()
