"""What a user sees of aiokafka's log while the broker cannot be reached: a few clear lines, not a flood.

aiokafka logs every failed attempt, at ERROR, several times a second for as long as a broker is
down. ``BrokerLogFilter``, installed on the log handlers by ``broker_log_filtered``, keeps that to
what a user of produce-midi needs.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from contextlib import contextmanager
from typing import Iterator

from producer.publish import describe

# While the producer retries a broker, one of aiokafka's complaints is shown per this many seconds.
RETRY_NOTICE_INTERVAL = 2.0


class BrokerLogFilter(logging.Filter):
    """Keeps aiokafka's log to what a user of produce-midi needs.

    aiokafka logs every failed attempt, several a second while a broker refuses connections. Until
    the producer is up none of it passes: a broker that cannot be reached ends the command with one
    line of its own, giving the reason kept in ``last_failure``. Once publishing, the first complaint
    of each RETRY_NOTICE_INTERVAL passes, marked as a retry, so a user sees it without a flood.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self.publishing = False
        self.last_failure: BaseException | None = None
        self._shown_at = -math.inf
        self._held_back = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        if not self.publishing:
            # aiokafka passes the error it gave up on as the last argument of its message.
            if isinstance(record.args, tuple) and record.args and isinstance(record.args[-1], BaseException):
                self.last_failure = record.args[-1]
            return False
        now = time.monotonic()
        if now - self._shown_at < RETRY_NOTICE_INTERVAL:
            self._held_back += 1
            return False
        held_back = f" ({self._held_back} more since the last notice)" if self._held_back else ""
        record.msg = f"retrying for up to {self.timeout:g} s: {record.getMessage()}{held_back}"
        record.args = ()
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        self._shown_at, self._held_back = now, 0
        return True

    def unreachable_reason(self) -> str:
        if self.last_failure is None or isinstance(self.last_failure, asyncio.TimeoutError):
            return f"no answer within {self.timeout:g} s"
        return describe(self.last_failure)


@contextmanager
def broker_log_filtered(timeout: float) -> Iterator[BrokerLogFilter]:
    broker_log = BrokerLogFilter(timeout)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(broker_log)
    try:
        yield broker_log
    finally:
        for handler in handlers:
            handler.removeFilter(broker_log)
