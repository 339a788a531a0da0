"""config/security.py: the TLS and SASL settings, each good combination read as meant, each contradiction
refused in one line naming the setting to fix."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.security import BrokerSecurity, SaslMechanism, SecurityProtocol
from config.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
LOGIN = {"MIDI_SASL_USERNAME": "alice", "MIDI_SASL_PASSWORD": "s3cret"}


def test_by_default_connections_are_plain_and_nobody_logs_in():
    security = Settings.from_env({}).security

    assert security == BrokerSecurity()
    assert security.protocol is SecurityProtocol.PLAINTEXT
    assert not security.protocol.uses_tls and not security.protocol.logs_in
    assert (security.ssl_cafile, security.ssl_certfile, security.ssl_keyfile) == (None, None, None)
    assert (security.sasl_username, security.sasl_password) == (None, None)


@pytest.mark.parametrize("env, expected", [
    ({"MIDI_SECURITY_PROTOCOL": "SSL"}, BrokerSecurity(SecurityProtocol.SSL)),
    ({"MIDI_SECURITY_PROTOCOL": "ssl", "MIDI_SSL_CAFILE": " /etc/ca.pem "},
     BrokerSecurity(SecurityProtocol.SSL, ssl_cafile="/etc/ca.pem")),
    ({"MIDI_SECURITY_PROTOCOL": "SSL", "MIDI_SSL_CAFILE": "ca.pem", "MIDI_SSL_CERTFILE": "me.pem",
      "MIDI_SSL_KEYFILE": "me.key"},
     BrokerSecurity(SecurityProtocol.SSL, ssl_cafile="ca.pem", ssl_certfile="me.pem", ssl_keyfile="me.key")),
    # A PEM file holding both the certificate and its key
    ({"MIDI_SECURITY_PROTOCOL": "SSL", "MIDI_SSL_CERTFILE": "both.pem"},
     BrokerSecurity(SecurityProtocol.SSL, ssl_certfile="both.pem")),
    ({"MIDI_SECURITY_PROTOCOL": "SASL_PLAINTEXT", **LOGIN},
     BrokerSecurity(SecurityProtocol.SASL_PLAINTEXT, sasl_mechanism=SaslMechanism.PLAIN, sasl_username="alice",
                    sasl_password="s3cret")),
    ({"MIDI_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "MIDI_SASL_MECHANISM": "scram-sha-256", **LOGIN},
     BrokerSecurity(SecurityProtocol.SASL_PLAINTEXT, sasl_mechanism=SaslMechanism.SCRAM_SHA_256,
                    sasl_username="alice", sasl_password="s3cret")),
    ({"MIDI_SECURITY_PROTOCOL": "SASL_SSL", "MIDI_SASL_MECHANISM": "SCRAM-SHA-512", **LOGIN},
     BrokerSecurity(SecurityProtocol.SASL_SSL, sasl_mechanism=SaslMechanism.SCRAM_SHA_512,
                    sasl_username="alice", sasl_password="s3cret")),
    ({"MIDI_SECURITY_PROTOCOL": "SASL_SSL", "MIDI_SSL_CAFILE": "ca.pem", **LOGIN},
     BrokerSecurity(SecurityProtocol.SASL_SSL, ssl_cafile="ca.pem", sasl_username="alice", sasl_password="s3cret")),
    # Spaces may be part of a password; a blank protocol is the default
    ({"MIDI_SECURITY_PROTOCOL": "SASL_SSL", "MIDI_SASL_USERNAME": "alice", "MIDI_SASL_PASSWORD": " pass word "},
     BrokerSecurity(SecurityProtocol.SASL_SSL, sasl_username="alice", sasl_password=" pass word ")),
    ({"MIDI_SECURITY_PROTOCOL": "  "}, BrokerSecurity()),
])
def test_each_consistent_combination_is_read_as_meant(env, expected):
    assert Settings.from_env(env).security == expected


@pytest.mark.parametrize("env, line", [
    ({"MIDI_SECURITY_PROTOCOL": "TLS"},
     "MIDI_SECURITY_PROTOCOL='TLS': choose PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
    ({"MIDI_SECURITY_PROTOCOL": "SASL_SSL", "MIDI_SASL_MECHANISM": "GSSAPI", **LOGIN},
     "MIDI_SASL_MECHANISM='GSSAPI': choose PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    ({"MIDI_SECURITY_PROTOCOL": "SASL_SSL", "MIDI_SASL_MECHANISM": "SCRAM", **LOGIN},
     "MIDI_SASL_MECHANISM='SCRAM': choose PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    ({"MIDI_SECURITY_PROTOCOL": "SASL_SSL", "MIDI_SASL_PASSWORD": "s3cret"},
     "MIDI_SASL_USERNAME is not set: MIDI_SECURITY_PROTOCOL=SASL_SSL logs in with MIDI_SASL_MECHANISM=PLAIN, "
     "which needs MIDI_SASL_USERNAME and MIDI_SASL_PASSWORD"),
    ({"MIDI_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "MIDI_SASL_MECHANISM": "SCRAM-SHA-512",
      "MIDI_SASL_USERNAME": "alice"},
     "MIDI_SASL_PASSWORD is not set: MIDI_SECURITY_PROTOCOL=SASL_PLAINTEXT logs in with "
     "MIDI_SASL_MECHANISM=SCRAM-SHA-512, which needs MIDI_SASL_USERNAME and MIDI_SASL_PASSWORD"),
    # A mechanism with a protocol that logs in with no one
    ({"MIDI_SASL_MECHANISM": "SCRAM-SHA-256"},
     "MIDI_SASL_MECHANISM is set but MIDI_SECURITY_PROTOCOL=PLAINTEXT logs in with no user: set "
     "MIDI_SECURITY_PROTOCOL to SASL_PLAINTEXT or SASL_SSL, or unset MIDI_SASL_MECHANISM"),
    ({"MIDI_SECURITY_PROTOCOL": "SSL", **LOGIN},
     "MIDI_SASL_USERNAME is set but MIDI_SECURITY_PROTOCOL=SSL logs in with no user: set "
     "MIDI_SECURITY_PROTOCOL to SASL_PLAINTEXT or SASL_SSL, or unset MIDI_SASL_USERNAME"),
    # A CA file with a protocol that uses no TLS would be silently ignored
    ({"MIDI_SSL_CAFILE": "ca.pem"},
     "MIDI_SSL_CAFILE is set but MIDI_SECURITY_PROTOCOL=PLAINTEXT uses no TLS: set MIDI_SECURITY_PROTOCOL to "
     "SSL or SASL_SSL, or unset MIDI_SSL_CAFILE"),
    ({"MIDI_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "MIDI_SSL_CERTFILE": "me.pem", **LOGIN},
     "MIDI_SSL_CERTFILE is set but MIDI_SECURITY_PROTOCOL=SASL_PLAINTEXT uses no TLS: set MIDI_SECURITY_PROTOCOL "
     "to SSL or SASL_SSL, or unset MIDI_SSL_CERTFILE"),
    ({"MIDI_SECURITY_PROTOCOL": "SSL", "MIDI_SSL_KEYFILE": "me.key"},
     "MIDI_SSL_KEYFILE is set without MIDI_SSL_CERTFILE: set the client certificate it belongs to, or unset "
     "MIDI_SSL_KEYFILE"),
])
def test_each_contradiction_is_refused_in_one_line_naming_the_setting(env, line):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert str(refused.value) == line


def test_the_password_is_not_shown_when_the_settings_are():
    settings = Settings.from_env({"MIDI_SECURITY_PROTOCOL": "SASL_SSL", **LOGIN})

    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings)
    assert "alice" in repr(settings)


@pytest.mark.integration  # runs the app's two commands (which stop before reaching for any broker)
def test_both_commands_refuse_to_start_on_a_contradiction_in_one_line():
    # Each command imports the app, which reads the settings: a bad one stops it before anything starts.
    env = {"PATH": "/usr/bin:/bin", "MIDI_SECURITY_PROTOCOL": "SASL_SSL", "MIDI_SASL_USERNAME": "alice"}
    for command in (["worker", "--without-web"], ["produce-midi", "songs/"]):
        result = subprocess.run([sys.executable, "-m", "faust", "-A", "midi_app", *command], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip() == ("midi_app: MIDI_SASL_PASSWORD is not set: MIDI_SECURITY_PROTOCOL=SASL_SSL "
                                         "logs in with MIDI_SASL_MECHANISM=PLAIN, which needs MIDI_SASL_USERNAME "
                                         "and MIDI_SASL_PASSWORD")
