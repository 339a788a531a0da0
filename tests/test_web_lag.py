"""web/lag.py: the partitions' rows, and a broker that does not answer the end-offset poll."""
from __future__ import annotations

import asyncio

from faust.types import TP
from prometheus_client import CollectorRegistry

from web.lag import PartitionLag, partition_rows
from web.metrics import AppMetrics


def test_the_position_follows_what_was_read_else_what_was_committed():
    a, b, c = TP("midi", 0), TP("midi", 1), TP("midi", 2)
    rows = partition_rows([b, a, c], read={a: 9}, committed={b: 4}, ends={a: 15, b: 4, c: None})
    assert [(row["partition"], row["position"], row["end"], row["lag"]) for row in rows] == [
        (0, 10, 15, 5), (1, 4, 4, 0), (2, None, None, None)]


class SilentBrokerConsumer:
    """Faust's consumer as far as the poll uses it, before a broker that never answers ListOffsets; the
    highwater of its last fetch is what it still knows."""

    def __init__(self) -> None:
        self.asked = 0

    def assignment(self):
        return {TP("midi", 0), TP("other", 0)}

    async def highwaters(self, *partitions):
        self.asked += 1
        await asyncio.Event().wait()

    def highwater(self, tp):
        return 7


class Monitor:
    tp_read_offsets = {TP("midi", 0): 4}
    tp_committed_offsets: dict = {}


async def test_a_silent_broker_is_asked_once_and_shown_unreachable_with_the_last_fetch_highwater():
    consumer = SilentBrokerConsumer()
    lag = PartitionLag(lambda: consumer, lambda: Monitor, "midi", AppMetrics(CollectorRegistry(), "g"),
                       unreachable_since=lambda: None, timeout=0.05)
    await lag.poll()
    await lag.poll()

    state = lag.state()
    assert consumer.asked == 1, "an unanswered request is waited for, not sent again"
    assert state["broker"]["reachable"] is False and state["broker"]["unreachable_since"] is not None
    assert state["partitions"] == [{"topic": "midi", "partition": 0, "position": 5, "end": 7, "lag": 2, "stale": True}]
