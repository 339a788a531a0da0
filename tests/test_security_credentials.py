"""security/credentials.py: each protocol gives the Faust credentials and aiokafka arguments it should, the
TLS context trusts what MIDI_SSL_CAFILE names and presents the client certificate, and every file that
cannot be used is named in one line."""
from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials

from config.security import BrokerSecurity, SaslMechanism, SecurityProtocol
from config.settings import SettingsError
from security.credentials import aiokafka_options, faust_credentials, ssl_context
from tests.certificates import CertificateAuthority

ROOT = Path(__file__).resolve().parent.parent
SSL, SASL_PLAINTEXT, SASL_SSL = SecurityProtocol.SSL, SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


def test_plaintext_gives_faust_no_credentials_and_aiokafka_its_default():
    assert faust_credentials(BrokerSecurity()) is None
    assert aiokafka_options(None) == {"security_protocol": "PLAINTEXT"}


def test_ssl_with_a_ca_file_verifies_the_broker_against_that_ca_only(ca):
    credentials = faust_credentials(BrokerSecurity(SSL, ssl_cafile=str(ca.cert)))

    assert isinstance(credentials, SSLCredentials)
    options = aiokafka_options(credentials)
    assert set(options) == {"security_protocol", "ssl_context"}
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert context is credentials.context
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert context.cert_store_stats()["x509_ca"] == 1


def test_ssl_without_a_ca_file_trusts_the_systems_cas():
    context = aiokafka_options(faust_credentials(BrokerSecurity(SSL)))["ssl_context"]

    assert context.cert_store_stats() == ssl.create_default_context().cert_store_stats()
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_ssl_without_a_ca_file_on_a_system_that_trusts_no_ca_names_the_setting(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(empty / "none.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))

    with pytest.raises(SettingsError) as refused:
        faust_credentials(BrokerSecurity(SSL))
    assert str(refused.value) == (
        "MIDI_SSL_CAFILE is not set and this system has no CA certificates to check the broker's with "
        "(MIDI_SECURITY_PROTOCOL=SSL): set it to the CA that signed the broker's certificate")


@pytest.mark.parametrize("mechanism", list(SaslMechanism))
def test_sasl_plaintext_logs_in_with_the_mechanism_and_no_tls(mechanism):
    security = BrokerSecurity(SASL_PLAINTEXT, sasl_mechanism=mechanism, sasl_username="alice",
                              sasl_password="s3cret")
    credentials = faust_credentials(security)

    assert isinstance(credentials, SASLCredentials)
    assert aiokafka_options(credentials) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism.value,
        "sasl_plain_username": "alice", "sasl_plain_password": "s3cret", "ssl_context": None}


@pytest.mark.parametrize("mechanism", list(SaslMechanism))
def test_sasl_ssl_logs_in_with_the_mechanism_over_tls(mechanism, ca):
    security = BrokerSecurity(SASL_SSL, ssl_cafile=str(ca.cert), sasl_mechanism=mechanism,
                              sasl_username="alice", sasl_password="s3cret")
    options = aiokafka_options(faust_credentials(security))

    context = options.pop("ssl_context")
    assert options == {"security_protocol": "SASL_SSL", "sasl_mechanism": mechanism.value,
                       "sasl_plain_username": "alice", "sasl_plain_password": "s3cret"}
    assert isinstance(context, ssl.SSLContext) and context.cert_store_stats()["x509_ca"] == 1


async def test_the_client_certificate_is_presented_to_a_server_that_asks_for_one(ca):
    server_cert, client_cert = ca.issue("server"), ca.issue("client")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.cert))
    server_context.load_cert_chain(server_cert.cert, server_cert.key)
    server_context.verify_mode = ssl.CERT_REQUIRED
    peers = []

    async def greet(reader, writer):
        peers.append(writer.get_extra_info("peercert"))
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        for security, expected in (
            (BrokerSecurity(SSL, ssl_cafile=str(ca.cert), ssl_certfile=str(client_cert.cert),
                            ssl_keyfile=str(client_cert.key)), b"hello"),
            (BrokerSecurity(SSL, ssl_cafile=str(ca.cert)), b""),  # no certificate: the server hangs up
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_context(security))
            try:
                assert await reader.read() == expected
            except ssl.SSLError as exc:  # TLS 1.3: the refusal arrives as an alert on the first read
                assert expected == b"" and "CERTIFICATE_REQUIRED" in str(exc)
            writer.close()
    assert [dict(field[0] for field in peer["subject"])["commonName"] for peer in peers] == ["client"]


def test_a_certificate_and_key_in_one_file_are_read_from_it(ca, tmp_path):
    issued = ca.issue("both")
    both = tmp_path / "both.pem"
    both.write_bytes(issued.cert.read_bytes() + issued.key.read_bytes())

    assert isinstance(ssl_context(BrokerSecurity(SSL, ssl_cafile=str(ca.cert), ssl_certfile=str(both))),
                      ssl.SSLContext)


def unusable_files(ca: CertificateAuthority, folder: Path) -> list[tuple[dict, str]]:
    """(settings, the line) for each file that cannot be used."""
    garbage = folder / "garbage.pem"
    garbage.write_text("not a certificate\n")
    mine, other = ca.issue("mine"), ca.issue("other")
    encrypted = folder / "encrypted.key"
    subprocess.run(["openssl", "pkey", "-in", str(mine.key), "-aes256", "-passout", "pass:x", "-out",
                    str(encrypted)], check=True, capture_output=True)
    missing = str(folder / "missing.pem")
    return [
        ({"ssl_cafile": missing},
         f"MIDI_SSL_CAFILE={missing!r}: cannot read a CA certificate from it (No such file or directory)"),
        ({"ssl_cafile": str(garbage)},
         f"MIDI_SSL_CAFILE={str(garbage)!r}: cannot read a CA certificate from it (no certificate or crl found)"),
        ({"ssl_certfile": missing, "ssl_keyfile": str(mine.key)},
         f"MIDI_SSL_CERTFILE={missing!r}: cannot read it (No such file or directory)"),
        ({"ssl_certfile": str(mine.cert), "ssl_keyfile": missing},
         f"MIDI_SSL_KEYFILE={missing!r}: cannot read it (No such file or directory)"),
        ({"ssl_certfile": str(mine.cert), "ssl_keyfile": str(other.key)},
         f"MIDI_SSL_KEYFILE={str(other.key)!r} is not the key of the certificate in "
         f"MIDI_SSL_CERTFILE={str(mine.cert)!r}"),
        ({"ssl_certfile": str(mine.cert)},
         f"MIDI_SSL_CERTFILE={str(mine.cert)!r} (no MIDI_SSL_KEYFILE: the key must be in it): not a PEM "
         "certificate and its key (PEM lib)"),
        ({"ssl_certfile": str(mine.cert), "ssl_keyfile": str(encrypted)},
         f"MIDI_SSL_KEYFILE={str(encrypted)!r}: the key is encrypted; give it unencrypted "
         "(openssl pkey -in KEY -out PLAIN_KEY), readable by this user only"),
    ]


def test_each_file_that_cannot_be_used_is_named_in_one_line(ca, tmp_path):
    for files, line in unusable_files(ca, tmp_path):
        for protocol in (SSL, SASL_SSL):
            security = BrokerSecurity(protocol, **files, sasl_username="alice", sasl_password="s3cret")
            with pytest.raises(SettingsError) as refused:
                faust_credentials(security)
            assert str(refused.value) == line


def test_the_app_hands_faust_the_credentials_for_its_consumer_and_producer(ca):
    # What the worker's consumer (credentials_to_aiokafka_auth, as Faust's consumer thread calls it) and its
    # producer (Producer._settings_auth) are built with, from the environment the app is started in.
    code = """if True:
        import json
        from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
        from midi_app import app
        consumer = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
        producer = app.producer._settings_auth()
        print(json.dumps([{key: (value if key != "ssl_context" else value.cert_store_stats())
                           for key, value in options.items()} for options in (consumer, producer)]))
    """
    env = {"PATH": "/usr/bin:/bin", "MIDI_SECURITY_PROTOCOL": "SASL_SSL", "MIDI_SSL_CAFILE": str(ca.cert),
           "MIDI_SASL_MECHANISM": "SCRAM-SHA-256", "MIDI_SASL_USERNAME": "alice", "MIDI_SASL_PASSWORD": "s3cret"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)

    assert result.returncode == 0, result.stderr
    expected = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "alice",
                "sasl_plain_password": "s3cret", "ssl_context": {"x509": 1, "crl": 0, "x509_ca": 1}}
    assert json.loads(result.stdout) == [expected, expected]
