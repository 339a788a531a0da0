"""What the benchmarks share: a broker, test songs, and raw aiokafka clients to compare the app with."""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import AsyncIterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from brokers.embedded import embedded_broker  # noqa: E402
from brokers.mock_cluster import mock_cluster  # noqa: E402
from playback.realtime import broker_priority_below  # noqa: E402
from playback.stats import percentiles  # noqa: E402
from producer.publish import ensure_topic  # noqa: E402
from config.settings import Settings  # noqa: E402
from config.settings import bootstrap_servers as bootstrap  # noqa: E402
from tests.song_files import write_song  # noqa: E402
from playback.timing import wait_until  # noqa: E402

# The app's own (MIDI_FETCH_WAIT_MS), so both wait for the broker alike.
RAW_FETCH_WAIT_MS = Settings.from_env().fetch_wait_ms


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def steal_ms() -> float:
    """The steal time of all CPUs since boot (/proc/stat): how long a virtual machine's host kept its CPUs
    from it, in ms (0 on a machine of its own)."""
    with open("/proc/stat") as stat:
        return int(stat.readline().split()[8]) * 1000 / CLOCK_TICKS


class ProcessUsage:
    """A process's CPU time and resident memory, with those of its child processes (a buffered worker's
    port process, outputs/port_process.py), read from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def pids(self) -> list[int]:
        """The process and its descendants alive now."""
        found, index = [self.pid], 0
        while index < len(found):
            try:
                for task in os.listdir(f"/proc/{found[index]}/task"):
                    found += map(int, Path(f"/proc/{found[index]}/task/{task}/children").read_text().split())
            except OSError:
                pass  # ended meanwhile
            index += 1
        return found

    @classmethod
    def of_broker(cls, broker_url: str) -> "ProcessUsage":
        """The process listening on the (first) port of ``broker_url``: Tansu, or the mock cluster's host."""
        port = int(bootstrap(broker_url.split(";")[0]).rsplit(":", 1)[1])
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{pid}/fd")):
                    return cls(int(pid))
            except OSError:
                continue
        raise RuntimeError(f"no process listening at {broker_url}")

    def alive(self) -> bool:
        return Path(f"/proc/{self.pid}").exists()

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
        return total

    def rss_mib(self, field: str = "VmRSS") -> float:
        """Resident memory in MiB: all of it (VmRSS), or its anonymous part (RssAnon: without the pages of
        files it maps, such as the recording probe's, whose 8 MiB map steps VmRSS when it rolls over)."""
        total = None
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith(f"{field}:"):
                    total = (total or 0.0) + int(line.split()[1]) / 1024
        return float("nan") if total is None else total


BROKER_KINDS = ("tansu", "mock")
# Every benchmark's worker writes to the played_seqs table.
CHANGELOG = "midi_app-played_seqs-changelog"


def bench_broker(kind: str, topics: list[str], log_path: str = os.devnull, partitions: int = 1):
    """The broker a benchmark runs on, as a context manager yielding its URL: the embedded Tansu broker,
    or librdkafka's mock cluster, which cannot create topics, with ``topics`` (``partitions`` each) and
    the table's changelog made beforehand."""
    # With the workers at real-time priority, the broker runs just below them (brokers/embedded.py).
    priority = broker_priority_below(Settings.from_env().realtime_priority)
    if kind == "mock":
        return mock_cluster(topics={topic: partitions for topic in [*topics, CHANGELOG]}, log_path=log_path,
                            realtime_priority=priority)
    return embedded_broker(log_path=log_path, realtime_priority=priority)


async def values_from_start(broker_url: str, topic: str) -> AsyncIterator[bytes]:
    """Every value on partition 0 of ``topic``, from its start to the end offset it had when asked, read
    by a plain aiokafka consumer with its default fetch settings."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(broker_url), enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        while await consumer.position(partition) < end:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    yield record.value
    finally:
        await consumer.stop()


class TopicTap:
    """Reads partition 0 of a topic from its start, as it is written, in a thread of its own: the mock
    cluster drops a partition's oldest records past 5 MiB, so the run's events are kept as they come."""

    def __init__(self, broker_url: str, topic: str) -> None:
        self.broker_url, self.topic = broker_url, topic
        self.values: list[bytes] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._read()), daemon=True)

    async def _read(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(self.broker_url), enable_auto_commit=False,
                                    fetch_max_wait_ms=100)
        await consumer.start()
        try:
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            while not self.stopping.is_set():
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    self.values.extend(record.value for record in records)
            end = (await consumer.end_offsets([partition]))[partition]
            while await consumer.position(partition) < end:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    self.values.extend(record.value for record in records)
        finally:
            await consumer.stop()

    def __enter__(self) -> "TopicTap":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        self.thread.join(60)


def dense_song_timeline(seconds: float) -> list[tuple[float, list[int]]]:
    """Four-note chords every 250 ms with the pedal, and a run of 16 notes at 30 ms between them."""
    timeline: list[tuple[float, list[int]]] = [(0.0, [0xC0, 0])]
    bar = 0
    while bar * 0.5 < seconds:
        start = bar * 0.5
        root = 48 + (bar * 5) % 24
        timeline.append((start, [0xB0, 64, 127]))
        for offset in (0.0, 0.25):
            for pitch in (root, root + 4, root + 7, root + 12):
                timeline.append((start + offset, [0x90, pitch, 80]))
                timeline.append((start + offset + 0.2, [0x80, pitch, 0]))
        for step in range(16):
            pitch = 72 + (step * 3) % 17
            timeline.append((start + step * 0.03, [0x91, pitch, 90]))
            timeline.append((start + step * 0.03 + 0.025, [0x81, pitch, 0]))
        timeline.append((start + 0.49, [0xB0, 64, 0]))
        bar += 1
    return timeline


def write_dense_song(path: Path, seconds: float) -> list[tuple[float, list[int]]]:
    return write_song(path, dense_song_timeline(seconds))


def timing_errors_ms(played: list[float], targets: list[float]) -> list[float]:
    offsets = [p - t for p, t in zip(played, targets)]
    constant = statistics.median(offsets)
    return [abs(offset - constant) * 1000 for offset in offsets]


async def raw_produce_rate(broker_url: str, topic: str, records: list[bytes]) -> float:
    """Records/s of a plain aiokafka producer (acks=all) sending without awaiting each send."""
    await ensure_topic(bootstrap(broker_url), topic, partitions=1, replicas=1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(broker_url), acks="all")
    await producer.start()
    try:
        await producer.partitions_for(topic)
        started = time.perf_counter()
        deliveries = [await producer.send(topic, record, key=b"raw") for record in records]
        await asyncio.gather(*deliveries)
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def raw_paced_latency(broker_url: str, topic: str, score: list[tuple[float, list[int]]]) -> dict:
    """A plain aiokafka producer paced like produce-midi (one record per event) and a plain consumer:
    latency (send to receive) and timing error (receive vs score), in ms."""
    await ensure_topic(bootstrap(broker_url), topic, partitions=1, replicas=1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(broker_url), acks="all")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(broker_url), enable_auto_commit=False,
                                fetch_max_wait_ms=RAW_FETCH_WAIT_MS)
    await producer.start()
    await consumer.start()
    try:
        await producer.partitions_for(topic)
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_end(partition)
        received: list[tuple[float, dict]] = []

        async def consume() -> None:
            while len(received) < len(score):
                batches = await consumer.getmany(timeout_ms=100)
                now = time.time()
                received.extend((now, json.loads(record.value)) for records in batches.values() for record in records)

        consuming = asyncio.create_task(consume())
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        for seq, (score_time, message) in enumerate(score):
            await wait_until(started + score_time)
            value = json.dumps({"seq": seq, "score_time": score_time, "message": message, "sent_at": time.time()})
            await producer.send(topic, value.encode(), key=b"raw")
        await asyncio.wait_for(consuming, 30)
    finally:
        await producer.stop()
        await consumer.stop()
    latencies = [(at - value["sent_at"]) * 1000 for at, value in received]
    errors = timing_errors_ms([at for at, _ in received], [value["score_time"] for _, value in received])
    return {"latency_ms": percentiles(latencies), "timing_error_ms": percentiles(errors), "events": len(received)}


def ratio_line(name: str, app: float, raw: float, unit: str, baseline: str = "raw aiokafka") -> str:
    return f"{name:<34} app {app:>12,.1f} {unit:<9} {baseline} {raw:>12,.1f} {unit:<9} app/raw {app / raw:6.2f}"
