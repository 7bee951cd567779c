"""The replay loop with a fake producer: rows, keys, pacing, limits, loops, delivery failures, Ctrl-C, bad CSVs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from fraudstream.data.synth import write_synthetic
from fraudstream.exceptions import DataValidationError
from producer.pacing import Pace
from producer.replay import Replayer, ReplayOptions, ReplayStats, expected_rows


class FakeProducer:
    """Queues produced messages; poll()/flush() deliver them (failing those whose key is in ``fail_keys``)."""

    def __init__(self, fail_keys: set[bytes] = frozenset(), full_queue_times: int = 0) -> None:  # type: ignore[assignment]
        self.sent: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self.fail_keys = fail_keys
        self.full_queue_times = full_queue_times
        self.polls = 0

    def produce(self, topic: str, value: Any = None, key: Any = None, **kwargs: Any) -> None:
        if self.full_queue_times:
            self.full_queue_times -= 1
            raise BufferError("queue full")
        message = {"topic": topic, "value": value, "key": key, **kwargs}
        self.sent.append(message)
        self._pending.append(message)

    def _deliver(self) -> None:
        pending, self._pending = self._pending, []
        for message in pending:
            error = "broker said no" if message["key"] in self.fail_keys else None
            message["on_delivery"](error, message)

    def poll(self, timeout: float) -> int:
        self.polls += 1
        self._deliver()
        return 0

    def flush(self, timeout: float) -> int:
        self._deliver()
        return 0


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("data") / "creditcard_synthetic.csv", rows=60, seed=5)


def replayer(
    csv: Path,
    producer: FakeProducer,
    stop: threading.Event | None = None,
    progress: Callable[[ReplayStats], None] | None = None,
    **options: Any,
) -> Replayer:
    return Replayer(
        producer=producer,
        topic="transactions",
        data=csv,
        synthetic=True,
        options=ReplayOptions(data=csv, chunk_rows=25, **options),
        stop=stop or threading.Event(),
        progress=progress,
    )


def test_every_row_is_sent_once_keyed_by_file_and_row_with_its_label(csv: Path) -> None:
    producer = FakeProducer()
    seen: list[int] = []
    stats = replayer(csv, producer, progress=lambda s: seen.append(s.sent)).run()

    assert (stats.sent, stats.delivered, stats.failed, stats.undelivered, stats.total) == (60, 60, 0, 0, 60)
    assert [m["key"] for m in producer.sent] == [f"creditcard_synthetic.csv:{i}".encode() for i in range(60)]
    frame = pd.read_csv(csv)
    bodies = [orjson.loads(m["value"]) for m in producer.sent]
    assert [body["label"] for body in bodies] == frame["Class"].tolist()
    assert [body["Amount"] for body in bodies] == frame["Amount"].tolist()
    assert all(m["topic"] == "transactions" for m in producer.sent)
    assert seen[-1] == 60  # a final progress report


def test_rate_sets_event_times_and_kafka_timestamps_n_over_rate_apart(csv: Path) -> None:
    producer = FakeProducer()
    stats = replayer(csv, producer, pace=Pace(rate=2000), limit=20).run()
    assert stats.sent == 20
    times = [datetime.fromisoformat(orjson.loads(m["value"])["event_time"]) for m in producer.sent]
    assert [(t - times[0]).total_seconds() for t in times] == [i / 2000 for i in range(20)]
    assert [m["timestamp"] for m in producer.sent] == [int(t.timestamp() * 1000) for t in times]
    assert stats.seconds >= 19 / 2000


def test_the_paced_clock_starts_once_the_first_chunk_is_read(csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import producer.replay as replay_module

    read = replay_module.iter_validated_chunks

    def slow_read(*args: Any) -> Any:
        for chunk in read(*args):
            time.sleep(0.05)  # reading and validating a chunk of the file
            yield chunk

    monkeypatch.setattr(replay_module, "iter_validated_chunks", slow_read)
    producer = FakeProducer()
    before = datetime.now(timezone.utc)
    replayer(csv, producer, pace=Pace(rate=2000), limit=1).run()
    first = datetime.fromisoformat(orjson.loads(producer.sent[0]["value"])["event_time"])
    assert (first - before).total_seconds() >= 0.05  # stamped when it could be sent, not when the replay began


def test_start_and_limit_select_the_rows(csv: Path) -> None:
    producer = FakeProducer()
    stats = replayer(csv, producer, start=50, limit=30).run()
    assert stats.total == 10
    assert [m["key"] for m in producer.sent] == [f"creditcard_synthetic.csv:{i}".encode() for i in range(50, 60)]


def test_loop_starts_over_until_stopped_and_flushes(csv: Path) -> None:
    producer = FakeProducer()
    stop = threading.Event()

    def stop_after_two_passes(stats: ReplayStats) -> None:
        if stats.sent >= 25:
            stop.set()

    stats = replayer(csv, producer, stop=stop, progress=stop_after_two_passes, limit=10, loop=True).run()
    assert stats.interrupted
    assert stats.passes >= 3
    assert stats.sent == stats.delivered >= 25
    assert producer.sent[10]["key"] == b"creditcard_synthetic.csv:0"  # the same ids again: idempotent downstream


def test_delivery_failures_are_counted_with_the_first_reason(csv: Path) -> None:
    producer = FakeProducer(fail_keys={b"creditcard_synthetic.csv:3", b"creditcard_synthetic.csv:4"})
    stats = replayer(csv, producer, limit=10).run()
    assert (stats.sent, stats.delivered, stats.failed) == (10, 8, 2)
    assert stats.first_error == "broker said no"


def test_a_full_local_queue_is_served_then_the_row_sent_again(csv: Path) -> None:
    producer = FakeProducer(full_queue_times=3)
    stats = replayer(csv, producer, limit=5).run()
    assert stats.sent == 5
    assert len(producer.sent) == 5


def test_a_bad_row_stops_the_replay_with_its_line_after_flushing_what_was_sent(tmp_path: Path, csv: Path) -> None:
    lines = csv.read_text().splitlines()
    cells = lines[40].split(",")
    cells[3] = "abc"  # Time, V1, V2, V3
    lines[40] = ",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    producer = FakeProducer()
    runner = replayer(bad, producer)
    with pytest.raises(DataValidationError, match=r"line 41, column 'V3': 'abc' is not a number"):
        runner.run()
    assert runner.stats.sent == runner.stats.delivered == 25  # the first chunk went out and was flushed


def test_expected_rows_counts_data_lines_with_or_without_a_final_newline(tmp_path: Path) -> None:
    with_newline = tmp_path / "a.csv"
    with_newline.write_text("h\n1\n2\n3\n")
    without = tmp_path / "b.csv"
    without.write_text("h\n1\n2\n3")
    assert expected_rows(with_newline, 0, None) == expected_rows(without, 0, None) == 3
    assert expected_rows(with_newline, 1, 1) == 1
    assert expected_rows(tmp_path / "missing.csv", 0, None) is None
