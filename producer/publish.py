"""Publishing songs to the notes topic, paced against absolute deadlines on the score."""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Callable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, UnknownError

from models.midi_event import encode_events
from producer.songs import Song
from timing import wait_until

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL = 1.0
# Enough to amortise the per-record cost on both ends; small enough (~10 KB) for any broker.
DEFAULT_EVENTS_PER_RECORD = 64


@dataclass
class SongReport:
    song_id: str
    events: int
    duration: float
    wall_time: float
    max_send_lag_ms: float

    def line(self) -> str:
        return (
            f"{self.song_id}: {self.events} events sent in {self.wall_time:.2f} s "
            f"(score {self.duration:.2f} s, worst send lag {self.max_send_lag_ms:.2f} ms)"
        )


async def ensure_topic(bootstrap_servers: str, name: str, partitions: int, replicas: int) -> None:
    """Create the notes topic as declared, so nothing is produced into an auto-created default."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, replicas)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()


@asynccontextmanager
async def kafka_producer(bootstrap_servers: str, **options) -> AsyncIterator[AIOKafkaProducer]:
    """An acks=all producer, idempotent where the broker allows; flushed and stopped on exit."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True, **options)
    try:
        await producer.start()
    except UnknownError:
        # Brokers without transaction support (Tansu among them) reject InitProducerId this way.
        await producer.stop()
        logger.warning("broker %s refused the idempotent producer; producing without idempotence", bootstrap_servers)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", **options)
        await producer.start()
    try:
        yield producer
        await producer.flush()
    finally:
        await producer.stop()


def padding(size: int) -> str:
    return secrets.token_hex((size + 1) // 2)[:size] if size else ""


def due_events(events, start: int, now_score: float, max_events: int) -> int:
    """Index past the events from ``start`` that are due by score time ``now_score``, at most ``max_events``."""
    end = start + 1
    limit = min(len(events), start + max_events)
    while end < limit and events[end].score_time <= now_score:
        end += 1
    return end


async def publish_song(
    producer: AIOKafkaProducer,
    topic: str,
    song: Song,
    song_id: str,
    *,
    speed_ratio: float = 1.0,
    record_size: int = 0,
    max_events_per_record: int = DEFAULT_EVENTS_PER_RECORD,
    progress: Callable[[str], None] = lambda line: None,
) -> SongReport:
    """Send every event of ``song`` at its score time (times ``speed_ratio``; 0 = at once), then the end event.

    Deadlines are absolute from the song's start, so waits never add up to drift. Events due at the
    same moment (a chord, or everything when ``speed_ratio`` is 0) share a record, up to
    ``max_events_per_record``. Returns once the broker has acknowledged every record.
    """
    key = song_id.encode()
    deliveries: list[asyncio.Future] = []
    events = song.events
    started = time.perf_counter()
    next_progress = started + PROGRESS_INTERVAL
    max_lag = 0.0

    async def send(first: int, batch: list[tuple[float, list[int]]], end: bool = False) -> None:
        value = encode_events(song_id, first, batch, sent_at=time.time(), speed_ratio=speed_ratio, end=end,
                              padding=padding(record_size))
        deliveries.append(await producer.send(topic, value, key=key))

    first = 0
    while first < len(events):
        if speed_ratio:
            deadline = started + events[first].score_time * speed_ratio
            await wait_until(deadline)
            now = time.perf_counter()
            max_lag = max(max_lag, now - deadline)
            after = due_events(events, first, (now - started) / speed_ratio, max_events_per_record)
        else:
            after = min(len(events), first + max_events_per_record)
        await send(first, [(event.score_time, event.message) for event in events[first:after]])
        first = after
        if time.perf_counter() >= next_progress:
            next_progress += PROGRESS_INTERVAL
            progress(f"{song_id}: {events[first - 1].score_time:7.2f}/{song.duration:.2f} s, {first}/{len(events)} events sent")
    await send(len(events), [(song.duration, [])], end=True)
    await asyncio.gather(*deliveries)
    return SongReport(song_id, len(events), song.duration, time.perf_counter() - started, max_lag * 1000)
