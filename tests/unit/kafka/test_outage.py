"""A broker outage in a bounded number of lines: one when it starts, at most one a minute, one when it ends;
librdkafka's own lines are absorbed meanwhile, and pass through (rate-limited) otherwise."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from fraudstream.kafka.errors import means_unreachable, producer_unusable, refuses_record
from fraudstream.kafka.outage import ClientEvents, OutageLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_of_ten_minutes_and_thousands_of_errors_logs_a_line_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outage = OutageLog("scorer", clock=clock)
    events = ClientEvents(outage, clock=clock)
    caplog.set_level(logging.DEBUG)

    for second in range(600):
        clock.now = 1000.0 + second
        for _ in range(8):  # librdkafka's connection failures, request timeouts, "all brokers down"...
            events.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-1", "Connect to ... failed: refused")
            events.error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
            events.log(logging.WARNING, "%s [%s] %s", "REQTMOUT", "rdkafka#producer-1", "Timed out 1 in-flight")
    assert not outage.reachable
    outage.recovered()

    lines = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert lines[0].startswith("scorer: broker unreachable since ")
    assert sum("still unreachable" in line for line in lines) == 9  # minutes 1..9
    assert lines[-1].startswith("scorer: broker reachable again after 599 s")
    assert len(lines) == 11
    assert outage.reachable
    assert outage.outages == 1


def test_outside_an_outage_librdkafka_lines_pass_through_at_most_every_ten_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    events = ClientEvents(OutageLog("sink", clock=clock), clock=clock)
    caplog.set_level(logging.INFO)
    for _ in range(50):
        events.log(logging.WARNING, "%s [%s] %s", "TXNERR", "rdkafka#producer-1", "Current transaction failed")
    clock.now += 11
    events.log(logging.WARNING, "%s [%s] %s", "TXNERR", "rdkafka#producer-1", "Current transaction failed")
    events.log(logging.INFO, "%s [%s] %s", "CONFWARN", "rdkafka#producer-1", "informational")
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3
    assert "(49 similar lines suppressed)" in lines[1]


def test_one_dropped_connection_is_no_outage_and_a_fatal_error_is_kept_for_the_owner() -> None:
    outage = OutageLog("sink")
    events = ClientEvents(outage)
    events.error(KafkaError(KafkaError._TRANSPORT, "idle connection closed"))
    assert outage.reachable
    fatal = KafkaError(KafkaError._FATAL, "fenced", fatal=True)
    events.error(fatal)
    assert events.fatal is fatal


def test_errors_are_sorted_into_what_the_services_do_next() -> None:
    assert refuses_record(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    assert refuses_record(KafkaError(KafkaError.INVALID_RECORD))
    assert not refuses_record(KafkaError(KafkaError._MSG_TIMED_OUT))
    assert means_unreachable(KafkaError(KafkaError._MSG_TIMED_OUT))
    assert means_unreachable(KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS))
    assert producer_unusable(KafkaError(KafkaError.INVALID_TXN_STATE))
    assert producer_unusable(KafkaError(KafkaError._FAIL, "x", fatal=True))
    assert not producer_unusable(KafkaError(KafkaError._TIMED_OUT))
