"""Faust's Kafka transport with the consumer's fetch wait taken from settings, and a producer that
waits for the broker at start-up.

Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no way to change it. A broker
holds a fetch that long when it has nothing new, and some (Tansu) only answer when the wait ends, so
every note would arrive up to 1.5 s late. These subclasses change that one value for this app only.

A worker whose broker is not up yet crashed at start with a 40-line traceback; it now says, once per
attempt, that it cannot reach the broker, and keeps trying.
"""
from __future__ import annotations

import logging

import aiokafka
import faust
from aiokafka.errors import KafkaConnectionError
from faust.transport.drivers import aiokafka as faust_aiokafka

logger = logging.getLogger(__name__)

BROKER_RETRY_SECONDS = 2.0


class LowWaitConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when it builds its fetcher in start(), which has not happened yet.
        consumer._fetch_max_wait_ms = self.app.fetch_wait_ms
        return consumer


class LowWaitConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> LowWaitConsumerThread:
        return LowWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)


class PatientProducer(faust_aiokafka.Producer):
    async def on_start(self) -> None:
        while True:
            try:
                await super().on_start()
                return
            except KafkaConnectionError as exc:
                await self._producer.stop()
                logger.warning("cannot reach the Kafka broker at %s (%s); retrying in %.0f s",
                               self.app.conf.broker_producer[0], exc, BROKER_RETRY_SECONDS)
                await self.sleep(BROKER_RETRY_SECONDS)


class LowWaitTransport(faust_aiokafka.Transport):
    Consumer = LowWaitConsumer
    Producer = PatientProducer


class MidiFaustApp(faust.App):
    """A Faust app whose consumer waits at most ``fetch_wait_ms`` for new records."""

    def __init__(self, *args, fetch_wait_ms: int, **kwargs) -> None:
        self.fetch_wait_ms = fetch_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> LowWaitTransport:
        return LowWaitTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> LowWaitTransport:
        return LowWaitTransport(self.conf.broker_producer, self)
