"""What the embedded broker (Tansu 0.6.0, memory storage) costs as it holds more records, and what frees it.

For each number of records held (one record per batch, as a producer without linger sends them) in
one partition of a "held" topic, it measures with plain aiokafka clients:

* the latency of one new record (produced at t, read by a consumer caught up and waiting with
  fetch_max_wait_ms = 2, 10, 100) in (a) the same partition, (b) another partition of that topic,
  (c) another topic; p50/p99 and how many never arrived within ``--timeout``;
* the produce round trip (acks=all) into that partition;
* the broker's CPU% (from /proc/PID/stat) while the consumer idles (at the shortest wait) and while
  the records are timed (busy), and its RSS.

With --backlog it also times reading the held partition from offset 0 per fetch wait. Then it tries what
could free the broker: topic retention (retention.ms / retention.bytes), DeleteRecords, deleting the topic.

    .venv/bin/python bench/broker_cost.py --smoke          # a few seconds
    .venv/bin/python bench/broker_cost.py                  # held 0, 2k, 10k, 40k x 1 KB; 10k x 8 KB
    .venv/bin/python bench/broker_cost.py --held 0,10000 --waits 2,100 --skip-freeing --backlog
"""
from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete  # noqa: E402

from common import ProcessUsage  # noqa: E402
from brokers.embedded import embedded_broker  # noqa: E402
from playback.stats import percentiles  # noqa: E402
from config.settings import bootstrap_servers  # noqa: E402

HELD, PROBE = "held", "probe"
PLACES = {"a same partition": TopicPartition(HELD, 0), "b other partition": TopicPartition(HELD, 1),
          "c other topic": TopicPartition(PROBE, 0)}


async def fill(bootstrap: str, tp: TopicPartition, count: int, size: int, producers: int = 4) -> None:
    """``count`` records of ``size`` bytes, one per batch: a batch only just holds one record."""
    async def one_producer(share: int) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, max_batch_size=size + 200)
        await producer.start()
        try:
            sent = [await producer.send(tp.topic, b"f" * size, partition=tp.partition) for _ in range(share)]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
    await asyncio.gather(*(one_producer(count // producers + (i < count % producers)) for i in range(producers)))


async def probe(bootstrap: str, broker: ProcessUsage, tp: TopicPartition, wait_ms: int, samples: int,
                timeout: float, idle_seconds: float) -> dict:
    """Broker CPU% with a caught-up consumer idle, then ``samples`` records produced one at a time (busy CPU%)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=wait_ms, enable_auto_commit=False,
                                group_id=None, request_timeout_ms=30000)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    arrived: dict[int, asyncio.Future] = {}
    try:
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        await consumer.position(tp)

        async def read() -> None:
            while True:
                for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                    for record in records:
                        marker = struct.unpack(">q", record.value[:8])[0]
                        if marker in arrived and not arrived[marker].done():
                            arrived[marker].set_result(time.perf_counter())
        reader = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        cpu, wall = broker.cpu_seconds(), time.perf_counter()
        await asyncio.sleep(idle_seconds)
        idle_cpu = 100 * (broker.cpu_seconds() - cpu) / (time.perf_counter() - wall) if idle_seconds else None
        cpu, wall = broker.cpu_seconds(), time.perf_counter()
        latencies, acks, lost = [], [], 0
        for i in range(samples):
            await asyncio.sleep(0.005 + (i % 7) * 0.003)  # land at different points of the fetch wait
            marker = time.time_ns()
            arrived[marker] = asyncio.get_running_loop().create_future()
            sent_at = time.perf_counter()
            await (await producer.send(tp.topic, struct.pack(">q", marker) + b"p" * 1016, partition=tp.partition))
            acks.append((time.perf_counter() - sent_at) * 1000)
            try:
                latencies.append((await asyncio.wait_for(arrived[marker], timeout) - sent_at) * 1000)
            except asyncio.TimeoutError:
                lost += 1
                if lost >= 3:
                    break
        reader.cancel()
        return {"latency": percentiles(latencies), "produce": percentiles(acks), "lost": lost, "idle_cpu": idle_cpu,
                "busy_cpu": 100 * (broker.cpu_seconds() - cpu) / (time.perf_counter() - wall)}
    finally:
        await producer.stop()
        await consumer.stop()


def row(label: str, place: str, wait_ms: int, result: dict, rss: float) -> str:
    latency, produce = result["latency"] or {"p50": float("nan"), "p99": float("nan")}, result["produce"]
    idle = "-" if result["idle_cpu"] is None else f"{result['idle_cpu']:.1f}"
    return (f"{label:<18} {place:<18} {wait_ms:>5} {latency['p50']:>9.1f} {latency['p99']:>9.1f} {result['lost']:>5}"
            f" {produce['p50']:>8.2f} {produce['p99']:>8.2f} {idle:>7} {result['busy_cpu']:>7.1f} {rss:>7.0f}")


HEADER = (f"{'held':<18} {'where':<18} {'wait':>5} {'lat p50':>9} {'lat p99':>9} {'lost':>5} {'prod p50':>8} "
          f"{'prod p99':>8} {'idleCPU':>7} {'busyCPU':>7} {'RSS MB':>7}")


async def measure(bootstrap: str, broker: ProcessUsage, label: str, places: dict, args) -> None:
    for place, tp in places.items():
        for wait_ms in args.waits:
            result = await probe(bootstrap, broker, tp, wait_ms, args.samples, args.timeout,
                                 args.idle if wait_ms == min(args.waits) else 0)
            print(row(label, place, wait_ms, result, broker.rss_mib()), flush=True)


async def try_freeing(bootstrap: str, broker: ProcessUsage, admin: AIOKafkaAdminClient, args) -> None:
    held = min(args.held[-1], 10000)  # enough to see whether retention trims it
    print(f"\n-- freeing: retention.ms=1000 retention.bytes=100000 on a new topic, {held} records, then 5 s idle")
    await admin.create_topics([NewTopic("retained", 1, 1, topic_configs={"retention.ms": "1000",
                                                                         "retention.bytes": "100000"})])
    await fill(bootstrap, TopicPartition("retained", 0), held, args.size)
    await asyncio.sleep(5)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    tp = TopicPartition("retained", 0)
    start, end = (await consumer.beginning_offsets([tp]))[tp], (await consumer.end_offsets([tp]))[tp]
    await consumer.stop()
    print(f"retained: log start {start}, end {end} (retention dropped {start} records)")
    await measure(bootstrap, broker, f"{held} retained", {"a same partition": tp}, args)

    print("\n-- freeing: DeleteRecords before the end offset of held/0")
    try:
        result = await admin.delete_records({PLACES["a same partition"]: RecordsToDelete(held)}, timeout_ms=5000)
        print(f"delete_records -> {result}")
    except Exception as error:  # noqa: BLE001 - the outcome is what this measures
        print(f"delete_records raised {type(error).__name__}: {error}; broker alive: {broker.alive()}")

    for topic in ("held", "retained"):
        rss = broker.rss_mib()
        await admin.delete_topics([topic])
        await asyncio.sleep(1)
        print(f"\n-- freeing: deleted topic {topic}: RSS {rss:.0f} -> {broker.rss_mib():.0f} MB")
    await admin.create_topics([NewTopic(HELD, 2, 1)])
    await measure(bootstrap, broker, "0 (recreated)", {"a same partition": PLACES["a same partition"]}, args)


async def read_backlog(bootstrap: str, broker: ProcessUsage, tp: TopicPartition, args) -> None:
    """Question 4: read the partition from offset 0 to its end, per fetch wait and fetch size (capped at 20 s)."""
    count = 0
    for wait_ms, options in [(w, {}) for w in args.waits] + [(500, {"fetch_max_bytes": 1 << 20})]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                    fetch_max_wait_ms=wait_ms, **options)
        await consumer.start()
        consumer.assign([tp])
        consumer.seek(tp, 0)
        if not count:
            count = (await consumer.end_offsets([tp]))[tp]
            print(f"\n-- backlog of {count} records read from offset 0")
        started, cpu, read = time.perf_counter(), broker.cpu_seconds(), 0
        while read < count and time.perf_counter() - started < 20:
            read += sum(map(len, (await consumer.getmany(tp, timeout_ms=500, max_records=100000)).values()))
        elapsed = time.perf_counter() - started
        await consumer.stop()
        print(f"wait {wait_ms:>4} ms {options or ''}: {read}/{count} in {elapsed:.2f} s = {read / elapsed:,.0f}/s,"
              f" broker CPU {100 * (broker.cpu_seconds() - cpu) / elapsed:.0f}%", flush=True)


async def run(broker_url: str, args) -> None:
    bootstrap = bootstrap_servers(broker_url)
    broker = ProcessUsage.of_broker("kafka://" + bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(HELD, 2, 1), NewTopic(PROBE, 1, 1), NewTopic("held8k", 1, 1)])
        print(HEADER)
        held = 0
        for target in args.held:
            started = time.perf_counter()
            await fill(bootstrap, PLACES["a same partition"], target - held, args.size)
            held = target
            print(f"   (filled to {held} x {args.size} B in {time.perf_counter() - started:.1f} s)", flush=True)
            await measure(bootstrap, broker, f"{held} x {args.size // 1024} KB", PLACES, args)
        if args.backlog:
            await read_backlog(bootstrap, broker, PLACES["a same partition"], args)
        if args.big:
            await fill(bootstrap, TopicPartition("held8k", 0), args.big, 8192)
            await measure(bootstrap, broker, f"{args.big} x 8 KB", {"a same partition": TopicPartition("held8k", 0)},
                          args)
        if not args.skip_freeing:
            await try_freeing(bootstrap, broker, admin, args)
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="held 0 and 500, few samples: a few seconds")
    parser.add_argument("--held", default="0,2000,10000,40000", help="records held, comma separated, rising")
    parser.add_argument("--big", type=int, default=10000, help="records of 8 KB for the one 8 KB point (0: none)")
    parser.add_argument("--size", type=int, default=1024, help="bytes per held record")
    parser.add_argument("--waits", default="2,10,100", help="fetch_max_wait_ms values, comma separated")
    parser.add_argument("--samples", type=int, default=40, help="records timed per row")
    parser.add_argument("--timeout", type=float, default=1.0, help="s after which a record counts as lost")
    parser.add_argument("--idle", type=float, default=2.0, help="s of idle CPU measured (at the shortest wait)")
    parser.add_argument("--backlog", action="store_true", help="also time reading the held records from offset 0")
    parser.add_argument("--skip-freeing", action="store_true", help="skip retention, DeleteRecords, topic deletion")
    args = parser.parse_args()
    if args.smoke:
        args.held, args.big, args.samples, args.idle = "0,500", 0, 5, 0.3
    args.held = [int(n) for n in args.held.split(",")]
    args.waits = [int(n) for n in args.waits.split(",")]
    with embedded_broker() as broker_url:
        asyncio.run(run(broker_url, args))


if __name__ == "__main__":
    main()
