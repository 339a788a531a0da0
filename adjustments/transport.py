"""Faust's Kafka transport with the consumer's fetch wait taken from settings, and a producer that
waits for the broker at start-up.

Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no way to change it. A broker
holds a fetch that long when it has nothing new, and some (Tansu) only answer when the wait ends, so
every note would arrive up to 1.5 s late. These subclasses change that one value for this app only.

A worker whose broker is not up yet crashed at start with a 40-line traceback; it now keeps trying.
Whenever the broker cannot be reached, at start or later, the worker says so through the app's
``broker_outage_log`` (see broker_log.py), which MidiWorker installs on Faust's own log handlers and
the Kafka clients tell when the broker answers again.

Faust clears its stream queues each time it resumes flow, even when flow was not suspended; after a
rebalance it resumes twice, the second time after seeking the stream partitions, so records fetched
in between were dropped and never read again (see KeepQueuedOnResume).
"""
from __future__ import annotations

import asyncio
import logging
import sys
from typing import Callable, Iterable, Mapping

import aiokafka
from aiokafka import TopicPartition
import faust
from aiokafka.errors import KafkaConnectionError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from adjustments.fetch_wait import AdaptiveFetchWait, FetchWaits
from adjustments.broker_log import BrokerOutageLog, describe

logger = logging.getLogger(__name__)

BROKER_RETRY_SECONDS = 2.0


class LowWaitConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_wait = self.app.fetch_wait = AdaptiveFetchWait(self.app.fetch_waits)
        # Partitions paused in aiokafka itself (see LowWaitConsumer), which it therefore never fetches.
        self.paused_in_aiokafka: set[TP] = set()

    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when it builds its fetcher in start(); from then on fetch_wait sets it.
        consumer._fetch_max_wait_ms = self.app.fetch_waits.live_ms
        tell_when_reachable(consumer._client, self.app.broker_outage_log)
        return consumer

    async def on_start(self) -> None:
        await super().on_start()
        self.fetch_wait.install(self._consumer._fetcher)

    def verify_event_path(self, now: float, tp: TP) -> None:
        # Faust's liveness check logs an ERROR every few seconds, from five minutes after start, for
        # a partition aiokafka has not fetched: the changelog partitions this app pauses in aiokafka.
        if tp not in self.paused_in_aiokafka:
            super().verify_event_path(now, tp)

    def verify_recovery_event_path(self, now: float, tp: TP) -> None:
        if tp not in self.paused_in_aiokafka:
            super().verify_recovery_event_path(now, tp)

    async def on_thread_stop(self) -> None:
        try:
            await super().on_thread_stop()
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise
            # aiokafka's Fetcher.close() cancels its pending fetch requests and awaits them without
            # catching their CancelledError; while the broker cannot be reached one is always pending.
            # Escaping here, it killed this thread with a traceback ("Exception in thread Thread-1")
            # before the thread told the worker it had stopped, so the worker waited for it forever.
            # What the consumer's stop had left to do is close its connections.
            await self._consumer._client.close()

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        # aiokafka waits for the group coordinator for as long as the broker is away, so a worker told
        # to stop during an outage never got past its last commit. A commit still waiting after a
        # session timeout could not succeed anyway: the broker has dropped this worker from the group.
        if self.app.broker_outage_log.unreachable_since is not None:
            return False
        try:
            committed = await asyncio.wait_for(super()._commit(offsets), self.app.conf.broker_session_timeout)
        except asyncio.TimeoutError:
            return False
        if committed:
            # Faust tells its monitor of a commit even when it failed; the app's listeners hear only
            # of commits the broker accepted, on the app's own loop.
            self.app.loop.call_soon_threadsafe(self.app.tell_committed, dict(offsets))
        return committed


    def fetch_only_from(self, paused: set[TP], resumed: set[TP]) -> None:
        """Pause and resume fetching in aiokafka itself; runs on this thread's loop, which owns the
        consumer's partition states."""
        consumer = self._consumer
        if consumer is None:
            return
        # A partition the group has taken away since the caller looked cannot be paused or resumed.
        assigned = consumer.assignment()
        self.paused_in_aiokafka = (self.paused_in_aiokafka | paused) - resumed
        consumer.pause(*(TopicPartition(tp.topic, tp.partition) for tp in paused if tp in assigned))
        consumer.resume(*(TopicPartition(tp.topic, tp.partition) for tp in resumed if tp in assigned))


class LowWaitConsumer(faust_aiokafka.Consumer):
    """Faust pauses a partition only by not handing its records on, so aiokafka fetches it still.

    The changelog partition of the played_seqs table is paused once recovered, yet this worker
    writes to it from the first note on: aiokafka fetched those writes back and, as nobody consumed
    them, held every fetch for its prefetch backoff (100 ms), so the notes sent meanwhile arrived up
    to 100 ms late. Pausing in aiokafka as well, a paused partition is not fetched at all.
    """

    def _new_consumer_thread(self) -> LowWaitConsumerThread:
        return LowWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def pause_partitions(self, tps: Iterable[TP]) -> None:
        tps = set(tps)
        super().pause_partitions(tps)
        self._fetch_only_from(tps, set())

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        tps = set(tps)
        super().resume_partitions(tps)
        self._fetch_only_from(set(), tps)

    def _fetch_only_from(self, paused: set[TP], resumed: set[TP]) -> None:
        # Faust also pauses while the worker shuts down, when the consumer thread's loop may be gone.
        if not self._thread.thread_loop.is_closed():
            self._thread.thread_loop.call_soon_threadsafe(self._thread.fetch_only_from, paused, resumed)


class PatientProducer(faust_aiokafka.Producer):
    def _new_producer(self) -> aiokafka.AIOKafkaProducer:
        producer = super()._new_producer()
        tell_when_reachable(producer.client, self.app.broker_outage_log)
        return producer

    async def on_start(self) -> None:
        while True:
            try:
                await super().on_start()
                return
            except KafkaConnectionError as exc:
                await self._producer.stop()
                line = self.app.broker_outage_log.notice(f"{describe(exc)}; next attempt in {BROKER_RETRY_SECONDS:g} s")
                if line is not None:
                    logger.warning(line)
                await self.sleep(BROKER_RETRY_SECONDS)

    async def create_topic(self, topic: str, *args, **kwargs) -> None:
        # Faust skips creating a topic its producer's metadata lists, and that metadata is refreshed
        # only after a creation: a broker without CreateTopics (librdkafka's mock cluster, whose
        # topics are created beforehand) must be asked first.
        await self._ensure_producer().client.force_metadata_update()
        await super().create_topic(topic, *args, **kwargs)

    async def flush(self) -> None:
        # aiokafka retries a write for producer_request_timeout (20 minutes by default), and a worker
        # stopping flushes first: with the broker unreachable, what is not written yet cannot be.
        if self.app.broker_outage_log.unreachable_since is None:
            await super().flush()

    async def on_stop(self) -> None:
        outage_log = self.app.broker_outage_log
        if self._producer is not None and outage_log.unreachable_since is not None:
            # Fail the writes still pending, or aiokafka's stop waits for them as flush would.
            self._producer._message_accumulator.fail_all(
                KafkaConnectionError(f"stopped while the Kafka broker at {outage_log.address} could not be reached"))
        await super().on_stop()


class LowWaitTransport(faust_aiokafka.Transport):
    Consumer = LowWaitConsumer
    Producer = PatientProducer


def tell_when_reachable(client: aiokafka.AIOKafkaClient, outage_log: BrokerOutageLog) -> None:
    """Make every answer the broker sends ``client`` end an outage ``outage_log`` is reporting.

    Every request of the consumer's fetcher and group coordinator and of the producer's sender goes
    through ``client.send``, which aiokafka offers no hook on; a connection succeeding proves less, as
    a half-dead broker or a proxy in front of it may accept connections and never answer.
    """
    send = client.send

    async def send_and_tell(*args, **kwargs):
        response = await send(*args, **kwargs)
        outage_log.reachable()
        return response
    client.send = send_and_tell


# Faust's consumer runs in a thread of its own; with Python's default 5 ms GIL switch interval a
# note due now can wait that long behind it, ruining sub-millisecond scheduling.
GIL_SWITCH_INTERVAL = 0.0005


class MidiWorker(faust.Worker):
    """Faust's worker, switching the GIL more often (set here, for the worker command only: importing
    the app for produce-midi leaves the interpreter as it is)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        # Faust replaces the root logger's handlers when the worker starts; these are the ones it uses.
        super().on_setup_root_logger(logger, level)
        self.app.broker_outage_log.install(logger.handlers)


class KeepQueuedOnResume(FlowControlEvent):
    """Faust's flow control of stream queues, except that resuming flow that is not suspended keeps
    what the queues hold.

    After a rebalance Faust's recovery resumes flow once to read the changelogs, then seeks the
    stream partitions to their committed offsets and resumes flow again: that second resume emptied
    the queues of records fetched since the seek, which nothing fetched again. A restarted worker
    skipped the first record of its partition, and its next commit went past it. Resuming after a
    real suspension (a rebalance starting) still clears them, as the partitions are sought again."""

    def resume(self) -> None:
        if self.is_active():
            return
        super().resume()


class MidiFaustApp(faust.App):
    """A Faust app whose consumer's fetch wait follows ``fetch_waits`` (adjustments.fetch_wait), and whose worker
    reports an unreachable broker in a few lines."""

    def __init__(self, *args, fetch_waits: FetchWaits, **kwargs) -> None:
        self.fetch_waits = fetch_waits
        # The consumer's, once its thread exists; counts the fetches by wait for the status line.
        self.fetch_wait: AdaptiveFetchWait | None = None
        super().__init__(*args, Worker=MidiWorker, **kwargs)
        brokers = ",".join(f"{url.host}:{url.port}" for url in self.conf.broker_consumer)
        self.broker_outage_log = BrokerOutageLog(brokers)
        # Called with {partition: next offset to read} after each commit the broker accepted.
        self.commit_listeners: list[Callable[[Mapping[TP, int]], None]] = []

    def tell_committed(self, offsets: Mapping[TP, int]) -> None:
        for listener in list(self.commit_listeners):
            listener(offsets)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return KeepQueuedOnResume(loop=self.loop)

    def _new_transport(self) -> LowWaitTransport:
        return LowWaitTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> LowWaitTransport:
        return LowWaitTransport(self.conf.broker_producer, self)
