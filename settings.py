"""Every tunable of midi_app, read once from the environment.

Each setting has an environment variable and a documented default (see the README's settings table).
Nothing else in the app reads ``os.environ`` for its own settings.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

DEFAULT_VIRTUAL_PORT_NAME = "midivirtualoutput"
OUTPUT_KINDS = ("port", "log", "null")


class SettingsError(ValueError):
    """A setting's value cannot be used; the message names the variable."""


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _number(env: Mapping[str, str], name: str, default: float, kind: type, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _output_kinds(env: Mapping[str, str]) -> tuple[str, ...]:
    kinds = tuple(part.strip() for part in _text(env, "MIDI_OUTPUT", "port").split(",") if part.strip())
    unknown = [kind for kind in kinds if kind not in OUTPUT_KINDS]
    if unknown or not kinds:
        raise SettingsError(
            f"MIDI_OUTPUT={env.get('MIDI_OUTPUT')!r}: unknown output {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(OUTPUT_KINDS)}"
        )
    return kinds


def _virtual_port(env: Mapping[str, str]) -> str | None:
    value = env.get("MIDI_VIRTUAL_PORT", "").strip()
    if value in ("", "0"):
        return None
    return DEFAULT_VIRTUAL_PORT_NAME if value == "1" else value


@dataclass(frozen=True)
class Settings:
    """The app's settings; build one with :func:`Settings.from_env`."""

    broker_url: str = "kafka://localhost:9092"
    topic: str = "midi"
    topic_partitions: int = 1
    topic_replicas: int = 1
    outputs: tuple[str, ...] = ("port",)
    output_port: str | None = None
    virtual_port: str | None = None
    # Faust asks the broker to hold a fetch for 1.5 s when no data is waiting; a broker that only
    # answers when that wait ends (Tansu) then delays every note by up to the wait.
    fetch_wait_ms: int = 5
    # Faust's defaults (60 s session, 60 s rebalance) make the first rebalance take ~50 s.
    session_timeout: float = 10.0
    rebalance_timeout: float = 10.0
    status_interval: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        return cls(
            broker_url=_text(env, "BROKER_URL", cls.broker_url),
            topic=_text(env, "MIDI_TOPIC", cls.topic),
            topic_partitions=int(_number(env, "MIDI_TOPIC_PARTITIONS", cls.topic_partitions, int, 1)),
            topic_replicas=int(_number(env, "MIDI_TOPIC_REPLICAS", cls.topic_replicas, int, 1)),
            outputs=_output_kinds(env),
            output_port=env.get("MIDI_OUTPUT_PORT", "").strip() or None,
            virtual_port=_virtual_port(env),
            fetch_wait_ms=int(_number(env, "MIDI_FETCH_WAIT_MS", cls.fetch_wait_ms, int, 0)),
            session_timeout=_number(env, "MIDI_SESSION_TIMEOUT", cls.session_timeout, float, 1),
            rebalance_timeout=_number(env, "MIDI_REBALANCE_TIMEOUT", cls.rebalance_timeout, float, 1),
            status_interval=_number(env, "MIDI_STATUS_INTERVAL", cls.status_interval, float, 0.1),
        )

    @property
    def bootstrap_servers(self) -> str:
        """``host:port[,host:port]`` for clients that take Kafka's plain form."""
        return ",".join(url.split("://", 1)[-1].rstrip("/") for url in self.broker_url.split(";"))
