"""midi_app: hear a Kafka cluster. The Faust app, its settings and the notes topic, declared once.

    faust -A midi_app worker                 # play what arrives on the notes topic
    faust -A midi_app produce-midi songs/    # publish MIDI files with the score's timing
"""
from __future__ import annotations

from adjustments.fetch_wait import FetchWaits
from config.settings import Settings, SettingsError
from adjustments.app import MidiFaustApp
from adjustments.raw_table_keys import with_raw_keys
from models.resume_point import ResumePoint
from security.credentials import faust_credentials

try:
    settings = Settings.from_env()
    # TLS and SASL for every client Faust makes (config/security.py); the CA and client certificate are read here.
    broker_credentials = faust_credentials(settings.security)
except SettingsError as exc:
    raise SystemExit(f"midi_app: {exc}") from None

app = MidiFaustApp(
    "midi_app",
    broker=settings.broker_url,
    broker_credentials=broker_credentials,
    security=settings.security,
    fetch_waits=FetchWaits(live_ms=settings.fetch_wait_ms, idle_ms=settings.idle_fetch_wait_ms,
                           catch_up_ms=settings.catch_up_fetch_wait_ms, idle_after=settings.idle_after),
    # A new worker group starts at the beginning of what the topic holds, so no song is missed.
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=settings.session_timeout,
    broker_rebalance_timeout=settings.rebalance_timeout,
    broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
    topic_disable_leader=True,
    # Faust waits, before a rebalance may go on (and while stopping), for every record it handed the
    # agent to be acknowledged: a buffered backlog acknowledges its records only as they play, so a
    # rebalance waited for all of it, past the rebalance timeout. The agent lets the revoked partitions'
    # queued songs go instead, unacknowledged (agents/player.py), and the table tells their next owner
    # where to resume.
    stream_wait_empty=False,
    # The table's changelog is replicated as the notes topic is: Faust's default of 1 could not be written
    # with acks from all replicas on a cluster whose min.insync.replicas is 2 (docker-compose.yml's cluster).
    topic_replication_factor=settings.topic_replicas,
    # Only the worker serves the web (--without-web skips it); on loopback unless MIDI_WEB_BIND or -b says.
    web_enabled=False,
    web_bind=settings.web_bind,
    realtime_priority=settings.realtime_priority,
)

# Records travel as raw bytes and are decoded by models.midi_event.decode_record, so one bad record
# is counted and skipped instead of crashing the agent, as Faust's own decoding would.
notes_topic = app.topic(
    settings.topic,
    value_type=bytes,
    value_serializer="raw",
    key_serializer="raw",
    partitions=settings.topic_partitions,
    replicas=settings.topic_replicas,
    # Faust creates only internal topics at start-up; without this, a worker started before any
    # producer would subscribe to a topic the broker then auto-creates with its own defaults.
    internal=True,
)

# Per song, the seq of the last event played (the end event's once the song finished), written
# after the record holding it was played, with when and by which worker (models/resume_point.py;
# older workers' bare ints still read). Its changelog topic outlives a worker killed without
# warning, so the worker that takes over skips what was already played and reports the handover.
played_seqs = with_raw_keys(app.Table(
    "played_seqs",
    key_type=str,
    value_type=ResumePoint,
    partitions=settings.topic_partitions,
    # The changelog partition comes from the song key, as the notes topic's does (its raw bytes:
    # adjustments/raw_table_keys.py), so buffered playback can write from the song's own task, outside
    # the agent's iteration, and the worker given a song's notes partition holds its resume point.
    use_partitioner=True,
))

import agents.player  # noqa: E402,F401  (registers the agent on the app)
import producer.command  # noqa: E402,F401  (registers produce-midi)
