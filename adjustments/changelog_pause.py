"""Partitions Faust pauses are paused in aiokafka too, so it does not fetch them.

Faust pauses a partition only by not handing its records on (faust/transport/consumer.py,
``Consumer.pause_partitions``), so aiokafka fetches it still. The changelog partition of the
played_seqs table is paused once recovered, yet the worker writes to it from the first note on:
aiokafka fetched those writes back and, as nobody consumed them, held every fetch for its prefetch
backoff (100 ms), so the notes sent meanwhile arrived up to 100 ms late. Pausing in aiokafka as well,
a paused partition is not fetched at all.

Faust's liveness check (``AIOKafkaConsumerThread.verify_event_path``) then logged an ERROR every few
seconds, from five minutes after start, for the partition aiokafka had not fetched ("Aiokafka has not
sent fetch request for TP(topic='midi_app-played_seqs-changelog' ...) since start"): it now skips
the partitions paused here.
"""
from __future__ import annotations

from typing import Iterable

from aiokafka import TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP

from adjustments.tripwire import Adjustment, Touch

ADJUSTMENT = Adjustment("adjustments/changelog_pause.py", "paused partitions paused in aiokafka", (
    Touch(FaustConsumer, "_thread", instance_attribute=True),
    Touch(AIOKafkaConsumerThread, "thread_loop", instance_attribute=True),
    Touch(AIOKafkaConsumerThread, "_consumer", instance_attribute=True),
    Touch(AIOKafkaConsumerThread, "verify_event_path"),
    Touch(AIOKafkaConsumerThread, "verify_recovery_event_path"),
))


class PausedInAiokafkaThread:
    """Faust's consumer thread (mixed in before it): pauses in aiokafka, and leaves those partitions
    out of Faust's liveness check."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.paused_in_aiokafka: set[TP] = set()

    def verify_event_path(self, now: float, tp: TP) -> None:
        if tp not in self.paused_in_aiokafka:
            super().verify_event_path(now, tp)

    def verify_recovery_event_path(self, now: float, tp: TP) -> None:
        if tp not in self.paused_in_aiokafka:
            super().verify_recovery_event_path(now, tp)

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


class PausingConsumer:
    """Faust's consumer (mixed in before it), passing its pauses and resumes on to aiokafka."""

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
