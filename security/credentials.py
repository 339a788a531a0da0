"""The security settings as Faust's ``broker_credentials`` and as aiokafka's connection arguments.

Faust hands its credentials to every aiokafka client it makes (the worker's consumer, its producer, the
client that creates topics, and so the web page's lag poll, which asks through the worker's consumer)
through ``credentials_to_aiokafka_auth`` (faust/transport/drivers/aiokafka.py). produce-midi's own
producer and admin client take what the same function makes of the same credentials, so both commands
connect alike, and a setting Faust learns to map reaches them too.

The TLS context is built here, once per process, reading the files the settings name: a file that is
missing, unreadable or not PEM stops the command in one line naming its setting.
"""
from __future__ import annotations

import os
import re
import ssl
from typing import Any

from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import CredentialsT

from config.errors import SettingsError
from config.security import BrokerSecurity, SecurityProtocol


def reason(error: BaseException) -> str:
    """An OS or OpenSSL error in words: ``No such file or directory``, ``no certificate or crl found``."""
    if isinstance(error, ssl.SSLError) and error.args and isinstance(error.args[-1], str):
        # "[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found (_ssl.c:4154)"
        return re.sub(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", error.args[-1]) or str(error)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def system_trusts_no_ca() -> bool:
    """Whether OpenSSL's default places (or SSL_CERT_FILE / SSL_CERT_DIR) hold no CA certificate at all."""
    paths = ssl.get_default_verify_paths()
    if paths.cafile and os.path.isfile(paths.cafile) and os.path.getsize(paths.cafile):
        return False
    return not (paths.capath and os.path.isdir(paths.capath) and any(os.scandir(paths.capath)))


def _encrypted_key(name: str, path: str):
    def refuse() -> str:
        # Without a password callback OpenSSL would prompt on the terminal, and hang a worker run as a service.
        raise SettingsError(f"{name}={path!r}: the key is encrypted; give it unencrypted "
                            "(openssl pkey -in KEY -out PLAIN_KEY), readable by this user only")
    return refuse


def ssl_context(security: BrokerSecurity) -> ssl.SSLContext:
    """A client TLS context verifying the broker's certificate (and its name) against MIDI_SSL_CAFILE, else
    the system's CAs; presenting MIDI_SSL_CERTFILE when set."""
    cafile = security.ssl_cafile
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except OSError as exc:  # ssl.SSLError included: not PEM, no certificate in it
        raise SettingsError(f"MIDI_SSL_CAFILE={cafile!r}: cannot read a CA certificate from it "
                            f"({reason(exc)})") from None
    if cafile is None and system_trusts_no_ca():
        raise SettingsError(f"MIDI_SSL_CAFILE is not set and this system has no CA certificates to check the "
                            f"broker's with (MIDI_SECURITY_PROTOCOL={security.protocol.value}): set it to the CA "
                            "that signed the broker's certificate")
    certfile, keyfile = security.ssl_certfile, security.ssl_keyfile
    if certfile:
        for name, path in (("MIDI_SSL_CERTFILE", certfile), ("MIDI_SSL_KEYFILE", keyfile)):
            if path is None:
                continue
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise SettingsError(f"{name}={path!r}: cannot read it ({reason(exc)})") from None
        key_setting = ("MIDI_SSL_KEYFILE", keyfile) if keyfile else ("MIDI_SSL_CERTFILE", certfile)
        try:
            context.load_cert_chain(certfile, keyfile, password=_encrypted_key(*key_setting))
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc):
                raise SettingsError(f"MIDI_SSL_KEYFILE={keyfile!r} is not the key of the certificate in "
                                    f"MIDI_SSL_CERTFILE={certfile!r}") from None
            where = (f"MIDI_SSL_CERTFILE={certfile!r} and MIDI_SSL_KEYFILE={keyfile!r}" if keyfile
                     else f"MIDI_SSL_CERTFILE={certfile!r} (no MIDI_SSL_KEYFILE: the key must be in it)")
            raise SettingsError(f"{where}: not a PEM certificate and its key ({reason(exc)})") from None
    return context


def faust_credentials(security: BrokerSecurity) -> CredentialsT | None:
    """Faust's ``broker_credentials`` for these settings; None for PLAINTEXT, Faust's default."""
    protocol = security.protocol
    if protocol is SecurityProtocol.PLAINTEXT:
        return None
    context = ssl_context(security) if protocol.uses_tls else None
    if protocol is SecurityProtocol.SSL:
        return SSLCredentials(context)
    # A context makes SASLCredentials SASL_SSL; without one it is SASL_PLAINTEXT.
    return SASLCredentials(username=security.sasl_username, password=security.sasl_password,
                           mechanism=security.sasl_mechanism.value, ssl_context=context)


def aiokafka_options(credentials: CredentialsT | None) -> dict[str, Any]:
    """The arguments an AIOKafka* client takes for ``credentials``: exactly those Faust gives its own."""
    return credentials_to_aiokafka_auth(credentials)
