"""What a user sees of aiokafka's log while the broker cannot be reached: a few clear lines, not a flood.

aiokafka logs every failed attempt, at ERROR and sometimes with a traceback, several times a second
for as long as a broker is down (measured: ~140 lines a second from a worker whose broker died). Two
filters, installed on the log handlers, keep that to what each command's user needs:

* ``BrokerLogFilter`` for produce-midi, which gives up after its timeout and says so in a line of
  its own (see ``broker_log_filtered``);
* ``BrokerOutageLog`` for the worker, which never gives up: one line when the broker becomes
  unreachable, naming it, a reminder now and then, and one line when it is reachable again.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError

from logs.rate_limit import RateLimit


# While the producer retries a broker, one of aiokafka's complaints is shown per this many seconds.
RETRY_NOTICE_INTERVAL = 2.0
# While the worker cannot reach its broker, it reminds the user at most this often (seconds).
OUTAGE_REMINDER_INTERVAL = 5.0

logger = logging.getLogger(__name__)
# What aiokafka reports when the broker does not answer (a node "not ready" is one it cannot connect to);
# its other errors, even those it retries (an unknown topic), come from a broker that answered.
UNREACHABLE_ERRORS = (OSError, asyncio.TimeoutError, KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError,
                      RequestTimedOutError)
# aiokafka's complaints about a broker it cannot reach that carry no error to recognise them by.
UNREACHABLE_MESSAGES = (
    "Unable to update metadata from",
    "Marking the coordinator dead",
    "Heartbeat session expired",
)


def describe(error: BaseException) -> str:
    """The error's class and message, once: aiokafka's errors often repeat the class in the message."""
    name, text = type(error).__name__, str(error)
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


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
        self.notices = RateLimit(RETRY_NOTICE_INTERVAL)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        if not self.publishing:
            failure = failure_argument(record)
            if failure is not None:
                self.last_failure = failure
            return False
        held_back = self.notices.tail()
        if held_back is None:
            return False
        record.msg = f"retrying for up to {self.timeout:g} s: {record.getMessage()}{held_back}"
        record.args = ()
        record.levelno, record.levelname = logging.WARNING, "WARNING"
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


def failure_argument(record: logging.LogRecord) -> BaseException | None:
    """The error aiokafka gave up on, which it passes as the last argument of its message."""
    if isinstance(record.args, tuple) and record.args and isinstance(record.args[-1], BaseException):
        return record.args[-1]
    return None


def failure_of(record: logging.LogRecord) -> BaseException | None:
    """The error an aiokafka record reports: the last argument of its message, or the exception it logs."""
    failure = failure_argument(record)
    if failure is None and record.exc_info and isinstance(record.exc_info[1], BaseException):
        failure = record.exc_info[1]
    return failure


def means_unreachable(record: logging.LogRecord, failure: BaseException | None) -> bool:
    """Whether an aiokafka record says the broker could not be reached (rather than, say, refused a request)."""
    if failure is not None:
        return isinstance(failure, UNREACHABLE_ERRORS)
    return isinstance(record.msg, str) and record.msg.startswith(UNREACHABLE_MESSAGES)


class BrokerOutageLog(logging.Filter):
    """Turns aiokafka's complaints about an unreachable broker into a few lines a worker's user can read.

    The first complaint becomes "cannot reach the Kafka broker at ADDRESS, retrying: REASON"; after
    that one reminder passes per ``reminder_interval``, counting the attempts held back, and none of
    them carries a traceback. ``reachable()``, called when a request succeeds again, ends the outage
    with one line. Everything else passes unchanged.

    Installed on every handler of the root logger; aiokafka logs from the worker's main thread and
    from its consumer thread, hence the lock.
    """

    def __init__(self, address: str, reminder_interval: float = OUTAGE_REMINDER_INTERVAL) -> None:
        super().__init__()
        self.address = address
        self.unreachable_since: float | None = None
        self.reminders = RateLimit(reminder_interval)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.name == "aiokafka" or record.name.startswith("aiokafka.")):
            return True
        # A record reaches every handler the filter is on: decide once, count once.
        verdict = getattr(record, "broker_outage_verdict", None)
        if verdict is None:
            verdict = self._judge(record)
            record.broker_outage_verdict = verdict
        return verdict

    def _judge(self, record: logging.LogRecord) -> bool:
        failure = failure_of(record)
        if record.levelno < logging.WARNING or not means_unreachable(record, failure):
            return True
        line = self.notice(describe(failure) if failure is not None else record.getMessage())
        if line is None:
            return False
        record.msg, record.args = line, ()
        # The traceback says nothing a user can act on; the reason is in the line.
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True

    def notice(self, reason: str) -> str | None:
        """An attempt to reach the broker failed for ``reason``: the line to show, or None to hold it back."""
        with self._lock:
            now = time.monotonic()
            if self.unreachable_since is None:
                self.unreachable_since = now
                self.reminders.reset()
                self.reminders.allow()
                return f"cannot reach the Kafka broker at {self.address}, retrying: {reason}"
            held = self.reminders.allow()
            if held is None:
                return None
            return (f"still cannot reach the Kafka broker at {self.address} after "
                    f"{now - self.unreachable_since:.0f} s, retrying ({held} more failed "
                    f"attempts since the last notice): {reason}")

    def reachable(self) -> None:
        """The broker answered: end the outage, if there was one, with a line saying so."""
        if self.unreachable_since is None:  # the usual case, once per request: no lock needed to see it
            return
        with self._lock:
            if self.unreachable_since is None:
                return
            lasted = time.monotonic() - self.unreachable_since
            self.unreachable_since = None
            self.reminders.reset()
        logger.warning("the Kafka broker at %s is reachable again, after %.0f s", self.address, lasted)

    def install(self, handlers: list[logging.Handler]) -> None:
        for handler in handlers:
            if self not in handler.filters:
                handler.addFilter(self)
