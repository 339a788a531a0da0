"""embedded_broker: a real Kafka-compatible broker on loopback that starts, carries records and stops."""
from __future__ import annotations

import os
import socket

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from brokers.embedded import embedded_broker, free_port, wait_for_listener
from config.settings import bootstrap_servers
from tests.test_realtime import threads_policies

pytestmark = pytest.mark.integration  # each test starts the broker itself


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


async def test_a_record_produced_to_the_broker_is_consumed_back(tmp_path):
    with embedded_broker(log_path=str(tmp_path / "broker.log")) as url:
        bootstrap = bootstrap_servers(url)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            metadata = await producer.send_and_wait("round-trip", b"a value", key=b"a key")
        finally:
            await producer.stop()
        # Tansu answers a fetch only when its wait expires, so a short wait keeps the test quick.
        consumer = AIOKafkaConsumer("round-trip", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=10)
        await consumer.start()
        try:
            record = await consumer.getone()
        finally:
            await consumer.stop()

    assert (record.key, record.value) == (b"a key", b"a value")
    assert (record.partition, record.offset) == (metadata.partition, metadata.offset)


def test_the_broker_listens_on_the_given_port_only_while_in_use(tmp_path):
    port = free_port()
    with embedded_broker(port, log_path=str(tmp_path / "broker.log")) as url:
        assert url == f"kafka://127.0.0.1:{port}"
        assert accepts_connections(port)

    assert not accepts_connections(port)
    assert not wait_for_listener(port, timeout=0.5)


def broker_threads_policies(port: int) -> list[tuple[int, int]]:
    """(policy, priority) of every thread of the broker started with ``--listener-url tcp://127.0.0.1:PORT``."""
    listener = f"tcp://127.0.0.1:{port}".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if listener in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0"):
                return threads_policies(int(pid))
        except OSError:
            continue
    raise AssertionError(f"no broker process listening at {listener!r}")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to take real-time priority")
def test_asked_for_it_every_thread_of_the_broker_runs_at_real_time_priority_and_not_otherwise():
    port = free_port()
    with embedded_broker(port, realtime_priority=5):
        assert set(broker_threads_policies(port)) == {(os.SCHED_FIFO, 5)}
    port = free_port()
    with embedded_broker(port):
        assert set(broker_threads_policies(port)) == {(os.SCHED_OTHER, 0)}
