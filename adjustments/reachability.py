"""Every answer from the broker tells the worker's outage log that the broker is back.

Every request of the consumer's fetcher and group coordinator and of the producer's sender goes
through ``AIOKafkaClient.send`` (aiokafka/client.py), which aiokafka offers no hook on; a connection
succeeding proves less, as a half-dead broker or a proxy in front of it may accept connections and
never answer. Each client's ``send`` is wrapped as Faust creates it (faust/transport/drivers/
aiokafka.py: ``AIOKafkaConsumerThread._create_worker_consumer``, ``Producer._new_producer``).
"""
from __future__ import annotations

from aiokafka import AIOKafkaClient, AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Producer as FaustProducer

from logs.broker_log import BrokerOutageLog
from adjustments.tripwire import Adjustment, Touch

ADJUSTMENT = Adjustment("adjustments/reachability.py", "broker answers end an outage", (
    Touch(AIOKafkaClient, "send"),
    Touch(AIOKafkaConsumer, "_client", instance_attribute=True),
    Touch(AIOKafkaConsumerThread, "_create_worker_consumer"),
    Touch(FaustProducer, "_new_producer"),
))


def tell_when_reachable(client: AIOKafkaClient, outage_log: BrokerOutageLog) -> None:
    """Make every answer the broker sends ``client`` end an outage ``outage_log`` is reporting."""
    send = client.send

    async def send_and_tell(*args, **kwargs):
        response = await send(*args, **kwargs)
        outage_log.reachable()
        return response
    client.send = send_and_tell


class ReachabilityThread:
    """Faust's consumer thread (mixed in before it)."""

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        tell_when_reachable(consumer._client, self.app.broker_outage_log)
        return consumer


class ReachabilityProducer:
    """Faust's producer (mixed in before it)."""

    def _new_producer(self):
        producer = super()._new_producer()
        tell_when_reachable(producer.client, self.app.broker_outage_log)
        return producer
