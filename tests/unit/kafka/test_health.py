"""Readiness facts from librdkafka's statistics: the lag, and why it cannot be measured."""

from __future__ import annotations

from fraudstream.kafka.health import ConsumerHealth, read_stats
from fraudstream.kafka.outage import OutageLog

from ..kafka_stats import stats_json


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_lag_is_the_last_stable_offset_minus_the_position_over_the_assigned_partitions() -> None:
    reading = read_stats(stats_json("tx", {0: (40, 50), 1: (-1001, 30), 2: (7, 7)}, committed={1: 20}), "tx")
    assert (reading.partitions, reading.lag, reading.leaders_up) == (3, 10 + 10 + 0, True)
    unknown = read_stats(stats_json("tx", {0: (40, -1001)}), "tx")
    assert unknown.lag is None
    assert "offsets of tx[0] not known yet" in (unknown.unknown or "")


def test_a_report_says_what_keeps_the_consumer_from_being_ready() -> None:
    clock = Clock()
    outage = OutageLog("test", clock=clock)
    health = ConsumerHealth(outage, "tx", clock=clock)
    report = health.report()
    assert not report.ready
    assert report.problems[0].startswith("holds no partitions")
    assert "no statistics from the consumer yet" in report.problems[1]

    health.assigned(3)
    health.on_stats(stats_json("tx", {0: (5, 9), 1: (1, 1), 2: (0, 0)}))
    assert health.report().ready
    assert health.report().lag == 4

    outage.failed("Connect to 127.0.0.1:9092 failed: Connection refused")
    health.on_stats(stats_json("tx", {0: (5, 9)}, up=False))
    assert any("cannot reach the broker since" in problem for problem in health.report().problems)

    clock.now += 4  # the brokers are up again, and no client failed for a while: the outage is over
    health.on_stats(stats_json("tx", {0: (9, 9), 1: (1, 1), 2: (0, 0)}))
    assert outage.reachable
    assert health.report().ready

    clock.now += 11  # the loop stopped serving its consumer: the lag is no longer known
    assert health.report().lag is None
    assert "statistics are 11 s old" in health.report().problems[0]
