"""security/login.py: a broker that refuses the TLS or the login gets one line naming the setting to fix; one
that cannot be reached gets none (the commands wait for it, or give up, as they always did).

The TLS refusals are real: servers on loopback with throwaway certificates. The SASL ones are the errors
aiokafka raises for a broker's answers (tests/test_tls_broker.py logs in to a real broker).
"""
from __future__ import annotations

import asyncio
import ssl

import pytest
from aiokafka import errors

from brokers.embedded import free_port
from config.security import BrokerSecurity, SaslMechanism, SecurityProtocol
from security.credentials import aiokafka_options, faust_credentials
from security.login import check_login, login_problem, refused_login
from tests.certificates import CertificateAuthority

SSL = SecurityProtocol.SSL
SCRAM = BrokerSecurity(SecurityProtocol.SASL_SSL, sasl_mechanism=SaslMechanism.SCRAM_SHA_512, sasl_username="alice",
                       sasl_password="wrong")


@pytest.fixture(scope="module")
def authorities(tmp_path_factory) -> tuple[CertificateAuthority, CertificateAuthority]:
    """The CA that signed the servers' certificates, and another."""
    return (CertificateAuthority(tmp_path_factory.mktemp("right"), "right CA"),
            CertificateAuthority(tmp_path_factory.mktemp("wrong"), "wrong CA"))


class Servers:
    """Servers on loopback, each counting its connections: TLS ones that say nothing once the handshake is
    done (no Kafka behind), and a plain one answering every request with bytes that are not TLS."""

    def __init__(self) -> None:
        self.connections = 0
        self.servers: list[asyncio.AbstractServer] = []

    async def start(self, context: ssl.SSLContext | None = None) -> int:
        async def serve(reader, writer):
            self.connections += 1
            if context is None:
                await reader.read(1)
                writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            await reader.read()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
        self.servers.append(server)
        return server.sockets[0].getsockname()[1]

    async def tls(self, ca: CertificateAuthority, sans: tuple[str, ...] = ("IP:127.0.0.1",)) -> int:
        issued = ca.issue(f"server-{len(self.servers)}", sans)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(issued.cert, issued.key)
        return await self.start(context)

    def close(self) -> None:
        for server in self.servers:
            server.close()


@pytest.fixture
async def servers():
    running = Servers()
    yield running
    running.close()


def options(security: BrokerSecurity) -> dict:
    return aiokafka_options(faust_credentials(security))


async def test_a_certificate_the_ca_file_does_not_vouch_for_names_the_ca_file(authorities, servers):
    right, wrong = authorities
    port = await servers.tls(right)
    security = BrokerSecurity(SSL, ssl_cafile=str(wrong.cert))

    line = await refused_login(f"127.0.0.1:{port}", security, options(security), timeout=2)

    assert line == (f"the TLS certificate of the broker at 127.0.0.1:{port} is not signed by "
                    f"MIDI_SSL_CAFILE={str(wrong.cert)!r} (unable to get local issuer certificate): set "
                    "MIDI_SSL_CAFILE to the CA certificate that signed it")


async def test_without_a_ca_file_the_line_says_the_systems_cas_were_asked(authorities, servers):
    port = await servers.tls(authorities[0])
    security = BrokerSecurity(SSL)

    line = await refused_login(f"127.0.0.1:{port}", security, options(security), timeout=2)

    assert "is not signed by the system's CAs (MIDI_SSL_CAFILE is not set)" in line
    assert line.endswith("set MIDI_SSL_CAFILE to the CA certificate that signed it")


async def test_a_certificate_for_another_name_says_to_reach_the_broker_by_one_it_holds(authorities, servers):
    right, _ = authorities
    port = await servers.tls(right, sans=("DNS:kafka.example.com",))
    security = BrokerSecurity(SSL, ssl_cafile=str(right.cert))

    line = await refused_login(f"127.0.0.1:{port}", security, options(security), timeout=2)

    assert line == (f"the TLS certificate of the broker at 127.0.0.1:{port} does not name that address "
                    "(IP address mismatch, certificate is not valid for '127.0.0.1'.): reach it in BROKER_URL by a "
                    "name its certificate holds")


async def test_a_broker_that_does_not_speak_tls_names_the_protocol(authorities, servers):
    port = await servers.start()
    security = BrokerSecurity(SSL, ssl_cafile=str(authorities[0].cert))

    line = await refused_login(f"127.0.0.1:{port}", security, options(security), timeout=2)

    assert line == (f"the broker at 127.0.0.1:{port} does not speak TLS on that port (wrong version number): "
                    "check MIDI_SECURITY_PROTOCOL=SSL, or the port in BROKER_URL")


async def test_a_broker_that_cannot_be_reached_or_does_not_answer_is_no_refusal(authorities, servers):
    right, _ = authorities
    silent = await servers.tls(right)  # the handshake succeeds, then no Kafka answers
    security = BrokerSecurity(SSL, ssl_cafile=str(right.cert))

    assert await refused_login(f"127.0.0.1:{free_port()}", security, options(security), timeout=2) is None
    assert await refused_login(f"127.0.0.1:{silent}", security, options(security), timeout=0.5) is None
    assert servers.connections == 1


async def test_one_address_reached_with_a_refusal_elsewhere_is_still_a_refusal_and_plaintext_checks_nothing(
        authorities, servers):
    right, wrong = authorities
    port = await servers.tls(right)
    security = BrokerSecurity(SSL, ssl_cafile=str(wrong.cert))

    line = await refused_login(f"127.0.0.1:{free_port()},127.0.0.1:{port}", security, options(security), timeout=2)
    assert line is not None and f"broker at 127.0.0.1:{port} is not signed by" in line

    plain = await servers.start()
    assert await refused_login(f"127.0.0.1:{plain}", BrokerSecurity(), {"security_protocol": "PLAINTEXT"}) is None
    await asyncio.sleep(0.1)
    assert servers.connections == 0


async def test_check_login_runs_on_a_loop_of_its_own_beside_a_running_one(authorities, servers):
    right, wrong = authorities
    port = await servers.tls(right)
    security = BrokerSecurity(SSL, ssl_cafile=str(wrong.cert))

    # Called from a coroutine: the check must not touch this loop, nor need it to run meanwhile...
    line = await asyncio.get_running_loop().run_in_executor(
        None, check_login, f"127.0.0.1:{port}", security, options(security), 2)
    assert line is not None and "MIDI_SSL_CAFILE" in line
    # ...and from plain code, as a worker being built calls it.
    assert check_login(f"127.0.0.1:{free_port()}", security, options(security), 2) is None


@pytest.mark.parametrize("error, line", [
    (errors.SaslAuthenticationFailed("Authentication failed during authentication due to invalid credentials"),
     "the broker at b:9093 refused the login of MIDI_SASL_USERNAME='alice' with MIDI_SASL_MECHANISM=SCRAM-SHA-512 "
     "([Error 58] SaslAuthenticationFailed: Authentication failed during authentication due to invalid "
     "credentials): check MIDI_SASL_USERNAME and MIDI_SASL_PASSWORD"),
    (errors.UnsupportedSaslMechanismError("Kafka broker does not support SCRAM-SHA-512 sasl mechanism. Enabled "
                                          "mechanisms are: ['PLAIN']"),
     "the broker at b:9093 does not take MIDI_SASL_MECHANISM=SCRAM-SHA-512 ([Error 33] UnsupportedSaslMechanismError: "
     "Kafka broker does not support SCRAM-SHA-512 sasl mechanism. Enabled mechanisms are: ['PLAIN'])"),
    (errors.IllegalSaslStateError(),
     "the broker at b:9093 does not expect a SASL login here ([Error 34] IllegalSaslStateError): check "
     "MIDI_SECURITY_PROTOCOL=SASL_SSL"),
    (ConnectionRefusedError(111, "Connect call failed"), None),
    (asyncio.TimeoutError(), None),
    (errors.KafkaConnectionError("Connection at b:9093 closed"), None),
])
def test_login_refusals_name_the_settings_and_absences_name_none(error, line):
    assert login_problem(error, SCRAM, "b:9093") == line
