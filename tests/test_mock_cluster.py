"""brokers/mock_cluster.py: librdkafka's mock cluster of several brokers, its partitions' leaders, and the
faults set on it while it runs, seen by a plain aiokafka client."""
from __future__ import annotations

import os
import time

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from brokers.mock_cluster import MockClusterError, running_mock_cluster
from config.settings import bootstrap_servers
from tests.test_realtime import needs_root, threads_policies

pytestmark = pytest.mark.integration  # each test starts the cluster itself


async def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's leader, as a client's fresh metadata says."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.client.force_metadata_update()
        cluster = producer.client.cluster
        return {partition: cluster.leader_for_partition(_tp(topic, partition))
                for partition in sorted(cluster.partitions_for_topic(topic))}
    finally:
        await producer.stop()


def _tp(topic: str, partition: int):
    from aiokafka.structs import TopicPartition
    return TopicPartition(topic, partition)


async def send_times(bootstrap: str, topic: str, partition: int) -> list[float]:
    """Seconds each of two acknowledged records takes to ``partition``; the first also makes the
    connections and fetches the metadata."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=3000)
    await producer.start()
    try:
        times = []
        for value in (b"first", b"second"):
            started = time.perf_counter()
            await producer.send_and_wait(topic, value, partition=partition)
            times.append(time.perf_counter() - started)
        return times
    finally:
        await producer.stop()


async def test_each_partition_is_led_by_its_own_broker_and_a_leader_can_be_moved(tmp_path):
    with running_mock_cluster(3, {"t": 3}, log_path=str(tmp_path / "mock.log")) as cluster:
        bootstrap = bootstrap_servers(cluster.url)
        assert len(bootstrap.split(",")) == 3
        assert await leaders(bootstrap, "t") == {0: 1, 1: 2, 2: 3}

        cluster.move_leader("t", 2, 1)
        assert await leaders(bootstrap, "t") == {0: 1, 1: 2, 2: 1}


async def test_a_slow_broker_delays_its_partitions_only_and_a_broker_down_refuses_them(tmp_path):
    with running_mock_cluster(3, {"t": 3}, log_path=str(tmp_path / "mock.log")) as cluster:
        bootstrap = bootstrap_servers(cluster.url)
        cluster.broker_rtt(3, 300)
        assert (await send_times(bootstrap, "t", 2))[1] >= 0.3
        assert (await send_times(bootstrap, "t", 0))[1] < 0.15
        cluster.broker_rtt(3, 0)

        cluster.broker_down(2)
        with pytest.raises(KafkaError):
            await send_times(bootstrap, "t", 1)
        cluster.broker_up(2)
        assert (await send_times(bootstrap, "t", 1))[1] < 0.15


async def test_failed_requests_are_retried_by_the_client_and_refused_calls_say_why(tmp_path):
    with running_mock_cluster(1, {"t": 1}, log_path=str(tmp_path / "mock.log")) as cluster:
        bootstrap = bootstrap_servers(cluster.url)
        unfailed = (await send_times(bootstrap, "t", 0))[0]
        # The next two Produce requests (API key 0) fail with NOT_LEADER_OR_FOLLOWER (6): aiokafka
        # refreshes its metadata and retries each after its 100 ms backoff.
        cluster.fail_requests(0, 6, 6)
        failed_twice = (await send_times(bootstrap, "t", 0))[0]
        assert failed_twice >= 0.2 > unfailed, (failed_twice, unfailed)
        with pytest.raises(MockClusterError, match="no such control"):
            cluster.call("cluster_destroy")
        with pytest.raises(MockClusterError, match="error"):
            cluster.broker_down(7)  # no such broker


@needs_root
def test_asked_for_it_every_thread_of_the_cluster_runs_at_real_time_priority_and_not_otherwise(tmp_path):
    with running_mock_cluster(1, {"t": 1}, log_path=str(tmp_path / "mock.log"), realtime_priority=5) as cluster:
        # The mock's own threads (rdk:main, rdk:broker-1, rdk:mock) exist by now: it printed its servers.
        policies = threads_policies(cluster.process.pid)
        assert len(policies) > 1
        assert set(policies) == {(os.SCHED_FIFO, 5)}
    with running_mock_cluster(1, {"t": 1}, log_path=str(tmp_path / "mock.log")) as cluster:
        assert set(threads_policies(cluster.process.pid)) == {(os.SCHED_OTHER, 0)}
