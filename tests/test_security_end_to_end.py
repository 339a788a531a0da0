"""TLS and SASL end to end, with the two commands run as a user runs them.

TLS: the embedded broker (Tansu) behind a TLS proxy with a certificate from a throwaway CA made here
(tests/tls_proxy.py says why a proxy: Tansu 0.6.0 serves no TLS itself); produce-midi and the worker publish
and play a song over it, and with the wrong CA each stops in one line naming MIDI_SSL_CAFILE, within
seconds, without a traceback. SASL: Tansu with --authentication refuses every SCRAM login (no user can be
created on it), and each command stops in one line naming the user and password settings."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from brokers.embedded import embedded_broker, free_port
from harness.processes import WorkerProcess, run_producer
from tests.certificates import CertificateAuthority
from tests.tls_proxy import TlsProxy
from tests.recording_backend import read_recording
from tests.song_files import every_kind_timeline, write_song

pytestmark = pytest.mark.integration

WORKER_READY_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def authorities(tmp_path_factory) -> tuple[CertificateAuthority, CertificateAuthority]:
    """The CA that signs the broker's certificate, and another."""
    return (CertificateAuthority(tmp_path_factory.mktemp("right"), "right CA"),
            CertificateAuthority(tmp_path_factory.mktemp("wrong"), "wrong CA"))


@contextmanager
def broker_behind_tls(port: int, issued, log_path: str, authentication: bool = False) -> Iterator[str]:
    """The embedded broker, reached through TLS on ``port``; yields its URL."""
    broker_port = free_port()
    with embedded_broker(broker_port, log_path, advertised_port=port, authentication=authentication) as url, \
            TlsProxy(port, broker_port, issued):
        yield url


@pytest.fixture
def tls_broker(tmp_path, authorities) -> str:
    issued = authorities[0].issue("broker", ("IP:127.0.0.1", "DNS:localhost"))
    with broker_behind_tls(free_port(), issued, str(tmp_path / "broker.log")) as url:
        yield url


def refusal(url: str, wrong_ca) -> str:
    address = url.split("://", 1)[1]
    return (f"the TLS certificate of the broker at {address} is not signed by MIDI_SSL_CAFILE={str(wrong_ca)!r} "
            "(unable to get local issuer certificate): set MIDI_SSL_CAFILE to the CA certificate that signed it")


def tls_env(url: str, cafile, tmp_path, recording) -> dict[str, str]:
    return {
        "BROKER_URL": url,
        "MIDI_SECURITY_PROTOCOL": "SSL",
        "MIDI_SSL_CAFILE": str(cafile),
        "APP_DATADIR": str(tmp_path / "worker-data"),
        "MIDO_BACKEND": "tests.recording_backend",
        "RECORDING_BACKEND_FILE": str(recording),
        "MIDI_OUTPUT": "port",
        "MIDI_STATUS_INTERVAL": "1",
    }


def test_a_song_is_published_and_played_over_tls(tls_broker, authorities, tmp_path):
    recording = tmp_path / "recording.rec"
    env = tls_env(tls_broker, authorities[0].cert, tmp_path, recording)
    score = write_song(tmp_path / "over_tls.mid", every_kind_timeline(seconds=2.0))

    with WorkerProcess(env, ready_timeout=WORKER_READY_TIMEOUT) as worker:
        result = run_producer([str(tmp_path / "over_tls.mid")], env, timeout=60)
        assert result.returncode == 0, result.stderr
        [summary] = worker.wait_for_summaries(1, timeout=60)

    assert (summary["events"], summary["expected"], summary["lost"]) == (len(score), len(score), 0)
    assert summary["duplicates"] == 0 and summary["ended"] == "end event"
    played = [entry["bytes"] for entry in read_recording(recording)]
    assert played[: len(score)] == [data for _, data in score]


def test_with_the_wrong_ca_each_command_stops_in_one_line_naming_the_ca_file(tls_broker, authorities, tmp_path):
    recording = tmp_path / "recording.rec"
    wrong = authorities[1].cert
    env = tls_env(tls_broker, wrong, tmp_path, recording)
    line = refusal(tls_broker, wrong)
    write_song(tmp_path / "never.mid", every_kind_timeline(seconds=1.0))

    started = time.monotonic()
    result = run_producer([str(tmp_path / "never.mid")], env, timeout=60)
    producer_took = time.monotonic() - started
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {line}"]
    assert producer_took < 10, f"produce-midi took {producer_took:.1f} s to give up"

    started = time.monotonic()
    with WorkerProcess(env, ready_timeout=None) as worker:
        code = worker.process.wait(timeout=30)
        worker_took = time.monotonic() - started
        time.sleep(0.2)  # the output pump's last lines
    assert code == 1
    assert [text for text in worker.lines if text.strip()] == [f"midi_app worker: {line}"]
    assert worker_took < 15, f"the worker took {worker_took:.1f} s to stop"


def test_a_worker_waiting_for_its_broker_stops_in_one_line_once_the_broker_refuses_its_tls(authorities, tmp_path):
    port = free_port()
    url = f"kafka://127.0.0.1:{port}"
    wrong = authorities[1].cert
    issued = authorities[0].issue("late-broker", ("IP:127.0.0.1",))

    with WorkerProcess(tls_env(url, wrong, tmp_path, tmp_path / "recording.rec"), ready_timeout=None) as worker:
        assert worker.wait_for(lambda text: "cannot reach the Kafka broker" in text, 30), "\n".join(worker.lines)
        with broker_behind_tls(port, issued, str(tmp_path / "broker.log")):
            started = time.monotonic()
            code = worker.process.wait(timeout=30)
            took = time.monotonic() - started
        time.sleep(0.2)
    assert code == 1
    said = [text for text in worker.lines if text.strip()]
    assert said[-1] == f"midi_app worker: {refusal(url, wrong)}"
    assert not any("Traceback" in text for text in said), "\n".join(said)
    assert took < 15, f"the worker took {took:.1f} s to stop once the broker was up"


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_a_refused_login_stops_each_command_in_one_line_naming_the_user_and_password(protocol, authorities,
                                                                                      tmp_path):
    port = free_port()
    issued = authorities[0].issue("sasl-broker", ("IP:127.0.0.1",))
    log = str(tmp_path / "broker.log")
    with (broker_behind_tls(port, issued, log, authentication=True) if protocol == "SASL_SSL"
          else embedded_broker(port, log, authentication=True)) as url:
        env = {**tls_env(url, authorities[0].cert, tmp_path, tmp_path / "recording.rec"),
               "MIDI_SECURITY_PROTOCOL": protocol, "MIDI_SASL_MECHANISM": "SCRAM-SHA-512",
               "MIDI_SASL_USERNAME": "alice", "MIDI_SASL_PASSWORD": "s3cret"}
        if protocol == "SASL_PLAINTEXT":
            del env["MIDI_SSL_CAFILE"]
        line = (f"the broker at 127.0.0.1:{port} refused the login of MIDI_SASL_USERNAME='alice' with "
                "MIDI_SASL_MECHANISM=SCRAM-SHA-512 ([Error 58] SaslAuthenticationFailed: the broker's last SCRAM "
                "message was an error, not its signature (aiokafka: KeyError 'v')): check MIDI_SASL_USERNAME and "
                "MIDI_SASL_PASSWORD")
        write_song(tmp_path / "never.mid", every_kind_timeline(seconds=1.0))

        result = run_producer([str(tmp_path / "never.mid")], env, timeout=60)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [f"error: {line}"]

        with WorkerProcess(env, ready_timeout=None) as worker:
            code = worker.process.wait(timeout=30)
            time.sleep(0.2)
        assert code == 1
        assert [text for text in worker.lines if text.strip()] == [f"midi_app worker: {line}"]
