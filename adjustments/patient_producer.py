"""The worker's producer: waits for a broker that is not up yet, gives up pending writes when stopped
during an outage, and looks a topic up before asking to create it.

- A worker whose broker is not up yet crashed at start with a 40-line traceback (Faust's
  ``Producer.on_start`` raises KafkaConnectionError); it now says so in one line and tries again, unless
  a broker answers but refuses its TLS or login (security/login.py): waiting would not change that, and
  the worker stops in one line naming the setting to fix.
- aiokafka retries a write for producer_request_timeout (20 minutes by default), and a worker stopping
  flushes first: with the broker unreachable, what is not written yet cannot be. Its stop fails the
  writes still pending (``AIOKafkaProducer._message_accumulator.fail_all``), or aiokafka's stop waits
  for them as flush would.
- Faust skips creating a topic its producer's metadata lists, and that metadata is refreshed only
  after a creation (faust/transport/drivers/aiokafka.py, ``Producer.create_topic``): a broker without
  CreateTopics (librdkafka's mock cluster, whose topics are created beforehand) must be asked first.
"""
from __future__ import annotations

import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.producer.message_accumulator import MessageAccumulator
from faust.transport.drivers.aiokafka import Producer as FaustProducer

from logs.broker_log import describe
from adjustments.tripwire import Adjustment, Touch
from security.credentials import aiokafka_options
from security.login import refused_login

logger = logging.getLogger(__name__)

BROKER_RETRY_SECONDS = 2.0

ADJUSTMENT = Adjustment("adjustments/patient_producer.py", "the worker's producer during outages", (
    Touch(FaustProducer, "_producer", instance_attribute=True),
    Touch(FaustProducer, "_ensure_producer"),
    Touch(AIOKafkaProducer, "_message_accumulator", instance_attribute=True),
    Touch(MessageAccumulator, "fail_all"),
))


class PatientProducer:
    """Faust's producer (mixed in before it)."""

    async def on_start(self) -> None:
        while True:
            try:
                await super().on_start()
                return
            except KafkaConnectionError as exc:
                await self._producer.stop()
                # aiokafka raises the same error for a broker that refused the TLS handshake or the login.
                refused = await refused_login(self.app.bootstrap_servers, self.app.security,
                                              aiokafka_options(self.app.conf.broker_credentials))
                if refused:
                    raise SystemExit(f"midi_app worker: {refused}") from None
                line = self.app.broker_outage_log.notice(f"{describe(exc)}; next attempt in {BROKER_RETRY_SECONDS:g} s")
                if line is not None:
                    logger.warning(line)
                await self.sleep(BROKER_RETRY_SECONDS)

    async def create_topic(self, topic: str, *args, **kwargs) -> None:
        await self._ensure_producer().client.force_metadata_update()
        await super().create_topic(topic, *args, **kwargs)

    async def flush(self) -> None:
        if self.app.broker_outage_log.unreachable_since is None:
            await super().flush()

    async def on_stop(self) -> None:
        outage_log = self.app.broker_outage_log
        if self._producer is not None and outage_log.unreachable_since is not None:
            self._producer._message_accumulator.fail_all(
                KafkaConnectionError(f"stopped while the Kafka broker at {outage_log.address} could not be reached"))
        await super().on_stop()
