"""``faust -A midi_app produce-midi``: publish MIDI files to the notes topic with the score's timing."""
from __future__ import annotations

import asyncio
import logging
import sys
import uuid

from aiokafka.errors import KafkaError
from faust.cli import AppCommand, argument, option

import midi_app
from midi_app import app, settings
from producer.publish import ensure_topic, kafka_producer, publish_song
from producer.songs import SongError, find_midi_files, read_song


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
            say("interrupted")
            code = 130
        raise SystemExit(code)


async def produce(paths: list[str], bootstrap_servers: str, topic: str, *, speed_ratio: float, record_size: int) -> int:
    """Publish every song found in ``paths``; returns the exit code (1 if any path was rejected)."""
    files, problems = find_midi_files(paths)
    for problem in problems:
        say(f"rejected: {problem}")
    if not files:
        say("no MIDI files to publish")
        return 1
    rejected = len(problems)
    await ensure_topic(bootstrap_servers, topic, midi_app.notes_topic.partitions, midi_app.notes_topic.replicas)
    async with kafka_producer(bootstrap_servers) as producer:
        for path in files:
            try:
                song = read_song(path)
            except SongError as exc:
                say(f"rejected: {exc}")
                rejected += 1
                continue
            song_id = f"{path.name}@{uuid.uuid4().hex[:8]}"
            say(f"playing {path} as {song_id}: {len(song.events)} events, {song.duration:.2f} s")
            report = await publish_song(
                producer, topic, song, song_id, speed_ratio=speed_ratio, record_size=record_size, progress=say,
            )
            say(f"done {report.line()}")
    return 1 if rejected else 0


@app.command(
    option("-b", "--bootstrap-servers", default=None,
           help="HOST:PORT[,HOST:PORT] of the Kafka brokers (default: from BROKER_URL, kafka://localhost:9092)"),
    option("-t", "--notes-topic", default=None, help="topic to publish to (default: MIDI_TOPIC, midi)"),
    option("-m", "--midi-files", multiple=True, help="a MIDI file, folder or glob (repeatable; same as PATH)"),
    option("--record-size", type=int, default=0, show_default=True,
           help="pad every record with this many random bytes"),
    option("-s", "--speed-ratio", type=float, default=1.0, show_default=True,
           help="1.1 plays 10%% slower, 0.9 faster, 0 as fast as possible"),
    argument("paths", nargs=-1),
    base=StandaloneCommand,
)
async def produce_midi(self, bootstrap_servers, notes_topic, midi_files, record_size, speed_ratio, paths) -> int:
    """Publish MIDI files (files, folders or globs) to the notes topic, keeping the score's timing."""
    try:
        return await produce(
            [*midi_files, *paths],
            bootstrap_servers or settings.bootstrap_servers,
            notes_topic or settings.topic,
            speed_ratio=speed_ratio,
            record_size=record_size,
        )
    except KafkaError as exc:
        say(f"error: broker {bootstrap_servers or settings.bootstrap_servers}: {exc}")
        return 2
