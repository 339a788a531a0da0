"""Fixtures with real parts: an embedded broker per test, a recording MIDI port, song files."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from brokers.embedded import embedded_broker, free_port  # noqa: E402
from tests.fault_proxy import FaultProxy  # noqa: E402

# Fixtures that start a process: the embedded broker (broker_url, and worker_env through it; proxied_broker
# behind a fault proxy) and jackd
# (jack_env, the fixture tests/jack_server.py defines, and test_jack_port's jack_worker_env through it).
PROCESS_FIXTURES = frozenset({"broker_url", "worker_env", "jack_env", "jack_worker_env", "proxied_broker"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `integration` every test that starts a broker or jackd through a fixture.

    `make check` runs `-m "not integration"`: the tests that start no process, in seconds, so they can be
    run after every edit; `make test` still runs everything. Marking by fixture keeps a new end-to-end
    test out of the quick run without anyone remembering a marker. item.fixturenames holds the fixtures
    a test requests directly and through other fixtures, so asking for worker_env counts as asking for
    broker_url. Modules whose tests start processes themselves (embedded_broker(...), the benchmarks,
    the app's commands) carry their own `pytestmark = pytest.mark.integration`.
    """
    for item in items:
        if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def broker_url(tmp_path):
    with embedded_broker(log_path=str(tmp_path / "broker.log")) as url:
        yield url


@pytest.fixture
def proxied_broker(tmp_path):
    """A broker whose every client connection goes through a FaultProxy (tests/fault_proxy.py), for the
    broker-fault tests and the web page's; yields (url, proxy)."""
    proxy_port, broker_port = free_port(), free_port()
    with embedded_broker(broker_port, str(tmp_path / "broker.log"), advertised_port=proxy_port) as url, \
            FaultProxy(proxy_port, broker_port) as proxy:
        yield url, proxy


@pytest.fixture
def recording(tmp_path) -> Path:
    """Where the recording mido backend writes what the worker's port was sent."""
    return tmp_path / "recording.rec"


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
