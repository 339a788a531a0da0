"""Putting exact values on the notes topic, as any producer could, and watching what a worker's port got."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from models.midi_event import encode_events
from producer.publish import ensure_topic, kafka_producer
from tests.recording_backend import read_recording
from config.settings import bootstrap_servers

TOPIC = "midi"
READ_TIMEOUT = 30.0
# Room for the oversized records some tests publish on purpose.
LARGE_FETCH_BYTES = 8 * 1024 * 1024


def song_record(song: str, first_seq: int, timed_messages: list[tuple[float, list[int]]], end: bool = False) -> bytes:
    """A value as produce-midi sends it: events of ``song`` numbered from ``first_seq``, played at score speed."""
    return encode_events(song, first_seq, timed_messages, sent_at=time.time(), speed_ratio=1.0, end=end)


def end_record(song: str, count: int, score_time: float = 0.0) -> bytes:
    """The value produce-midi ends ``song`` with: its end event, carrying the song's event count."""
    return song_record(song, count, [(score_time, [])], end=True)


def create_topic(broker_url: str, partitions: int) -> None:
    """Create the notes topic with ``partitions``; a worker started first gets the broker's default count."""
    asyncio.run(ensure_topic(bootstrap_servers(broker_url), TOPIC, partitions, 1))


async def _produce(broker_url: str, values: list[bytes | None], key: bytes, partition: int | None) -> None:
    servers = bootstrap_servers(broker_url)
    # Room for the oversized values the tests send on purpose.
    async with kafka_producer(servers, max_request_size=16 * 1024 * 1024) as producer:
        for value in values:
            # One at a time, so the values land in the order given.
            await (await producer.send(TOPIC, value, key=key, partition=partition))


async def _records_on_topic(broker_url: str, topic: str) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(broker_url), enable_auto_commit=False, fetch_max_wait_ms=50,
        max_partition_fetch_bytes=LARGE_FETCH_BYTES, fetch_max_bytes=LARGE_FETCH_BYTES,
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return []
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + READ_TIMEOUT
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            assert time.monotonic() < deadline, f"could not read {topic} to its end offsets {ends}"
            batches = await consumer.getmany(timeout_ms=500)
            records.extend(record for batch in batches.values() for record in batch)
        return records
    finally:
        await consumer.stop()


def records_on_topic(broker_url: str, topic: str = TOPIC) -> list[ConsumerRecord]:
    """Every record on ``topic``, copies included, up to its end offsets as they are now."""
    return asyncio.run(_records_on_topic(broker_url, topic))


def events_on_topic(broker_url: str) -> list[tuple[int, str, int]]:
    """(offset of its record, song, seq) of every event on the notes topic, copies included."""
    return [(record.offset, event["song"], event["seq"])
            for record in records_on_topic(broker_url) for event in json.loads(record.value)]


async def _committed_offset(broker_url: str, group: str, partition: int) -> int | None:
    # A consumer given the group but no subscription only asks the group's coordinator; it never joins.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(TOPIC, partition))
    finally:
        await consumer.stop()


def committed_offset(broker_url: str, group: str = "midi_app", partition: int = 0) -> int | None:
    """The offset the worker group committed on the notes topic's ``partition``; None if none yet."""
    return asyncio.run(_committed_offset(broker_url, group, partition))


def produce_values(broker_url: str, values: list[bytes | None], *, key: bytes = b"song",
                   partition: int | None = None) -> None:
    """Send each raw value (None: a value-less record) to the notes topic, in order."""
    asyncio.run(_produce(broker_url, values, key, partition))


def wait_for_recording(path: Path, count: int, timeout: float = 20.0) -> list[dict]:
    """The recording once it holds at least ``count`` messages; raises TimeoutError saying how many it has."""
    deadline = time.monotonic() + timeout
    played: list[dict] = []
    while time.monotonic() < deadline:
        played = read_recording(path) if path.exists() else []
        if len(played) >= count:
            return played
        time.sleep(0.02)
    raise TimeoutError(f"{len(played)} of {count} messages recorded within {timeout:.0f} s")
