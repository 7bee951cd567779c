"""Pacing math: when each row is due and what its event_time is."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from producer.exceptions import ReplayError
from producer.pacing import Pace, Pacer

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pacer(pace: Pace, clock: Clock | None = None) -> Pacer:
    result = Pacer(pace, monotonic=clock or Clock(), wall=lambda: START)
    result.begin()
    return result


def test_no_pace_means_as_fast_as_possible() -> None:
    assert not Pace().paced
    assert Pace().describe() == "as fast as possible"
    assert Pace(rate=500).describe() == "500 tx/s"


@pytest.mark.parametrize(
    ("pace", "message"),
    [
        ({"rate": 10, "speed": 2}, "choose one pace"),
        ({"rate": 0}, "--rate must be > 0"),
        ({"speed": -1}, "--speed must be > 0"),
    ],
)
def test_pace_refuses_two_paces_and_non_positive_ones(pace: dict[str, float], message: str) -> None:
    with pytest.raises(ReplayError, match=message):
        Pace(**pace)


def test_rate_spaces_rows_evenly_by_their_sequence_number() -> None:
    paced = pacer(Pace(rate=4))
    offsets = [paced.offset(n, time_value=999.0) for n in range(5)]
    assert offsets == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert paced.event_time(0.75) == START + timedelta(seconds=0.75)


def test_speed_follows_the_time_column_from_the_first_row_replayed() -> None:
    paced = pacer(Pace(speed=10))
    assert [paced.offset(n, t) for n, t in enumerate([500.0, 500.0, 510.0, 530.0])] == [0.0, 0.0, 1.0, 3.0]


def test_a_time_going_backwards_is_due_right_after_its_predecessor() -> None:
    paced = pacer(Pace(speed=1))
    assert [paced.offset(n, t) for n, t in enumerate([10.0, 20.0, 5.0, 25.0])] == [0.0, 10.0, 10.0, 15.0]


def test_a_new_pass_continues_the_timeline_one_mean_gap_later() -> None:
    paced = pacer(Pace(speed=2))
    assert [paced.offset(n, t) for n, t in enumerate([0.0, 2.0, 4.0])] == [0.0, 1.0, 2.0]
    paced.new_pass()
    assert [paced.offset(n, t) for n, t in enumerate([0.0, 2.0, 4.0], start=3)] == [3.0, 4.0, 5.0]


def test_rate_keeps_counting_across_passes() -> None:
    paced = pacer(Pace(rate=2))
    paced.offset(0, 0.0)
    paced.new_pass()
    assert paced.offset(1, 0.0) == 0.5


def test_unpaced_rows_are_due_now_with_the_current_time() -> None:
    paced = pacer(Pace())
    assert paced.offset(0, 5.0) is None
    assert paced.event_time(None) == START


def test_seconds_until_counts_from_the_start_on_the_monotonic_clock() -> None:
    clock = Clock()
    paced = pacer(Pace(rate=1), clock)
    clock.now += 0.4
    assert paced.seconds_until(1.0) == pytest.approx(0.6)
    clock.now += 1.0
    assert paced.seconds_until(1.0) == pytest.approx(-0.4)
