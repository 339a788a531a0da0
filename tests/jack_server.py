"""A JACK server with its dummy driver, for testing the real rtmidi path without a sound card.

JACK finds its server by name in ``JACK_DEFAULT_SERVER``, so each server gets a unique name and
cannot clash with another test run or a user's own JACK. ``JACK_NO_START_SERVER`` stops a client
from starting a server of its own when ours is not (or no longer) running.

The server runs synchronously (``--sync``): each cycle waits for every client. In JACK's default
asynchronous mode a client that misses a cycle, as one does on 2 busy cores without real-time
scheduling, has its MIDI events lost or repeated: 6,000 messages sent back to back from one process
to another arrived as 2,340-2,614 messages (452-1,575 distinct), and test_jack_port's 30 ms-spaced
song lost messages in 3 of 33 runs. With --sync all 6,000 arrived in order every time, and the
song did in 10 of 10 runs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

import pytest

from harness.processes import stop_process

JACK_BACKEND = "mido.backends.rtmidi/UNIX_JACK"
STARTUP_TIMEOUT = 10.0


def jack_accepts_clients(env: dict[str, str]) -> bool:
    """True once the server answers a client (jack_lsp lists its ports)."""
    probe = subprocess.run(["jack_lsp"], env={**os.environ, **env}, capture_output=True, timeout=10)
    return probe.returncode == 0


@contextmanager
def jack_server(log_path: str = os.devnull) -> Iterator[dict[str, str]]:
    """Start ``jackd --sync --no-realtime -d dummy``; yields the environment a JACK client needs to reach it."""
    if shutil.which("jackd") is None:
        raise RuntimeError("jackd is not installed; make test installs it (apt-get install jackd2)")
    env = {"JACK_DEFAULT_SERVER": f"midi_app_test_{uuid.uuid4().hex[:8]}", "JACK_NO_START_SERVER": "1"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(["jackd", "--sync", "--no-realtime", "-d", "dummy"],
                                   env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not jack_accepts_clients(env):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jackd did not start within {STARTUP_TIMEOUT:.0f} s (log: {log_path})")
            time.sleep(0.05)
        yield env
    finally:
        stop_process(process)


@pytest.fixture
def jack_env(tmp_path, monkeypatch) -> Iterator[dict[str, str]]:
    """A running JACK server; this test process talks to it, and so does a worker given the yielded env."""
    with jack_server(str(tmp_path / "jackd.log")) as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env
