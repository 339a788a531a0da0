"""Kafka-compatible brokers to run on one machine: the embedded Tansu broker (embedded.py, for `make run`,
the tests and a laptop) and librdkafka's mock cluster (mock_cluster.py, for long runs). Both are commands
users run (`python -m brokers.embedded`, `python -m brokers.mock_cluster`).

Must not import the app's agents, playback, outputs or commands.
"""
from __future__ import annotations

import os
from typing import Mapping

# Both brokers answer a fetch that finds nothing new only when its wait ends (Kafka answers as soon as a
# record arrives), so a live note waits for the fetch in flight: up to the whole wait. A worker on them
# fetches with this wait instead of its default 2 ms (MIDI_FETCH_WAIT_MS), for about twice the fetches
# while a song plays. Measured (2026-11-30, real-time priority): make run on Tansu, timing error p99 per
# song 1.58-4.55 ms at 2 ms, 1.52-2.00 at 1 ms; bench/soak.py live on the mock cluster, two minutes
# each, p99 per minute 1.95, 2.07 ms at 2 ms and 1.63, 1.50 at 1 ms (worker 14% CPU against 23%).
LOCAL_FETCH_WAIT_MS = 1


def local_fetch_wait(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """MIDI_FETCH_WAIT_MS for a worker on one of these brokers, unless ``environ`` sets its own."""
    return {} if environ.get("MIDI_FETCH_WAIT_MS", "").strip() else {"MIDI_FETCH_WAIT_MS": str(LOCAL_FETCH_WAIT_MS)}
