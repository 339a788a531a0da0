"""The consumer thread stops cleanly while the broker cannot be reached.

aiokafka's ``Fetcher.close()`` (aiokafka/consumer/fetcher.py) cancels its pending fetch requests and
awaits them without catching their CancelledError; while the broker cannot be reached one is always
pending. Escaping ``AIOKafkaConsumerThread.on_thread_stop`` (faust/transport/drivers/aiokafka.py), it
killed the thread with a traceback ("Exception in thread Thread-1") before the thread told the worker
it had stopped, so the worker waited for it forever. What the consumer's stop had left to do is close
its connections.
"""
from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from adjustments.tripwire import Adjustment, Touch

ADJUSTMENT = Adjustment("adjustments/thread_close.py", "consumer thread stops during an outage", (
    Touch(AIOKafkaConsumerThread, "on_thread_stop"),
    Touch(AIOKafkaConsumerThread, "_consumer", instance_attribute=True),
    Touch(AIOKafkaConsumer, "_client", instance_attribute=True),
))


class ClosesDuringOutageThread:
    """Faust's consumer thread (mixed in before it)."""

    async def on_thread_stop(self) -> None:
        try:
            await super().on_thread_stop()
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise
            await self._consumer._client.close()
