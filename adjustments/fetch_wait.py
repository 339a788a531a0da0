"""The consumer's fetch wait, chosen before every fetch: short while caught up, long while behind, long
while idle.

aiokafka sends every fetch with one ``fetch_max_wait_ms`` (Faust hard-codes 1500 ms): how long the
broker may hold a fetch that finds nothing new. Kafka answers as soon as data arrives, whatever the
wait; Tansu, the embedded broker, answers a waiting fetch only when the wait ends, so live notes wait
for the fetch in flight and want a wait of a few ms. But a short wait starves a catch-up on Tansu: it
gives up on a fetch when the wait ends, and reading a large partition takes it longer than 2 ms, so
a worker started after a big ``-s 0`` publish read nothing for minutes (plain aiokafka with a 2 ms
wait read nothing of 513,000 events in 30 s; with 100-500 ms it read them all in ~1.2 s). And a worker
that waits 2 ms when nothing is playing sends the broker ~400 empty fetches a second, all day.

So the wait follows what the consumer knows from the last answers (each carries the partition's high
watermark):

- behind (some partition's high watermark past the position it fetches from): ``catch_up_ms``; a
  broker with data answers at once anyway, and a slow one has time to read it;
- caught up, with data read in the last ``idle_after`` seconds: ``live_ms`` (MIDI_FETCH_WAIT_MS);
- caught up and nothing read for ``idle_after`` seconds: ``idle_ms``. The first record after such a
  pause waits for the idle fetch in flight, up to ``idle_ms`` on Tansu (at once on Kafka); every later
  one is fetched with the live wait.

Touches aiokafka's private ``Fetcher._fetch_max_wait_ms``, ``Fetcher._get_actions_per_node`` and
``Fetcher._proc_fetch_request`` (aiokafka 0.14.0, aiokafka/consumer/fetcher.py): the fetch routine
reads the wait when it builds each FetchRequest in ``_get_actions_per_node``, and
``_proc_fetch_request`` returns whether an answer brought records.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from adjustments.tripwire import Adjustment, Touch

logger = logging.getLogger(__name__)

ADJUSTMENT = Adjustment("adjustments/fetch_wait.py", "fetch wait chosen per fetch", (
    Touch(Fetcher, "_fetch_max_wait_ms", instance_attribute=True),
    Touch(Fetcher, "_get_actions_per_node"),
    Touch(Fetcher, "_proc_fetch_request"),
    Touch(AIOKafkaConsumer, "_fetch_max_wait_ms", instance_attribute=True),
    Touch(AIOKafkaConsumer, "_fetcher", instance_attribute=True),
    Touch(AIOKafkaConsumerThread, "_create_worker_consumer"),
    Touch(AIOKafkaConsumerThread, "_consumer", instance_attribute=True),
))


@dataclass(frozen=True)
class FetchWaits:
    live_ms: int
    idle_ms: int
    catch_up_ms: int
    # seconds without a record before the worker counts as idle
    idle_after: float


class AdaptiveFetchWait:
    """Chooses the wait of each fetch (see the module's docstring) and counts fetches by wait."""

    LIVE, IDLE, CATCH_UP = "live", "idle", "catching up"

    def __init__(self, waits: FetchWaits, clock: Callable[[], float] = time.monotonic) -> None:
        self.waits = waits
        self.clock = clock
        self.last_data_at = clock()
        self.state = self.LIVE
        self.fetches = {self.LIVE: 0, self.IDLE: 0, self.CATCH_UP: 0}

    def choose(self, lags: Iterable[int | None]) -> int:
        """The wait for the next fetch, from each fetched partition's lag (None: not known yet)."""
        if any(lag is not None and lag > 0 for lag in lags):
            state = self.CATCH_UP
        elif self.clock() - self.last_data_at >= self.waits.idle_after:
            state = self.IDLE
        else:
            state = self.LIVE
        if state != self.state:
            logger.debug("fetch wait: %s", state)
            self.state = state
        self.fetches[state] += 1
        return {self.LIVE: self.waits.live_ms, self.IDLE: self.waits.idle_ms,
                self.CATCH_UP: self.waits.catch_up_ms}[state]

    def data_arrived(self) -> None:
        self.last_data_at = self.clock()

    def install(self, fetcher) -> None:
        """Make ``fetcher`` (an aiokafka Fetcher, started) ask this policy before every fetch."""
        get_actions_per_node = fetcher._get_actions_per_node
        proc_fetch_request = fetcher._proc_fetch_request

        def get_actions_choosing_wait(assignment):
            fetcher._fetch_max_wait_ms = self.choose(partition_lags(assignment))
            return get_actions_per_node(assignment)

        async def proc_fetch_noting_data(*args, **kwargs):
            has_new_data = await proc_fetch_request(*args, **kwargs)
            if has_new_data:
                self.data_arrived()
            return has_new_data

        fetcher._get_actions_per_node = get_actions_choosing_wait
        fetcher._proc_fetch_request = proc_fetch_noting_data


def partition_lags(assignment) -> list[int | None]:
    """Records between each fetched partition's position and its high watermark, None where unknown."""
    lags = []
    for tp in assignment.tps:
        state = assignment.state_value(tp)
        if state.paused or not state.has_valid_position or state.highwater is None:
            lags.append(None)
        else:
            lags.append(state.highwater - state.position)
    return lags


class FetchWaitThread:
    """Faust's consumer thread (mixed in before it), asking its policy for the wait of every fetch."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_wait = self.app.fetch_wait = AdaptiveFetchWait(self.app.fetch_waits)

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when it builds its fetcher in start(); from then on the policy sets it.
        consumer._fetch_max_wait_ms = self.app.fetch_waits.live_ms
        return consumer

    async def on_start(self) -> None:
        await super().on_start()
        self.fetch_wait.install(self._consumer._fetcher)
