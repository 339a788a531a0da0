"""adjustments/app.py: the worker refuses to start on libraries its adjustments were not written for,
and only the worker changes the interpreter's GIL switch interval."""
from __future__ import annotations

from pathlib import Path

import pytest

from adjustments import app as app_module
from adjustments.tripwire import Adjustment, Touch


def test_importing_the_app_leaves_the_interpreters_gil_switch_interval_alone():
    # Only the worker switches the GIL every 0.5 ms; produce-midi and anything else importing the app
    # keep Python's own interval.
    import subprocess
    import sys

    code = "import sys; default = sys.getswitchinterval(); import midi_app; print(sys.getswitchinterval() == default)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.stdout.strip() == "True", result.stderr


def test_the_worker_switches_the_gil_every_half_millisecond():
    from adjustments.app import GIL_SWITCH_INTERVAL, MidiWorker
    import sys

    before = sys.getswitchinterval()
    try:
        from midi_app import app
        MidiWorker(app, loglevel="WARNING")
        assert sys.getswitchinterval() == GIL_SWITCH_INTERVAL
    finally:
        sys.setswitchinterval(before)


def test_every_private_name_the_adjustments_touch_exists_on_the_pinned_libraries():
    assert app_module.check(app_module.ADJUSTMENTS) is None
    assert sum(len(adjustment.touches) for adjustment in app_module.ADJUSTMENTS) >= 20


def test_a_worker_on_libraries_without_a_touched_name_refuses_to_start_in_one_line(monkeypatch):
    class Fetcher:
        """A library class as an upgrade might leave it: the method an adjustment wraps is gone."""

    moved = Adjustment("adjustments/fetch_wait.py", "fetch wait chosen per fetch",
                       (Touch(Fetcher, "_get_actions_per_node"),))
    monkeypatch.setattr(app_module, "ADJUSTMENTS", [*app_module.ADJUSTMENTS, moved])
    from midi_app import app

    with pytest.raises(SystemExit) as refused:
        app_module.MidiWorker(app, loglevel="WARNING")
    line = str(refused.value)
    assert "\n" not in line
    assert "fetch wait chosen per fetch" in line and "adjustments/fetch_wait.py" in line
    assert "Fetcher._get_actions_per_node" in line
    assert "written for faust-streaming 0.15.3, aiokafka 0.14.0" in line


def test_a_worker_whose_broker_refuses_its_tls_refuses_to_start_in_one_line(tmp_path):
    from adjustments.fetch_wait import FetchWaits
    from config.security import BrokerSecurity, SecurityProtocol
    from security.credentials import faust_credentials
    from tests.certificates import CertificateAuthority, tls_server

    right, wrong = CertificateAuthority(tmp_path / "right"), CertificateAuthority(tmp_path / "wrong", "wrong CA")
    security = BrokerSecurity(SecurityProtocol.SSL, ssl_cafile=str(wrong.cert))
    with tls_server(right.issue("broker")) as port:
        app = app_module.MidiFaustApp("refused_tls", broker=f"kafka://127.0.0.1:{port}",
                                      broker_credentials=faust_credentials(security), security=security,
                                      fetch_waits=FetchWaits(live_ms=2, idle_ms=100, catch_up_ms=500, idle_after=60))
        with pytest.raises(SystemExit) as refused:
            app_module.MidiWorker(app, loglevel="WARNING")

    assert str(refused.value) == (
        f"midi_app worker: the TLS certificate of the broker at 127.0.0.1:{port} is not signed by "
        f"MIDI_SSL_CAFILE={str(wrong.cert)!r} (unable to get local issuer certificate): set MIDI_SSL_CAFILE to "
        "the CA certificate that signed it")
