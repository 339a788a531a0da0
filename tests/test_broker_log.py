"""BrokerOutageLog on real log records through a real handler: few lines, the address named, no traceback."""
from __future__ import annotations

import io
import logging

import pytest
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, UnknownTopicOrPartitionError

from logs.broker_log import BrokerOutageLog

ADDRESS = "127.0.0.1:9999"


@pytest.fixture
def logged():
    """A root-like setup: a logger writing to a stream through a handler carrying the filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    outage_log = BrokerOutageLog(ADDRESS, reminder_interval=3600)
    outage_log.install([handler])
    loggers = [logging.getLogger("aiokafka.client"), logging.getLogger("aiokafka.consumer.fetcher"),
               logging.getLogger("logs.broker_log"), logging.getLogger("midi_app_test")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    yield outage_log, stream
    for logger in loggers:
        logger.removeHandler(handler)
        logger.propagate = True


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_flood_of_connection_errors_is_one_line_naming_the_broker(logged):
    outage_log, stream = logged
    client = logging.getLogger("aiokafka.client")
    for _ in range(100):
        client.error("Unable connect to node with id %s: %s", 111, ConnectionRefusedError(111, "Connect call failed"))
        client.error("Unable to update metadata from %s", [111])
        logging.getLogger("aiokafka.consumer.fetcher").error(
            "Failed fetch messages from %s: %s", 111, NodeNotReadyError("node 111 not ready"))

    [line] = lines(stream)
    assert line.startswith(f"WARNING cannot reach the Kafka broker at {ADDRESS}, retrying: ConnectionRefusedError")


def test_a_reminder_counts_what_was_held_back_and_the_end_is_one_line(logged):
    outage_log, stream = logged
    outage_log.reminders.interval = 0.0
    client = logging.getLogger("aiokafka.client")
    client.error("Unable connect to node with id %s: %s", 111, KafkaConnectionError("Connection closed"))
    outage_log.reminders.interval = 3600
    client.error("Unable connect to node with id %s: %s", 111, KafkaConnectionError("Connection closed"))
    outage_log.reminders.interval = 0.0
    client.error("Unable connect to node with id %s: %s", 111, KafkaConnectionError("Connection closed"))
    outage_log.reachable()
    outage_log.reachable()

    first, reminder, back = lines(stream)
    assert "cannot reach the Kafka broker" in first
    assert reminder.startswith(f"WARNING still cannot reach the Kafka broker at {ADDRESS} after 0 s")
    assert "(1 more failed attempts since the last notice)" in reminder
    assert back.startswith(f"WARNING the Kafka broker at {ADDRESS} is reachable again")


def test_no_traceback_reaches_the_user(logged):
    outage_log, stream = logged
    try:
        raise KafkaConnectionError("Connection at 127.0.0.1:9999 closed")
    except KafkaConnectionError:
        logging.getLogger("aiokafka.consumer.fetcher").exception("Unexpected error in fetcher routine")

    [line] = lines(stream)
    assert "Traceback" not in stream.getvalue()
    assert line.endswith("retrying: KafkaConnectionError: Connection at 127.0.0.1:9999 closed")


def test_other_records_pass_unchanged(logged):
    outage_log, stream = logged
    logging.getLogger("aiokafka.client").error("Unable connect to node with id %s: %s", 1, OSError("refused"))
    logging.getLogger("aiokafka.consumer.fetcher").warning(
        "Topic %s is not available: %s", "midi", UnknownTopicOrPartitionError())
    logging.getLogger("aiokafka.client").info("Discovered coordinator %s", 111)
    logging.getLogger("midi_app_test").error("Unable connect to node with id %s: %s", 1, OSError("refused"))

    assert lines(stream)[1:] == [
        "WARNING Topic midi is not available: [Error 3] UnknownTopicOrPartitionError",
        "INFO Discovered coordinator 111",
        "ERROR Unable connect to node with id 1: refused",
    ]


def test_a_record_seen_by_two_handlers_counts_once(logged):
    outage_log, stream = logged
    second = io.StringIO()
    handler = logging.StreamHandler(second)
    outage_log.install([handler])
    client = logging.getLogger("aiokafka.client")
    client.addHandler(handler)
    try:
        client.error("Unable connect to node with id %s: %s", 111, OSError("refused"))
    finally:
        client.removeHandler(handler)

    assert len(lines(stream)) == len(second.getvalue().splitlines()) == 1
    assert outage_log.reminders.held_back == 0
