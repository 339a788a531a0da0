"""One connection to the brokers before a command starts, to tell a refusal from an absence.

aiokafka retries a broker whose TLS handshake or SASL login fails exactly as one that is down: it logs
the cause and, having tried every bootstrap address, raises ``KafkaConnectionError("Unable to bootstrap
...")`` without it (aiokafka/client.py, ``bootstrap``). The worker waits for a broker that is down
(adjustments/patient_producer.py) and would so retry a wrong CA or password forever. A certificate that
is not trusted or a password that is refused do not come right by waiting: each command first opens one
connection the way its clients will (``aiokafka.conn.create_conn``: TCP, TLS, ApiVersions, the SASL
handshake and login) and, when a broker refuses it, stops in one line naming the setting to fix. A
broker that cannot be reached at all is left to the command's usual handling (the worker waits, the
producer gives up after MIDI_PRODUCER_TIMEOUT), and with PLAINTEXT, the default, nothing is checked.
"""
from __future__ import annotations

import asyncio
import ssl
import threading
from typing import Any

from aiokafka import errors
from aiokafka.conn import collect_hosts, create_conn

from config.security import BrokerSecurity, SecurityProtocol
from security.credentials import reason

# Long enough for a TLS handshake and a SCRAM exchange with a cluster across the world (a few round trips);
# a broker silent for longer counts as unreachable, and the command carries on as it would without the check.
LOGIN_CHECK_TIMEOUT = 5.0


def login_problem(error: BaseException, security: BrokerSecurity, address: str) -> str | None:
    """The line saying which setting to fix when the broker at ``address`` refused the connection with
    ``error``; None when ``error`` says only that the broker could not be reached."""
    protocol = f"MIDI_SECURITY_PROTOCOL={security.protocol.value}"
    if isinstance(error, ssl.SSLCertVerificationError):
        why = error.verify_message or reason(error)
        if "mismatch" in why.lower():
            return (f"the TLS certificate of the broker at {address} does not name that address ({why}): "
                    "reach it in BROKER_URL by a name its certificate holds")
        trusted = (f"MIDI_SSL_CAFILE={security.ssl_cafile!r}" if security.ssl_cafile
                   else "the system's CAs (MIDI_SSL_CAFILE is not set)")
        return (f"the TLS certificate of the broker at {address} is not signed by {trusted} ({why}): set "
                "MIDI_SSL_CAFILE to the CA certificate that signed it")
    if isinstance(error, ssl.SSLError):
        text = str(error)
        if "WRONG_VERSION_NUMBER" in text or "RECORD_LAYER_FAILURE" in text:
            return (f"the broker at {address} does not speak TLS on that port ({reason(error)}): "
                    f"check {protocol}, or the port in BROKER_URL")
        if "CERTIFICATE_REQUIRED" in text or "HANDSHAKE_FAILURE" in text:
            return (f"the broker at {address} refused the TLS handshake ({reason(error)}): it may want a client "
                    "certificate, MIDI_SSL_CERTFILE and MIDI_SSL_KEYFILE")
        return f"TLS with the broker at {address} failed ({reason(error)}): check {protocol} and MIDI_SSL_*"
    if isinstance(error, (errors.SaslAuthenticationFailed, errors.AuthenticationFailedError)):
        return (f"the broker at {address} refused the login of MIDI_SASL_USERNAME={security.sasl_username!r} "
                f"with MIDI_SASL_MECHANISM={security.sasl_mechanism.value} ({error}): check MIDI_SASL_USERNAME "
                "and MIDI_SASL_PASSWORD")
    if isinstance(error, errors.UnsupportedSaslMechanismError):
        return f"the broker at {address} does not take MIDI_SASL_MECHANISM={security.sasl_mechanism.value} ({error})"
    if isinstance(error, errors.IllegalSaslStateError):
        return f"the broker at {address} does not expect a SASL login here ({error}): check {protocol}"
    return None


async def refused_login(bootstrap_servers: str, security: BrokerSecurity, options: dict[str, Any],
                        timeout: float = LOGIN_CHECK_TIMEOUT) -> str | None:
    """Connect to the bootstrap brokers in turn with ``options`` (aiokafka's, security/credentials.py) until
    one accepts; the line naming the setting to fix if one refused and none accepted, else None (one
    accepted, or none could be reached). With PLAINTEXT nothing is checked."""
    if security.protocol is SecurityProtocol.PLAINTEXT:
        return None
    problem = None
    for host, port, _ in collect_hosts(bootstrap_servers, randomize=False):
        address = f"{host}:{port}"
        try:
            connection = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=round(timeout * 1000), **options), timeout)
        except (OSError, asyncio.TimeoutError, errors.KafkaError) as exc:
            problem = problem or login_problem(exc, security, address)
            continue
        except KeyError as exc:
            if not security.sasl_mechanism.value.startswith("SCRAM-"):
                raise
            # A SCRAM server that refuses the login ends with "e=unknown-user" (or "e=invalid-proof") where
            # its signature "v=..." would be (RFC 5802, 7); aiokafka 0.14 reads only "v" and raises
            # KeyError('v') (aiokafka/conn.py, ScramAuthenticator.process_server_final_message), which its
            # client does not catch either. Measured against the embedded Tansu with --authentication.
            refusal = errors.SaslAuthenticationFailed(f"the broker's last SCRAM message was an error, not its "
                                                      f"signature (aiokafka: KeyError {exc})")
            problem = problem or login_problem(refusal, security, address)
            continue
        connection.close()
        return None
    return problem


def check_login(bootstrap_servers: str, security: BrokerSecurity, options: dict[str, Any],
                timeout: float = LOGIN_CHECK_TIMEOUT) -> str | None:
    """``refused_login`` from code that is not running an event loop, or must not touch the one it has
    (a worker being built): on a loop of its own, in a thread of its own."""
    if security.protocol is SecurityProtocol.PLAINTEXT:
        return None
    result: list[str | None] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(refused_login(bootstrap_servers, security, options, timeout)))
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="broker login check", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
