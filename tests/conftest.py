"""Fixtures with real parts: an embedded broker per test, a recording MIDI port, song files."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embedded_broker import embedded_broker  # noqa: E402


@pytest.fixture
def broker_url(tmp_path):
    with embedded_broker(log_path=str(tmp_path / "broker.log")) as url:
        yield url


@pytest.fixture
def recording(tmp_path) -> Path:
    """Where the recording mido backend writes what the worker's port was sent."""
    return tmp_path / "recording.jsonl"


@pytest.fixture
def worker_env(broker_url, recording, tmp_path) -> dict[str, str]:
    """Environment for a worker that plays into the recording backend's first port."""
    return {
        "BROKER_URL": broker_url,
        # Its own data directory, not the checkout's midi_app-data shared with every other worker.
        "APP_DATADIR": str(tmp_path / "worker-data"),
        "MIDO_BACKEND": "tests.recording_backend",
        "RECORDING_BACKEND_FILE": str(recording),
        "MIDI_OUTPUT": "port",
        "MIDI_STATUS_INTERVAL": "1",
    }
