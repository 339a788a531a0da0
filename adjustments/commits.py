"""Commits: bounded while the broker is away, and heard by the app once the broker accepted them.

aiokafka waits for the group coordinator for as long as the broker is away, so a worker told to stop
during an outage never got past its last commit (faust/transport/drivers/aiokafka.py,
``AIOKafkaConsumerThread._commit``). A commit still waiting after a session timeout could not succeed
anyway: the broker has dropped this worker from the group.

Faust tells its monitor of a commit even when it failed (faust/transport/consumer.py,
``Consumer.commit``: ``monitor.on_tp_commit`` after ``_commit`` whatever it returned); the app's
``commit_listeners`` hear only of commits the broker accepted, on the app's own loop.
"""
from __future__ import annotations

import asyncio
from typing import Mapping

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from adjustments.tripwire import Adjustment, Touch

ADJUSTMENT = Adjustment("adjustments/commits.py", "commits bounded during an outage and heard by the app", (
    Touch(AIOKafkaConsumerThread, "_commit"),
))


class CommitsThread:
    """Faust's consumer thread (mixed in before it)."""

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        if self.app.broker_outage_log.unreachable_since is not None:
            return False
        try:
            committed = await asyncio.wait_for(super()._commit(offsets), self.app.conf.broker_session_timeout)
        except asyncio.TimeoutError:
            return False
        if committed:
            self.app.loop.call_soon_threadsafe(self.app.tell_committed, dict(offsets))
        return committed
