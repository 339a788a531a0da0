"""The worker's live view: what the page, /stats and /metrics show, made on two timers of its own.

Every ``interval`` it takes what the player handed off (web/performance.py) and pushes one update to
every connected page (web/clients.py); every ``lag_interval`` it asks the broker for the partitions'
end offsets (web/lag.py). Neither timer is the agent's: a slow broker answer or a slow client delays
only the page.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time

from web.clients import Clients
from web.feed import PerformanceFeed
from web.lag import PartitionLag
from web.metrics import AppMetrics
from web.performance import Performance

logger = logging.getLogger(__name__)


def encode(message: dict) -> str:
    # NaN has no JSON; nothing here should hold one, but a page must never get what it cannot parse.
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


class LiveView:
    def __init__(self, performance: Performance, lag: PartitionLag, clients: Clients, metrics: AppMetrics,
                 interval: float, lag_interval: float) -> None:
        self.performance = performance
        self.feed: PerformanceFeed = performance.feed
        self.lag = lag
        self.clients = clients
        self.metrics = metrics
        self.interval = interval
        self.lag_interval = lag_interval
        self.updates = 0

    def update(self) -> dict:
        """Take what was played since the last update; the message every page is sent."""
        taken = self.performance.take()
        # The broker's state moves with the outage log, between two polls of the end offsets too.
        self.metrics.broker(*self.lag.broker())
        self.updates += 1
        return {"type": "update", "now": time.time(), **taken, **self.lag.state()}

    def hello(self) -> str:
        """What a page is sent when it connects: the recent notes and points, so it is not blank mid-song."""
        return encode({"type": "hello", "now": time.time(), "notes": list(self.performance.recent_notes),
                       "points": list(self.performance.recent_points), "songs": self.performance.songs(),
                       **self.lag.state()})

    def stats(self) -> dict:
        """/stats: the same figures as /metrics and the page, as JSON."""
        return {"now": time.time(), "songs": self.performance.songs(), **self.lag.state(),
                "web": {"clients": self.clients.state(), "updates_dropped": self.clients.dropped,
                        "feed_overflowed": self.feed.overflowed},
                "metrics": self.metrics.as_dict()}

    async def push(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                update = self.update()
                if self.clients.connected:
                    dropped = self.clients.broadcast(encode(update))
                    if dropped:
                        self.metrics.updates_dropped.inc(dropped)
            except Exception:
                # The page must never stop the worker; it says why it stopped updating.
                logger.exception("web page update failed")

    async def poll_lag(self) -> None:
        while True:
            try:
                await self.lag.poll()
            except Exception:
                logger.exception("polling the partitions' end offsets failed")
            await asyncio.sleep(self.lag_interval)
