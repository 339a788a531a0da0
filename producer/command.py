"""``faust -A midi_app produce-midi``: publish MIDI files to the notes topic with the score's timing."""
from __future__ import annotations

import asyncio
import logging
import math
import sys
from functools import partial
from pathlib import Path

from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
import click
from faust.cli import AppCommand, argument, option

import midi_app
from logs.broker_log import BrokerLogFilter, broker_log_filtered, describe
from midi_app import app, settings
from config.settings import KeyBy
from models.midi_event import encode_events
from playback.realtime import take_realtime_priority
from producer.parts import WIDEST_PART_SUFFIX
from producer.passes import Passes, new_song_id, publish_passes
from producer.publish import DEFAULT_EVENTS_PER_RECORD, DeliveryFailed, ensure_topic, kafka_producer, padding
from producer.songs import find_midi_files, read_song
from producer.stopping import StopRequest
from security.credentials import aiokafka_options
from security.login import refused_login
from terminal.progress import SongProgress

# aiokafka's default, passed explicitly so the --record-size check and the producer agree. The
# producer's limit is the one that binds: Tansu accepted single records of 100 MiB when measured.
MAX_REQUEST_BYTES = 1024 * 1024
# Longest JSON a float can take, so the size check holds for any score time or clock reading.
WIDEST_FLOAT = -2.2250738585072014e-308


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class StandaloneCommand(AppCommand):
    """Runs on its own event loop, without a Faust worker around it, and exits with the code it returns.

    A producer needs no consumer group, web server or worker banner, and its exit code must say
    whether every file was published.
    """

    abstract = True

    def __call__(self, *args, **kwargs) -> None:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        try:
            code = asyncio.run(self.run(*self.args, *args, **{**self.kwargs, **kwargs}))
        except KeyboardInterrupt:
            # Ctrl-C before publishing starts, or a second one after it (the first ends the song in
            # progress properly: producer/stopping.py).
            say("interrupted")
            code = 130
        raise SystemExit(code)


async def produce(paths: list[str], bootstrap_servers: str, topic: str, *, speed_ratio: float, record_size: int,
                  passes: str = "1", key_by: KeyBy = KeyBy.SONG, broker_log: BrokerLogFilter) -> int:
    """Publish every song found in ``paths``, ``passes`` times over; returns the exit code.

    Each file is read and checked whole before any of its events is sent, so a rejected file
    publishes nothing; the other files still play, and the code is 1. A SIGINT or SIGTERM while
    publishing ends the song in progress with its end event, then the run: its code is 0 for
    ``--passes forever`` (1 if a file was rejected), else 128 + the signal, as an interrupted command's.
    """
    try:
        planned = Passes.parse(passes)
    except ValueError as exc:
        say(f"refused: {exc}")
        return 2
    files, problems = find_midi_files(paths)
    for problem in problems:
        say(f"rejected: {problem}")
    if not files:
        say("no MIDI files to publish")
        return 1
    option_problem = check_options(files, speed_ratio=speed_ratio, record_size=record_size, key_by=key_by)
    if option_problem:
        say(f"refused: {option_problem}")
        return 2
    read = partial(read_song, max_file_bytes=settings.max_file_bytes, max_song_seconds=settings.max_song_seconds,
                   max_song_events=settings.max_song_events, with_tracks=key_by is KeyBy.TRACK)
    stop = StopRequest()
    # The worker's TLS and SASL (midi_app.py), for the producer's own clients.
    security = aiokafka_options(app.conf.broker_credentials)
    refused = await refused_login(bootstrap_servers, settings.security, security)
    if refused:
        say(f"error: {refused}")
        return 2
    await ensure_topic(bootstrap_servers, topic, midi_app.notes_topic.partitions, midi_app.notes_topic.replicas,
                       timeout=settings.producer_timeout, **security)
    if settings.realtime_priority:
        # The sends' pacing is the score's timing: it, too, must not wait for a core.
        taken, line = take_realtime_priority(settings.realtime_priority)
        say(line if taken else f"warning: {line}")
    async with kafka_producer(bootstrap_servers, timeout=settings.producer_timeout,
                              max_request_size=MAX_REQUEST_BYTES, **security) as producer:
        broker_log.publishing = True
        # Until here a signal interrupts at once, as it always did: nothing has been sent.
        with stop.handling_signals(), SongProgress(sys.stderr) as view:
            run = await publish_passes(producer, topic, files, planned, stop, read=read, view=view,
                                       speed_ratio=speed_ratio, record_size=record_size, key_by=key_by)
    if stop.requested and not run.complete:
        say(run.stopped_line(stop))
        if planned.count is not None:
            return stop.exit_code
    return 1 if problems or run.rejected else 0


def largest_record_bytes(path: Path, *, speed_ratio: float, record_size: int, key_by: KeyBy = KeyBy.SONG) -> int:
    """The most bytes one record of ``path``'s song can take in a produce request, padding included.

    A record packs up to DEFAULT_EVENTS_PER_RECORD events; every field here takes its widest form,
    the key its widest part's.
    """
    key = new_song_id(path) + WIDEST_PART_SUFFIX[key_by]
    widest = [(WIDEST_FLOAT, [255, 255, 255])] * DEFAULT_EVENTS_PER_RECORD
    value = encode_events(key, settings.max_song_events, widest, sent_at=WIDEST_FLOAT,
                          speed_ratio=speed_ratio, padding=padding(record_size), song_start=WIDEST_FLOAT)
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key.encode(), value, [])


def check_options(files: list[Path], *, speed_ratio: float, record_size: int,
                  key_by: KeyBy = KeyBy.SONG) -> str | None:
    """Why the options cannot work, or None; checked before anything is sent."""
    if not 0 <= speed_ratio < math.inf:
        return f"--speed-ratio {speed_ratio}: must be 0 (as fast as possible) or a positive number"
    if record_size < 0:
        return f"--record-size {record_size}: must be 0 or more"
    longest_name = max(files, key=lambda path: len(path.name))
    size = largest_record_bytes(longest_name, speed_ratio=speed_ratio, record_size=record_size, key_by=key_by)
    if size <= MAX_REQUEST_BYTES:
        return None
    largest = record_size - (size - MAX_REQUEST_BYTES)
    while (largest > 0
           and largest_record_bytes(longest_name, speed_ratio=speed_ratio, record_size=largest,
                                    key_by=key_by) > MAX_REQUEST_BYTES):
        largest -= 1
    return (
        f"--record-size {record_size}: records would take up to {size} bytes, more than the "
        f"{MAX_REQUEST_BYTES} bytes the Kafka producer sends in one request; the largest --record-size "
        f"that fits is {max(largest, 0)}"
    )


@app.command(
    option("-b", "--bootstrap-servers", default=None,
           help="HOST:PORT[,HOST:PORT] of the Kafka brokers (default: from BROKER_URL, kafka://localhost:9092)"),
    option("-t", "--notes-topic", default=None, help="topic to publish to (default: MIDI_TOPIC, midi)"),
    option("-m", "--midi-files", multiple=True, help="a MIDI file, folder or glob (repeatable; same as PATH)"),
    option("--record-size", type=int, default=0, show_default=True,
           help="pad every record with this many random bytes"),
    option("-s", "--speed-ratio", type=float, default=1.0, show_default=True,
           help="1.1 plays 10%% slower, 0.9 faster, 0 as fast as possible"),
    # Not --loop: Faust takes any argument starting with --loop, anywhere on the command line, as the
    # name of its event loop implementation, and fails to import it.
    option("--passes", default="1", show_default=True, metavar="N|forever",
           help="play the files N times over, or until stopped (SIGINT, SIGTERM), each pass a new song"),
    option("--key-by", type=click.Choice([kind.value for kind in KeyBy]), default=None,
           help="key each song's events by the song (one partition), or each part of it, its events on one "
                "MIDI channel (SONG/ch1..16) or from one track (SONG/tr0..), by its own key, spreading the "
                "parts over the partitions (default: MIDI_KEY_BY, song)"),
    argument("paths", nargs=-1),
    base=StandaloneCommand,
)
async def produce_midi(self, bootstrap_servers, notes_topic, midi_files, record_size, speed_ratio, passes,
                       key_by, paths) -> int:
    """Publish MIDI files (files, folders or globs) to the notes topic, keeping the score's timing."""
    servers = bootstrap_servers or settings.bootstrap_servers
    with broker_log_filtered(settings.producer_timeout) as broker_log:
        try:
            return await produce(
                [*midi_files, *paths],
                servers,
                notes_topic or settings.topic,
                speed_ratio=speed_ratio,
                record_size=record_size,
                passes=passes,
                key_by=KeyBy(key_by) if key_by else settings.key_by,
                broker_log=broker_log,
            )
        except KafkaConnectionError:
            say(f"error: cannot reach the Kafka broker at {servers} (BROKER_URL or -b): "
                f"{broker_log.unreachable_reason()}")
        except DeliveryFailed as exc:
            say(f"error: broker {servers} stopped acknowledging for {settings.producer_timeout:g} s "
                f"(MIDI_PRODUCER_TIMEOUT): {exc}; the song is incomplete and nothing more was sent")
        except KafkaError as exc:
            say(f"error: broker {servers}: {describe(exc)}")
        return 2
