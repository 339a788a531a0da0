"""How both commands connect to the brokers: plain, TLS, SASL or both, read once from the environment.

The settings are Kafka's own words (``security.protocol``, ``sasl.mechanism``), as a managed cluster's
connection page gives them. Settings that contradict each other refuse to start, in one line naming the
setting to fix: a CA file with a protocol that uses no TLS would be silently ignored, and a user with a
protocol that logs in with no one would leave the user wondering why the broker refuses them.
Turning them into Faust's credentials and aiokafka's arguments (which reads the files) is
``security/credentials.py``'s job.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping

from config.errors import SettingsError


class SecurityProtocol(str, Enum):
    """Kafka's ``security.protocol``: whether connections are TLS, and whether the client logs in (SASL)."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def uses_tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)

    @property
    def logs_in(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)


class SaslMechanism(str, Enum):
    """The SASL mechanisms a user name and password log in with (Faust's GSSAPI and OAUTHBEARER take other
    credentials: a Kerberos ticket, a token provider)."""

    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


TLS_SETTINGS = ("MIDI_SSL_CAFILE", "MIDI_SSL_CERTFILE", "MIDI_SSL_KEYFILE")
SASL_SETTINGS = ("MIDI_SASL_MECHANISM", "MIDI_SASL_USERNAME", "MIDI_SASL_PASSWORD")


def _choice(enum: type[Enum], name: str, raw: str) -> Enum:
    try:
        return enum(raw.upper())
    except ValueError:
        choices = [member.value for member in enum]
        raise SettingsError(f"{name}={raw!r}: choose {', '.join(choices[:-1])} or {choices[-1]}") from None


@dataclass(frozen=True)
class BrokerSecurity:
    """The security settings; build with :func:`BrokerSecurity.from_env`. Paths are as given (not read here)."""

    protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    # None trusts the system's CA certificates (a managed cluster's usually chain up to one of them).
    ssl_cafile: str | None = None
    # A client certificate, for brokers that authenticate clients by TLS; the key may be in the cert's file.
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    sasl_mechanism: SaslMechanism = SaslMechanism.PLAIN
    sasl_username: str | None = None
    # Kept out of repr, so a settings object logged or shown in a traceback does not show it.
    sasl_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "BrokerSecurity":
        def text(name: str) -> str | None:
            return env.get(name, "").strip() or None

        raw_protocol = text("MIDI_SECURITY_PROTOCOL")
        protocol = (_choice(SecurityProtocol, "MIDI_SECURITY_PROTOCOL", raw_protocol) if raw_protocol
                    else SecurityProtocol.PLAINTEXT)
        given = {name: text(name) for name in (*TLS_SETTINGS, *SASL_SETTINGS)}
        # The password as given: spaces may be part of it.
        given["MIDI_SASL_PASSWORD"] = env.get("MIDI_SASL_PASSWORD") or None
        for names, used, what, protocols in (
            (TLS_SETTINGS, protocol.uses_tls, "uses no TLS", "SSL or SASL_SSL"),
            (SASL_SETTINGS, protocol.logs_in, "logs in with no user", "SASL_PLAINTEXT or SASL_SSL"),
        ):
            stray = next((name for name in names if given[name] is not None), None)
            if stray is not None and not used:
                raise SettingsError(f"{stray} is set but MIDI_SECURITY_PROTOCOL={protocol.value} {what}: "
                                    f"set MIDI_SECURITY_PROTOCOL to {protocols}, or unset {stray}")
        if given["MIDI_SSL_KEYFILE"] and not given["MIDI_SSL_CERTFILE"]:
            raise SettingsError("MIDI_SSL_KEYFILE is set without MIDI_SSL_CERTFILE: set the client certificate "
                                "it belongs to, or unset MIDI_SSL_KEYFILE")
        mechanism = (_choice(SaslMechanism, "MIDI_SASL_MECHANISM", given["MIDI_SASL_MECHANISM"])
                     if given["MIDI_SASL_MECHANISM"] else SaslMechanism.PLAIN)
        if protocol.logs_in:
            for name in ("MIDI_SASL_USERNAME", "MIDI_SASL_PASSWORD"):
                if given[name] is None:
                    raise SettingsError(f"{name} is not set: MIDI_SECURITY_PROTOCOL={protocol.value} logs in with "
                                        f"MIDI_SASL_MECHANISM={mechanism.value}, which needs "
                                        "MIDI_SASL_USERNAME and MIDI_SASL_PASSWORD")
        return cls(
            protocol=protocol,
            ssl_cafile=given["MIDI_SSL_CAFILE"],
            ssl_certfile=given["MIDI_SSL_CERTFILE"],
            ssl_keyfile=given["MIDI_SSL_KEYFILE"],
            sasl_mechanism=mechanism,
            sasl_username=given["MIDI_SASL_USERNAME"],
            sasl_password=given["MIDI_SASL_PASSWORD"],
        )
