"""The notes topic's partitions as the broker sees them: the worker's position, the end offset, the lag,
and whether the broker answers at all.

Faust's own lag moves only when a record arrives, so a stalled partition (or a dead broker) would look
caught up. Here the end offsets are asked of the broker on a timer, through the worker's consumer
(``Consumer.highwaters``: aiokafka's ``end_offsets``, a ListOffsets request); the highwater mark of the
consumer's last fetch stands in, marked stale, while the broker does not answer. One request at a time:
one still unanswered is waited for, not doubled, so an outage does not pile requests up.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Iterable, Mapping

from faust.types import TP

from logs.broker_log import describe
from web.metrics import AppMetrics

logger = logging.getLogger(__name__)


def partition_rows(assigned: Iterable[TP], read: Mapping[TP, int], committed: Mapping[TP, int],
                   ends: Mapping[TP, int | None]) -> list[dict]:
    """One row per partition: ``position`` is the next offset the worker will play (after the last one
    read, else the group's committed one), ``lag`` the end offset minus it."""
    rows = []
    for tp in sorted(assigned):
        end = ends.get(tp)
        position = read[tp] + 1 if tp in read else committed.get(tp)
        if position is None and end == 0:
            position = 0
        lag = max(0, end - position) if end is not None and position is not None else None
        rows.append({"topic": tp.topic, "partition": tp.partition, "position": position, "end": end, "lag": lag})
    return rows


class PartitionLag:
    """Polls the end offsets of the assigned partitions of ``topic``, and tells whether the broker answers.

    ``consumer`` is Faust's (``assignment()``, ``highwaters(*tps)``, ``highwater(tp)``), ``monitor`` its
    sensor (``tp_read_offsets``, ``tp_committed_offsets``); ``unreachable_since`` the monotonic time the
    worker's broker log last saw the broker go (logs/broker_log.py), or None.
    """

    def __init__(self, consumer: Callable[[], object], monitor: Callable[[], object], topic: str,
                 metrics: AppMetrics, unreachable_since: Callable[[], float | None], timeout: float) -> None:
        self.consumer = consumer
        self.monitor = monitor
        self.topic = topic
        self.metrics = metrics
        self.unreachable_since = unreachable_since
        self.timeout = timeout
        self.rows: list[dict] = []
        self.polled_at: float | None = None
        # wall time of the first poll the broker did not answer, while it does not
        self.failing_since: float | None = None
        self.failure: str | None = None
        self._asking: asyncio.Future | None = None
        self._outage_at: tuple[float, float] | None = None

    async def poll(self) -> None:
        consumer, monitor = self.consumer(), self.monitor()
        try:
            assigned = sorted(tp for tp in consumer.assignment() if tp.topic == self.topic)
        except Exception:  # the consumer is not started yet, or is restarting
            assigned = []
        # The worker's positions are taken before the broker is asked: records read while the answer
        # travels would put the position past an end offset asked earlier.
        read, committed = dict(monitor.tp_read_offsets), dict(monitor.tp_committed_offsets)
        ends = await self._end_offsets(consumer, assigned) if assigned else {}
        rows = partition_rows(assigned, read, committed, ends)
        for row in rows:
            self.metrics.partition(row["topic"], row["partition"], row["position"], row["end"], row["lag"])
            row["stale"] = self.failing_since is not None
        now_assigned = {(row["topic"], row["partition"]) for row in rows}
        for gone in {(row["topic"], row["partition"]) for row in self.rows} - now_assigned:
            self.metrics.forget_partition(*gone)
        self.rows = rows
        reachable, since = self.broker()
        self.metrics.broker(reachable, since)

    async def _end_offsets(self, consumer, assigned: list[TP]) -> dict[TP, int | None]:
        if self._asking is None:
            self._asking = asyncio.ensure_future(consumer.highwaters(*assigned))
        done, _ = await asyncio.wait({self._asking}, timeout=self.timeout)
        if done:
            asking, self._asking = self._asking, None
            try:
                ends = dict(asking.result())
            except Exception as exc:
                return self._failed(consumer, assigned, describe(exc))
            self.polled_at, self.failing_since, self.failure = time.time(), None, None
            return ends
        return self._failed(consumer, assigned, f"no answer within {self.timeout:g} s")

    def _failed(self, consumer, assigned: list[TP], reason: str) -> dict[TP, int | None]:
        if self.failing_since is None:
            self.failing_since = time.time()
            logger.info("end offsets of %s not had from the broker: %s", self.topic, reason)
        self.failure = reason
        ends: dict[TP, int | None] = {}
        for tp in assigned:
            try:
                ends[tp] = consumer.highwater(tp)
            except Exception:
                ends[tp] = None
        return ends

    def broker(self) -> tuple[bool, float | None]:
        """Whether the broker answers, and since when (wall time) it does not."""
        outage = self.unreachable_since()
        since = [self.failing_since] if self.failing_since is not None else []
        if outage is not None:
            # The log keeps monotonic time; its wall time is worked out once, so it reads the same each time.
            if self._outage_at is None or self._outage_at[0] != outage:
                self._outage_at = (outage, time.time() - (time.monotonic() - outage))
            since.append(self._outage_at[1])
        return (not since, min(since) if since else None)

    def state(self) -> dict:
        reachable, since = self.broker()
        return {"partitions": self.rows, "polled_at": self.polled_at,
                "broker": {"reachable": reachable, "unreachable_since": since, "reason": self.failure}}
