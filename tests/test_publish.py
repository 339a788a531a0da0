"""producer/publish.py against the embedded broker: keys, numbering, the end event, pacing, padding,
what happens before a song's clock starts, and stopping a song early."""
from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path

import aiokafka.client
import pytest
from aiokafka import AIOKafkaConsumer

from producer.publish import ensure_topic, kafka_producer, publish_song
from producer.songs import ScoreEvent, Song, read_song
from config.settings import KeyBy, bootstrap_servers
from tests.song_files import K525_SHORT
from tests.topic_values import records_on_topic

TOPIC = "notes"


def song_of(times: list[float]) -> Song:
    """A song of alternating note-ons and note-offs at ``times`` (seconds)."""
    events = tuple(ScoreEvent(at, (0x90 if index % 2 == 0 else 0x80, 60 + index % 12, 64 if index % 2 == 0 else 0))
                   for index, at in enumerate(times))
    return Song(Path("test.mid"), events)


def new_song_id() -> str:
    return f"test.mid@{uuid.uuid4().hex[:8]}"


async def publish_and_read(broker_url: str, song: Song, **options) -> tuple[list, list[dict]]:
    """Publish ``song``; returns the consumed records (key, value) and every event in them, in order."""
    bootstrap = bootstrap_servers(broker_url)
    song_id = new_song_id()
    await ensure_topic(bootstrap, TOPIC, 1, 1)
    async with kafka_producer(bootstrap) as producer:
        report = await publish_song(producer, TOPIC, song, song_id, **options)
    assert report.song_id == song_id and report.events == len(song.events)
    return await read_song_back(broker_url, song_id)


async def read_song_back(broker_url: str, song_id: str) -> tuple[list, list[dict]]:
    """The records on the topic up to ``song_id``'s end event, and their events; every one must be of that song."""
    bootstrap = bootstrap_servers(broker_url)
    # Tansu answers a fetch only when its wait expires, so a short wait keeps the test quick.
    consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=10)
    await consumer.start()
    records, events = [], []
    try:
        while not events or not events[-1]["end"]:
            record = await consumer.getone()
            records.append(record)
            events.extend(json.loads(record.value))
    finally:
        await consumer.stop()
    assert {record.key for record in records} == {song_id.encode()}
    assert {event["song"] for event in events} == {song_id}
    return records, events


async def test_events_are_numbered_without_gaps_then_the_end_event_carries_the_count(broker_url):
    # Chords: three notes at each instant, which share one record.
    song = song_of([at for at in (0.0, 0.05, 0.1, 0.15) for _ in range(3)])

    records, events = await publish_and_read(broker_url, song)

    *played, end = events
    assert [event["seq"] for event in played] == list(range(len(song.events)))
    assert [(event["score_time"], tuple(event["message"])) for event in played] == list(song.events)
    assert (end["seq"], end["end"], end["message"], end["score_time"]) == (len(song.events), True, [], 0.15)
    assert [len(json.loads(record.value)) for record in records] == [3, 3, 3, 3, 1]


async def test_pacing_follows_absolute_deadlines_so_a_long_song_does_not_drift(broker_url):
    # 400 events 10 ms apart at twice the speed: a wait that added its own oversleep (~1 ms) to the
    # next would end the song about 0.4 s late; absolute deadlines keep the last event on time.
    times = [index * 0.010 for index in range(400)]
    speed_ratio = 0.5

    _, events = await publish_and_read(broker_url, song_of(times), speed_ratio=speed_ratio)

    *played, _ = events
    start = played[0]["sent_at"]
    lateness_ms = [(event["sent_at"] - start - event["score_time"] * speed_ratio) * 1000 for event in played]
    assert min(lateness_ms) > -1, f"an event was sent {-min(lateness_ms):.2f} ms before its deadline"
    # Medians, so a moment when another process has the CPU does not count as drift.
    assert statistics.median(lateness_ms[:100]) < 5
    assert statistics.median(lateness_ms[-100:]) < 5, f"drifted to {statistics.median(lateness_ms[-100:]):.1f} ms late"
    assert all(event["speed_ratio"] == speed_ratio for event in events)


async def test_speed_ratio_zero_sends_everything_at_once(broker_url):
    song = song_of([index * 0.5 for index in range(200)])  # 100 s of score

    started = time.perf_counter()
    _, events = await publish_and_read(broker_url, song, speed_ratio=0)

    assert time.perf_counter() - started < 10
    assert len(events) == len(song.events) + 1
    assert {event["speed_ratio"] for event in events} == {0.0}


async def test_record_size_pads_the_first_event_of_each_record_to_that_length(broker_url):
    song = song_of([0.0, 0.0, 0.02, 0.04])

    records, _ = await publish_and_read(broker_url, song, record_size=1001)

    for record in records:
        first, *rest = json.loads(record.value)
        assert len(first["padding"]) == 1001
        assert all(event["padding"] == "" for event in rest)
    assert len({json.loads(record.value)[0]["padding"] for record in records}) == len(records), "padding repeats"


@pytest.mark.parametrize("topic_known_at_start", [True, False], ids=["topic-created-first", "topic-created-later"])
async def test_no_connection_or_metadata_request_lands_inside_a_songs_clock(broker_url, monkeypatch,
                                                                          topic_known_at_start):
    # produce-midi creates the topic, then starts the producer: the metadata came with the bootstrap,
    # whose connection aiokafka then closed, so the first batch would connect to the leader after
    # the first record was stamped. A topic the producer does not know yet costs a metadata request too.
    bootstrap = bootstrap_servers(broker_url)
    connected_at: list[float] = []
    create_conn = aiokafka.client.create_conn

    async def timed_create_conn(*args, **kwargs):
        connected_at.append(time.time())
        return await create_conn(*args, **kwargs)

    monkeypatch.setattr(aiokafka.client, "create_conn", timed_create_conn)
    song_id = new_song_id()
    if topic_known_at_start:
        await ensure_topic(bootstrap, TOPIC, 1, 1)
    async with kafka_producer(bootstrap) as producer:
        if not topic_known_at_start:
            await ensure_topic(bootstrap, TOPIC, 1, 1)
        metadata_asked_at: list[float] = []
        force_metadata_update = producer.client.force_metadata_update

        def timed_force_metadata_update():
            metadata_asked_at.append(time.time())
            return force_metadata_update()

        monkeypatch.setattr(producer.client, "force_metadata_update", timed_force_metadata_update)
        publishing_from = time.time()
        await publish_song(producer, TOPIC, song_of([0.0, 0.01, 0.02]), song_id)
        published_at = time.time()
    _, events = await read_song_back(broker_url, song_id)

    first_sent_at = events[0]["sent_at"]
    during_song = [at for at in connected_at if publishing_from < at < published_at]
    assert during_song, "publishing opened no connection: the test no longer sees the first-time cost"
    assert max(during_song) < first_sent_at, "a connection was opened after the song's first record was stamped"
    if not topic_known_at_start:
        assert metadata_asked_at and max(metadata_asked_at) < first_sent_at


async def publish_stopped_after(broker_url: str, song: Song, seconds: float):
    """Publish ``song`` as a new song, asking it to stop after ``seconds``: the report and its events
    as read back."""
    bootstrap = bootstrap_servers(broker_url)
    song_id = new_song_id()
    stop = asyncio.Event()
    await ensure_topic(bootstrap, TOPIC, 1, 1)
    async with kafka_producer(bootstrap) as producer:
        asyncio.get_running_loop().call_later(seconds, stop.set)
        report = await publish_song(producer, TOPIC, song, song_id, stop=stop)
    _, events = await read_song_back(broker_url, song_id)
    return report, events


async def test_a_stop_ends_the_song_at_once_with_an_end_event_counting_the_events_sent(broker_url):
    # 100 events 10 ms apart: stopped after about 0.3 s, some 30 of them were sent.
    report, events = await publish_stopped_after(broker_url, song_of([index * 0.010 for index in range(100)]), 0.3)

    *played, end = events
    assert 10 < report.events < 90 and report.stopped_early
    assert report.wall_time < 0.45
    assert [event["seq"] for event in played] == list(range(report.events))
    assert (end["seq"], end["end"], end["message"]) == (report.events, True, [])
    assert end["score_time"] == played[-1]["score_time"]
    assert f"{report.events} of 100 events sent" in report.line() and report.line().endswith(", stopped early")


async def test_a_stop_during_a_long_silence_is_not_held_back_by_it(broker_url):
    report, events = await publish_stopped_after(broker_url, song_of([0.0, 0.0, 30.0, 30.0]), 0.2)

    assert report.wall_time < 0.5
    assert [(event["seq"], event["end"]) for event in events] == [(0, False), (1, False), (2, True)]


async def test_a_song_stopped_before_its_first_event_sends_nothing(broker_url):
    bootstrap = bootstrap_servers(broker_url)
    stopped_id, next_id = new_song_id(), new_song_id()
    stop = asyncio.Event()
    stop.set()
    await ensure_topic(bootstrap, TOPIC, 1, 1)
    async with kafka_producer(bootstrap) as producer:
        report = await publish_song(producer, TOPIC, song_of([0.0, 0.01]), stopped_id, stop=stop)
        await publish_song(producer, TOPIC, song_of([0.0, 0.01]), next_id)

    assert report.events == 0
    # read_song_back asserts that every event up to the next song's end is the next song's.
    _, events = await read_song_back(broker_url, next_id)
    assert len(events) == 3


K525 = K525_SHORT


@pytest.mark.parametrize("key_by, part_of", [
    (KeyBy.CHANNEL, lambda track, message: f"ch{(message[0] & 0x0F) + 1}"),
    (KeyBy.TRACK, lambda track, message: f"tr{track}"),
])
def test_keyed_by_part_each_part_keeps_one_partition_its_own_numbering_and_end_and_the_songs_start(
        broker_url, key_by, part_of):
    # music21's k525short.mid: 5 tracks after the conductor's, a channel each; at a tenth of its 16 s.
    song = read_song(K525, max_file_bytes=1 << 24, max_song_seconds=60, max_song_events=10_000, with_tracks=True)
    song_id, speed_ratio, topic = new_song_id(), 0.1, "parts"
    bootstrap = bootstrap_servers(broker_url)

    async def publish():
        await ensure_topic(bootstrap, topic, 3, 1)
        async with kafka_producer(bootstrap) as producer:
            return await publish_song(producer, topic, song, song_id, speed_ratio=speed_ratio, key_by=key_by)
    before = time.time()
    report = asyncio.run(publish())
    records = records_on_topic(broker_url, topic)

    expected: dict[str, list] = {}
    for track, event in zip(song.tracks, song.events):
        expected.setdefault(f"{song_id}/{part_of(track, event.message)}", []).append(event)
    assert len(expected) == 5 and report.parts == 5 and report.events == len(song.events)
    assert ", 5 parts," in report.line()
    partitions: dict[str, set[int]] = {}
    events: dict[str, list[dict]] = {}
    for record in records:
        key = record.key.decode()
        partitions.setdefault(key, set()).add(record.partition)
        for event in json.loads(record.value):
            assert event["song"] == key
            events.setdefault(key, []).append(event)
    assert set(events) == set(expected)
    assert all(len(partition) == 1 for partition in partitions.values()), partitions
    for key, part_events in events.items():
        *played, end = part_events
        assert [event["seq"] for event in played] == list(range(len(expected[key])))
        assert [(event["score_time"], tuple(event["message"])) for event in played] == expected[key]
        assert (end["seq"], end["end"], end["score_time"]) == (len(expected[key]), True, expected[key][-1].score_time)
    # One song start for all the parts, taken as the clock started; each event sent on time against it.
    [song_start] = {event["song_start"] for part_events in events.values() for event in part_events}
    first_sent = min(event["sent_at"] for part_events in events.values() for event in part_events)
    assert before <= song_start <= first_sent
    lateness_ms = sorted((event["sent_at"] - song_start - event["score_time"] * speed_ratio) * 1000
                         for part_events in events.values() for event in part_events[:-1])
    assert lateness_ms[0] > -1, f"an event was sent {-lateness_ms[0]:.2f} ms before its time on the song's clock"
    assert lateness_ms[len(lateness_ms) // 2] < 5
