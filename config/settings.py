"""Every tunable of midi_app, read once from the environment.

Each setting has an environment variable and a documented default (see the README's settings table).
Nothing else in the app reads ``os.environ`` for its own settings.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from enum import Enum
from typing import Mapping

from config.errors import SettingsError
from config.security import BrokerSecurity

DEFAULT_VIRTUAL_PORT_NAME = "midivirtualoutput"
OUTPUT_KINDS = ("port", "log", "null", "synth", "wav", "mid")
OUTPUT_KINDS_WITH_PATH = ("wav", "mid")


class PlaybackMode(str, Enum):
    """live plays on arrival; buffered plays at song start + score time + the playout delay."""

    LIVE = "live"
    BUFFERED = "buffered"


class KeyBy(str, Enum):
    """What produce-midi keys a song's events by: the whole song, or each part of it (its events on one
    MIDI channel, or from one track of the file) as a key of its own, so the parts spread over partitions."""

    SONG = "song"
    CHANNEL = "channel"
    TRACK = "track"


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _number(env: Mapping[str, str], name: str, default: float | None, kind: type, minimum: float) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name}={raw!r} must be a finite number")
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _outputs(env: Mapping[str, str]) -> tuple[str, ...]:
    """``MIDI_OUTPUT`` as a tuple of ``kind`` or ``kind:PATH`` entries, checked."""
    raw = _text(env, "MIDI_OUTPUT", "port")
    outputs = tuple(part.strip() for part in raw.split(",") if part.strip())
    for output in outputs:
        kind, has_path, path = output.partition(":")
        if kind not in OUTPUT_KINDS:
            raise SettingsError(f"MIDI_OUTPUT={raw!r}: unknown output {kind!r}; choose from {', '.join(OUTPUT_KINDS)}")
        if (kind in OUTPUT_KINDS_WITH_PATH) != bool(has_path and path):
            form = f"{kind}:PATH" if kind in OUTPUT_KINDS_WITH_PATH else kind
            raise SettingsError(f"MIDI_OUTPUT={raw!r}: write {form!r}")
    if not outputs:
        raise SettingsError("MIDI_OUTPUT is empty; choose from " + ", ".join(OUTPUT_KINDS))
    return outputs


def _playback(env: Mapping[str, str]) -> PlaybackMode:
    mode = _text(env, "MIDI_PLAYBACK", "buffered" if env.get("MIDI_PLAYOUT_DELAY", "").strip() else "live")
    try:
        return PlaybackMode(mode)
    except ValueError:
        raise SettingsError(f"MIDI_PLAYBACK={mode!r}: choose live or buffered") from None


def _key_by(env: Mapping[str, str]) -> KeyBy:
    value = _text(env, "MIDI_KEY_BY", KeyBy.SONG.value)
    try:
        return KeyBy(value)
    except ValueError:
        raise SettingsError(f"MIDI_KEY_BY={value!r}: choose song, channel or track") from None


def _realtime_priority(env: Mapping[str, str]) -> int:
    priority = int(_number(env, "MIDI_REALTIME_PRIORITY", Settings.realtime_priority, int, 0))
    if priority > 99:
        raw = env["MIDI_REALTIME_PRIORITY"].strip()
        raise SettingsError(f"MIDI_REALTIME_PRIORITY={raw!r}: choose 1-99 (SCHED_FIFO's range), or 0 for none")
    return priority


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
    # answers when that wait ends (Tansu) then delays every note by up to the wait. Tansu returns
    # nothing at all for a wait of 0, hence the minimum of 1. Tansu's fetch cycle (the wait plus a
    # round trip) is what live timing jitters by: 2 ms kept live timing error p99 at 2.0-3.3 ms where
    # 5 ms gave up to 4.1 (bench/latency.py), for 9% of a core idle instead of 7%; 1 ms costs more
    # CPU than it saves on a 2-core machine. A Kafka broker answers as soon as data arrives anyway.
    # Buffered, notes wait for their slot anyway: the default wait is a tenth of the playout delay
    # (buffered_fetch_wait_ms), so the worker's consumer thread fetches ~50 times a second instead of
    # ~500, and holds the interpreter (the GIL) less often when a slot comes.
    fetch_wait_ms: int = 2
    # The fetch wait while the consumer is behind the broker (a backlog, or a partition Tansu takes
    # longer than fetch_wait_ms to read) and while nothing has arrived for idle_after seconds; see
    # adjustments/fetch_wait.py. A worker idle that long then fetches ~10 times a second instead of
    # ~400, and the first note after the pause waits up to idle_fetch_wait_ms on Tansu.
    catch_up_fetch_wait_ms: int = 500
    idle_fetch_wait_ms: int = 100
    idle_after: float = 60.0
    # Faust's defaults (60 s session, 60 s rebalance) make the first rebalance take ~50 s.
    session_timeout: float = 10.0
    rebalance_timeout: float = 10.0
    status_interval: float = 5.0
    # live plays on arrival; buffered plays at song start + score time + playout_delay.
    playback: PlaybackMode = PlaybackMode.LIVE
    playout_delay: float = 0.2
    # Buffered, a part is played on its producer's clock (the song_start stamp): score time 0 at the
    # stamp, each event at stamp + score time + playout_delay, so workers playing a song's parts play
    # together. A part whose first event seen is further than this (seconds) behind its slot on that
    # clock (a backlog, a song published with -s 0 before the worker started), or whose stamp is this
    # far ahead of the worker's clock, is anchored on its first event seen instead, as events without
    # a stamp are: played whole in the score's rhythm rather than all at once as late. Longer than a
    # part's handover after a SIGKILL (session_timeout + ~2 s), so a part moved mid-song stays on the
    # song's clock: its missed notes play at once, counted late, then it plays with the others again.
    playout_clock_window: float = 15.0
    # None keeps every event however late it arrives.
    max_lateness: float | None = None
    # A record (a Kafka value) longer than this is skipped unparsed as invalid; produce-midi's own
    # requests are at most this size.
    max_record_bytes: int = 1024 * 1024
    # A song with no event for this long (seconds) ends as if its end event had come: its notes are
    # released and its summary logged. Several times the producer's retry budget (producer_timeout),
    # and longer than the rests of nearly any score. 0 never ends a song that way.
    song_idle_timeout: float = 30.0
    # Limits on what produce-midi accepts, so a broken file cannot publish hours of silence.
    # max_song_events counts channel messages and, apart, meta, sysex and system messages;
    # reading stops at it, so any file within max_file_bytes is refused in seconds.
    max_file_bytes: int = 16 * 1024 * 1024
    max_song_seconds: float = 4 * 3600.0
    max_song_events: int = 1_000_000
    # None looks where the system keeps General MIDI SoundFonts.
    soundfont: str | None = None
    # FluidSynth's audio driver for the synth (alsa, pulseaudio, pipewire, jack, coreaudio...); None is
    # the library's default.
    synth_driver: str | None = None
    # produce-midi retries an unacknowledged record this long (seconds), riding out a short cut,
    # and gives up on a broker that cannot be reached or stops answering after as long.
    producer_timeout: float = 10.0
    # produce-midi's key: each song whole (in one partition), or each part of it (--key-by).
    key_by: KeyBy = KeyBy.SONG
    # The worker's web page, /metrics and /stats (web/): the address Faust's web server listens on.
    # The page shows what is played, so it is on loopback only unless asked (Faust's own default
    # is every interface); the worker's -b/--web-bind overrides it, --web-port moves it from 6066.
    web_bind: str = "127.0.0.1"
    # How often the page's updates are pushed (the piano roll scrolls smoothly in between), and how
    # many a client that reads slowly may have waiting before the oldest are dropped (and counted).
    web_interval: float = 0.1
    web_client_queue: int = 100
    # How often the end offsets of the notes topic's partitions are asked of the broker, for the lag.
    lag_interval: float = 1.0
    # TLS and SASL for every connection to the brokers, both commands' (config/security.py).
    security: BrokerSecurity = BrokerSecurity()
    # 1-99: the worker's and produce-midi's time-keeping threads run at this SCHED_FIFO priority
    # (playback/realtime.py), so nothing else on the machine holds a due note back; needs root,
    # CAP_SYS_NICE or an rtprio limit. 0 leaves them at ordinary priority.
    realtime_priority: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        playback = _playback(env)
        playout_delay = _number(env, "MIDI_PLAYOUT_DELAY", cls.playout_delay, float, 0)
        fetch_wait_ms = (cls.fetch_wait_ms if playback is PlaybackMode.LIVE
                         else buffered_fetch_wait_ms(playout_delay, cls.fetch_wait_ms))
        return cls(
            broker_url=_text(env, "BROKER_URL", cls.broker_url),
            topic=_text(env, "MIDI_TOPIC", cls.topic),
            topic_partitions=int(_number(env, "MIDI_TOPIC_PARTITIONS", cls.topic_partitions, int, 1)),
            topic_replicas=int(_number(env, "MIDI_TOPIC_REPLICAS", cls.topic_replicas, int, 1)),
            outputs=_outputs(env),
            output_port=env.get("MIDI_OUTPUT_PORT", "").strip() or None,
            virtual_port=_virtual_port(env),
            fetch_wait_ms=int(_number(env, "MIDI_FETCH_WAIT_MS", fetch_wait_ms, int, 1)),
            catch_up_fetch_wait_ms=int(_number(env, "MIDI_CATCH_UP_FETCH_WAIT_MS", cls.catch_up_fetch_wait_ms, int, 1)),
            idle_fetch_wait_ms=int(_number(env, "MIDI_IDLE_FETCH_WAIT_MS", cls.idle_fetch_wait_ms, int, 1)),
            idle_after=_number(env, "MIDI_IDLE_AFTER", cls.idle_after, float, 0),
            session_timeout=_number(env, "MIDI_SESSION_TIMEOUT", cls.session_timeout, float, 1),
            rebalance_timeout=_number(env, "MIDI_REBALANCE_TIMEOUT", cls.rebalance_timeout, float, 1),
            status_interval=_number(env, "MIDI_STATUS_INTERVAL", cls.status_interval, float, 0.1),
            playback=playback,
            playout_delay=playout_delay,
            playout_clock_window=_number(env, "MIDI_PLAYOUT_CLOCK_WINDOW", cls.playout_clock_window, float, 0),
            max_lateness=_number(env, "MIDI_MAX_LATENESS", None, float, 0),
            max_record_bytes=int(_number(env, "MIDI_MAX_RECORD_BYTES", cls.max_record_bytes, int, 1)),
            song_idle_timeout=_number(env, "MIDI_SONG_IDLE_TIMEOUT", cls.song_idle_timeout, float, 0),
            max_file_bytes=int(_number(env, "MIDI_MAX_FILE_BYTES", cls.max_file_bytes, int, 1)),
            max_song_seconds=_number(env, "MIDI_MAX_SONG_SECONDS", cls.max_song_seconds, float, 1),
            max_song_events=int(_number(env, "MIDI_MAX_SONG_EVENTS", cls.max_song_events, int, 1)),
            soundfont=env.get("MIDI_SOUNDFONT", "").strip() or None,
            synth_driver=env.get("MIDI_SYNTH_DRIVER", "").strip() or None,
            producer_timeout=_number(env, "MIDI_PRODUCER_TIMEOUT", cls.producer_timeout, float, 1),
            key_by=_key_by(env),
            web_bind=_text(env, "MIDI_WEB_BIND", cls.web_bind),
            web_interval=_number(env, "MIDI_WEB_INTERVAL", cls.web_interval, float, 0.01),
            web_client_queue=int(_number(env, "MIDI_WEB_CLIENT_QUEUE", cls.web_client_queue, int, 1)),
            lag_interval=_number(env, "MIDI_LAG_INTERVAL", cls.lag_interval, float, 0.1),
            security=BrokerSecurity.from_env(env),
            realtime_priority=_realtime_priority(env),
        )

    @property
    def bootstrap_servers(self) -> str:
        """``host:port[,host:port]`` for clients that take Kafka's plain form."""
        return bootstrap_servers(self.broker_url)


def buffered_fetch_wait_ms(playout_delay: float, live_ms: int) -> int:
    """The default fetch wait in buffered mode: a tenth of the playout delay, between the live wait and
    50 ms (a note then arrives at most ~50 ms later than it could, well inside its slot)."""
    return int(min(50, max(live_ms, playout_delay * 1000 / 10)))


def bootstrap_servers(broker_url: str) -> str:
    """Faust's ``kafka://host:port[;kafka://host:port]`` as Kafka clients' ``host:port[,host:port]``."""
    return ",".join(url.split("://", 1)[-1].rstrip("/") for url in broker_url.split(";"))
