"""Publishing songs to the notes topic, paced against absolute deadlines on the score."""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import AsyncIterator, Callable

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, UnknownError

from logs.broker_log import describe
from models.midi_event import encode_events
from producer.parts import PartRecord, SongParts
from producer.songs import Song
from config.settings import KeyBy, Settings
from playback.timing import wait_until

logger = logging.getLogger(__name__)

# Enough to amortise the per-record cost on both ends; small enough (~43 KB, at most ~50 KB) for any
# broker. Faust's delivery costs ~200 µs a record: with 64 events a record a worker caught up on a
# backlog at 0.55x plain aiokafka's speed, with 256 at 1.05x (bench/throughput.py, 8 copies of
# keep_on_rolling.mid). Live, a record holds one chord, far fewer.
DEFAULT_EVENTS_PER_RECORD = 256
# aiokafka's default (100 ms) retries a refused connection ten times a second, logging each attempt.
RETRY_BACKOFF_MS = 250
# How long a producer abandoned after an error may take to close.
ABANDON_GRACE = 1.0
# A wait for an event's deadline watches for a stop until this long before it, then waits precisely;
# more than timing.wait_until's own margins, so the precise part is never cut short.
STOP_WATCH_MARGIN = 0.005


class DeliveryFailed(Exception):
    """The broker did not acknowledge some events of a song in time: the song is incomplete on the topic."""


@dataclass
class SongReport:
    song_id: str
    events: int  # sent, and counted by the end event: fewer than song_events when stopped early
    song_events: int
    duration: float
    wall_time: float
    max_send_lag_ms: float
    # Keys the song was published under: 1 keyed by song, else its parts that sent something.
    parts: int = 1

    @property
    def stopped_early(self) -> bool:
        return self.events < self.song_events

    def line(self) -> str:
        sent = f"{self.events} of {self.song_events} events" if self.stopped_early else f"{self.events} events"
        parts = f", {self.parts} parts" if self.parts > 1 else ""
        return (
            f"{self.song_id}: {sent} sent in {self.wall_time:.2f} s "
            f"(score {self.duration:.2f} s{parts}, worst send lag {self.max_send_lag_ms:.2f} ms)"
            + (", stopped early" if self.stopped_early else "")
        )


async def ensure_topic(bootstrap_servers: str, name: str, partitions: int, replicas: int, *,
                       timeout: float = Settings.producer_timeout, **security) -> None:
    """Create the notes topic as declared, so nothing is produced into an auto-created default.

    A broker that does not answer within ``timeout`` seconds raises KafkaConnectionError. ``security`` is
    aiokafka's TLS and SASL arguments (security/credentials.py), as for the producer.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=round(timeout * 1000),
                                retry_backoff_ms=RETRY_BACKOFF_MS, **security)
    await admin.start()
    try:
        # A broker without CreateTopics (librdkafka's mock cluster) has its topics made beforehand.
        if name in await admin.list_topics():
            return
        await admin.create_topics([NewTopic(name, partitions, replicas)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()


async def started(producer: AIOKafkaProducer) -> AIOKafkaProducer:
    """``producer``, started; stopped again, its connections closed, when it cannot start."""
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


@asynccontextmanager
async def kafka_producer(bootstrap_servers: str, *, timeout: float = Settings.producer_timeout,
                         **options) -> AsyncIterator[AIOKafkaProducer]:
    """An acks=all producer, idempotent where the broker allows; flushed and stopped on exit. ``options``
    go to AIOKafkaProducer: its TLS and SASL arguments (security/credentials.py) among them.

    ``timeout`` (seconds) bounds each request and, aiokafka measuring a record's delivery time with
    the same value, how long a record is retried before its future fails: a connection cut or a
    silent broker shorter than that is ridden out, a longer one fails the record. A broker that
    cannot be reached at all raises KafkaConnectionError within ``timeout``. Without idempotence a
    retried batch may be written twice; consumers dedupe by (song, seq).
    """
    options = {"acks": "all", "request_timeout_ms": round(timeout * 1000), "retry_backoff_ms": RETRY_BACKOFF_MS,
               **options}
    try:
        producer = await started(AIOKafkaProducer(bootstrap_servers=bootstrap_servers, enable_idempotence=True,
                                                  **options))
    except UnknownError:
        # Brokers without transaction support (Tansu among them) reject InitProducerId this way.
        logger.warning("broker %s refused the idempotent producer; producing without idempotence", bootstrap_servers)
        producer = await started(AIOKafkaProducer(bootstrap_servers=bootstrap_servers, **options))
    try:
        yield producer
        await producer.flush()
    except BaseException:
        # The caller gave up on what is still queued, which stop() would retry until its timeout
        # runs out, several times over for a silent broker: it gets a moment to close, no more.
        # What is left is cancelled with the event loop.
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(producer.stop(), ABANDON_GRACE)
        raise
    await producer.stop()


def outcome_seen(future: asyncio.Future) -> None:
    """Done callback marking a delivery's exception as seen: publish_song reports the first failure
    itself, and asyncio would log every other one as never retrieved."""
    if not future.cancelled():
        future.exception()


def padding(size: int) -> str:
    return secrets.token_hex((size + 1) // 2)[:size] if size else ""


async def warm_up(producer: AIOKafkaProducer, topic: str) -> None:
    """Fetch what a first send would wait for: the topic's metadata and a connection to each of its
    partitions' leaders, so that no broker round trip lands inside a song's clock.

    aiokafka's send() waits for the topic's metadata the first time (a round trip), and its sender
    connects to a partition's leader only when it has the first batch for it: the bootstrap
    connection is closed once the cluster is known. Either way the first record of a song went out
    after its ``sent_at`` stamp and its deadline (a worker saw the first chord of each song 4.5-5.5 ms
    late). Measured on the embedded broker as produce-midi starts (topic created, then the producer),
    the first record's send-to-acknowledgement took 2.1 ms, the rest 1.1 ms; warmed, 0.8 ms.
    ``client.ready`` and ``cluster.leader_for_partition`` are public methods of aiokafka's client
    (0.14), which its producer uses itself; once warm, both are dictionary lookups.
    """
    client = producer.client
    for partition in sorted(await producer.partitions_for(topic)):
        leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
        if leader is not None and leader >= 0:
            await client.ready(leader)


async def wait_for_deadline(deadline: float, stop: asyncio.Event | None) -> bool:
    """Wait until ``deadline`` (perf_counter) as timing.wait_until does; False, at once, if ``stop`` is
    set first. A long silence in a score must not hold a stop back."""
    if stop is None:
        await wait_until(deadline)
        return True
    watch = deadline - STOP_WATCH_MARGIN - time.perf_counter()
    if watch > 0:
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), watch)
    if stop.is_set():
        return False
    await wait_until(deadline)
    return True


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
    progress: Callable[[int, float], None] = lambda sent, score_time: None,
    stop: asyncio.Event | None = None,
    key_by: KeyBy = KeyBy.SONG,
) -> SongReport:
    """Send every event of ``song`` at its score time (times ``speed_ratio``; 0 = at once), then the end event.

    Deadlines are absolute from the song's start, so waits never add up to drift. Events due at the
    same moment (a chord, or everything when ``speed_ratio`` is 0) share a record, up to
    ``max_events_per_record``. Returns once the broker has acknowledged every record; raises
    DeliveryFailed, sending nothing more, once a record has failed (the producer retries each for
    its timeout first).

    ``key_by`` channel or track publishes each part under its own key, numbered and ended on its own
    (producer/parts.py); the events due together then leave as one record per part, back to back.
    Every event carries ``song_start``, the wall clock (``time.time()``) when score time 0 was due, the
    same for all of the song's parts: the playout clock of the workers playing them.

    ``progress`` is told, after each record, how many events were sent and the score time reached.

    Once ``stop`` is set no further event is sent: each part ends there with its end event, whose
    seq is the number of its events sent, so a consumer counts none of the rest as lost; its score
    time is the part's last sent event's. A song stopped before its first event sends nothing at all.
    """
    # Deliveries of one key (one partition) complete in the order they were sent; of several parts,
    # in any order, so a failure is found when every delivery before it is done.
    unacknowledged: deque[tuple[str, asyncio.Future]] = deque()

    def raise_if_failed() -> None:
        # Reads the futures' state rather than waiting for callbacks, which a sender catching up on
        # late events would not give a chance to run.
        while unacknowledged and unacknowledged[0][1].done():
            seqs, delivery = unacknowledged.popleft()
            if delivery.exception() is not None:
                raise DeliveryFailed(f"{song_id}: {seqs} not acknowledged ({describe(delivery.exception())})")

    events = song.events
    parts = SongParts(song, song_id, key_by)
    keys: dict[str, bytes] = {}
    await warm_up(producer, topic)
    started = time.perf_counter()
    song_start = time.time()
    max_lag = 0.0

    async def send(record: PartRecord, end: bool = False) -> None:
        # A failed record ends the song here: what follows it could only arrive with a gap before it.
        raise_if_failed()
        key, first, batch = record
        value = encode_events(key, first, batch, sent_at=time.time(), speed_ratio=speed_ratio, end=end,
                              padding=padding(record_size), song_start=song_start)
        seqs = f"event {first}" if len(batch) == 1 else f"events {first}-{first + len(batch) - 1}"
        if key != song_id:
            seqs = f"{seqs} of {key}"
        try:
            delivery = await producer.send(topic, value, key=keys.get(key) or keys.setdefault(key, key.encode()))
        except KafkaError as exc:
            raise DeliveryFailed(f"{song_id}: {seqs} could not be queued ({describe(exc)})") from exc
        delivery.add_done_callback(outcome_seen)
        unacknowledged.append((seqs, delivery))

    first = 0
    while first < len(events):
        if stop is not None and stop.is_set():
            break
        if speed_ratio:
            deadline = started + events[first].score_time * speed_ratio
            if not await wait_for_deadline(deadline, stop):
                break
            now = time.perf_counter()
            max_lag = max(max_lag, now - deadline)
            after = due_events(events, first, (now - started) / speed_ratio, max_events_per_record)
        else:
            after = min(len(events), first + max_events_per_record)
        for record in parts.records(first, after):
            await send(record)
        first = after
        progress(first, events[first - 1].score_time)
    if first or not events:
        for record in parts.ends():
            await send(record, end=True)
    while unacknowledged:
        await asyncio.wait([unacknowledged[0][1]])
        raise_if_failed()
    return SongReport(song_id, first, len(events), song.duration, time.perf_counter() - started, max_lag * 1000,
                      parts=parts.count)
