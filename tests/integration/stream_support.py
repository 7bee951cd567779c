"""Helpers of the stream tests (no tests here): stream data, offline flags, running scorers, reading topics.

Everything runs against the session's real broker and the real MLflow store of the ``trained_model`` fixture.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from fraudstream.data.check import iter_validated_chunks
from fraudstream.kafka.clients import consumer_config
from fraudstream.model.registry import ModelRegistry
from fraudstream.schemas import FEATURES, Alert
from fraudstream.settings import Settings
from producer.bootstrap import replay
from producer.pacing import Pace
from producer.replay import ReplayOptions, ReplayStats
from scorer.bootstrap import Scorer, bootstrap

from .child_env import child_env, fields_of

FRAUDSTREAM = Path(sys.executable).with_name("fraudstream")
STREAM_FILE = "creditcard.csv"
_ENV_FIELDS = (
    "kafka_bootstrap",
    "topic_transactions",
    "topic_alerts",
    "topic_dlq",
    "topic_partitions",
    "topic_monitoring",
    "topic_monitoring_state",
    "monitor_enabled",
    "monitor_window_rows",
    "monitor_window_s",
    "min_f1",
    "scorer_group_id",
    "scorer_batch_size",
    "scorer_batch_timeout_s",
    "scorer_metrics_port",
    "scorer_transactional_id",
    "scorer_transaction_timeout_ms",
    "scorer_session_timeout_ms",
    "scorer_status_interval_s",
    "model_poll_interval_s",
    "explain_exact_budget_ms",
    "mlflow_tracking_uri",
    "mlflow_artifact_location",
    "model_name",
    "state_dir",
)


# ---- data -------------------------------------------------------------------------------------------------------
def stream_csv(source: Path, out_dir: Path, *, rows: int = 2000, frauds: int = 100, seed: int = 11) -> Path:
    """``rows`` rows of ``source`` (real rows when the fixture found them), ``frauds`` of them frauds, shuffled."""
    frame = pd.read_csv(source)
    fraud = frame[frame["Class"] == 1].sample(n=frauds, random_state=seed)
    normal = frame[frame["Class"] == 0].sample(n=rows - frauds, random_state=seed)
    mixed = pd.concat([fraud, normal]).sample(frac=1.0, random_state=seed)
    out = out_dir / STREAM_FILE
    mixed.to_csv(out, index=False, float_format="%.15g")
    return out


def offline_flags(settings: Settings, version: str, csv: Path, start: int = 0, limit: int | None = None) -> set[str]:
    """transaction_ids the given model version flags on rows ``start``..: the scorer's answer, computed in-process."""
    model = ModelRegistry(settings).load(version)
    flagged: set[str] = set()
    for first_row, frame in iter_validated_chunks(csv, start=start, limit=limit):
        hits = np.flatnonzero(model.flags(model.score(frame[list(FEATURES)].to_numpy(np.float32))))
        flagged |= {f"{csv.name}:{first_row + int(i)}" for i in hits}
    return flagged


def replay_rows(settings: Settings, csv: Path, **options: Any) -> ReplayStats:
    """Replay in-process (the same code as `fraudstream replay`), unpaced unless ``pace`` says otherwise."""
    pace = options.pop("pace", Pace())
    stats = replay(settings, ReplayOptions(data=csv, pace=pace, **options), stop=threading.Event())
    assert stats.delivered == stats.sent, stats
    return stats


class BackgroundReplay:
    """replay_rows in a thread, so a test can act on the scorers while the stream flows; joined on exit."""

    def __init__(self, settings: Settings, csv: Path, **options: Any) -> None:
        self.stats: ReplayStats | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(settings, csv), kwargs=options, daemon=True)

    def _run(self, settings: Settings, csv: Path, **options: Any) -> None:
        try:
            self.stats = replay_rows(settings, csv, **options)
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def __enter__(self) -> BackgroundReplay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()

    def join(self, timeout: float = 120) -> ReplayStats:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        assert self.stats is not None, "the replay did not finish"
        return self.stats


# ---- scorers ----------------------------------------------------------------------------------------------------
class ScorerThread:
    """A scorer running in this process (so the test can read its status and metrics); stopped on exit."""

    def __init__(self, settings: Settings) -> None:
        self.stop = threading.Event()
        self.scorer: Scorer = bootstrap(settings, stop=self.stop)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="scorer", daemon=True)

    def _run(self) -> None:
        try:
            self.scorer.run()
        except BaseException as exc:  # surfaced by the test through .error
            self.error = exc

    def __enter__(self) -> ScorerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(timeout=60)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def status(self) -> Any:
        return self.scorer.loop.status


def scorer_env(settings: Settings, **overrides: Any) -> dict[str, str]:
    """The environment of a `fraudstream score` process with these settings."""
    return child_env(fields_of(settings, _ENV_FIELDS) | overrides, COLUMNS="200")


@dataclass
class ScorerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no cleanup at all
        self.process.wait(timeout=30)


@contextlib.contextmanager
def scorer_process(settings: Settings, log: Path, **overrides: Any) -> Iterator[ScorerProcess]:
    """`fraudstream score` as a real subprocess; killed on exit if the test left it running."""
    handle = log.open("wb")
    process = subprocess.Popen(
        [str(FRAUDSTREAM), "score"], env=scorer_env(settings, **overrides), stdout=handle, stderr=subprocess.STDOUT
    )
    try:
        yield ScorerProcess(process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        handle.close()


# ---- the acceptance report ---------------------------------------------------------------------------------------
def tally(
    what: str, *, sent: int, expected: set[str], got: list[str], unit: str = "alerts", **more: object
) -> tuple[set[str], set[str]]:
    """Print what a test sent, what came out, what was lost and what was duplicated; returns (lost, duplicated)."""
    counts: dict[str, int] = {}
    for key in got:
        counts[key] = counts.get(key, 0) + 1
    lost = expected - set(counts)
    duplicated = {key for key, count in counts.items() if count > 1}
    extra = "".join(f", {name} {value}" for name, value in more.items())
    print(  # noqa: T201 (the fault tests report their tally, as the acceptance asks)
        f"\n[{what}] sent {sent}, expected {len(expected)} {unit}, came out {len(got)} "
        f"({len(counts)} distinct), lost {len(lost)}, duplicated {len(duplicated)}{extra}",
        flush=True,
    )
    return lost, duplicated


# ---- reading the topics -----------------------------------------------------------------------------------------
_LOADING = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE)


def committed_offsets(settings: Settings) -> list[int]:
    """The scorer group's committed offsets on the transactions topic (-1001 where none yet).

    Asked without require_stable (a read_uncommitted client): a read_committed one would wait while a dead
    scorer's transaction still holds pending offsets, i.e. until a restart fences it.
    """
    config = consumer_config(
        settings.kafka(), group_id=settings.scorer_group_id, client_id="stream-test-lag", read_committed=False
    )
    consumer = Consumer(config)
    partitions = [TopicPartition(settings.topic_transactions, p) for p in range(settings.topic_partitions)]
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                return [tp.offset for tp in consumer.committed(partitions, timeout=15)]
            except KafkaException as exc:  # e.g. NOT_COORDINATOR while a (re)started broker loads its groups
                error = exc.args[0]
                if time.monotonic() > deadline or (not error.retriable() and error.code() not in _LOADING):
                    raise
                time.sleep(0.3)
    finally:
        consumer.close()


def end_offsets(settings: Settings, topic: str | None = None) -> list[int]:
    """The high watermark of each partition of ``topic`` (default: the transactions topic).

    Written in transactions, a topic's end offsets count one commit (or abort) marker per transaction and partition
    besides the records: once every transaction has ended they are the offsets a consumer that read everything
    commits, but their sum is no count of records (count them with :func:`read_topic`).
    """
    name = topic or settings.topic_transactions
    config = consumer_config(settings.kafka(), group_id=f"stream-test-ends-{time.time_ns()}", client_id="stream-test")
    consumer = Consumer(config)
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(name, p), timeout=15)[1]
            for p in range(settings.topic_partitions)
        ]
    finally:
        consumer.close()


def wait_committed_to_the_end(settings: Settings, timeout: float = 90) -> list[int]:
    """Until the scorer group's committed offsets equal the transactions topic's end offsets (after the replay is
    over: nothing more to consume); returns them.

    Both are read again each time: a leader that just took over (e.g. a killed node back and preferred again) can
    answer a high watermark a few offsets behind for a moment, so one reading is no end to compare with. Offsets
    committed beyond the end never equal it: that fails too, at the timeout.
    """
    deadline = time.monotonic() + timeout
    committed: list[int] = []
    ends: list[int] = []
    while time.monotonic() < deadline:
        ends = end_offsets(settings)
        committed = committed_offsets(settings)
        if committed == ends and end_offsets(settings) == ends:
            return committed
        time.sleep(0.3)
    raise AssertionError(f"the scorer committed offsets {committed}, not the end offsets {ends}, within {timeout:g} s")


def committed_count(settings: Settings) -> int:
    """Transactions the scorer group has committed: the sum of its committed offsets (none yet counts 0)."""
    return sum(max(0, offset) for offset in committed_offsets(settings))


def wait_caught_up(settings: Settings, expected: int, timeout: float = 90) -> None:
    """Until the scorer group has committed offsets covering ``expected`` transactions."""
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = committed_count(settings)
        if done >= expected:
            return
        time.sleep(0.3)
    raise AssertionError(f"the scorer committed {done} of {expected} transactions within {timeout:g} s")


def read_topic(settings: Settings, topic: str, *, at_least: int, idle_s: float = 1.5, timeout: float = 60) -> list[Any]:
    """Every committed record of ``topic`` (read_committed): at least ``at_least``, then until idle for idle_s."""
    consumer = Consumer(
        consumer_config(settings.kafka(), group_id=f"stream-test-reader-{time.time_ns()}", client_id="stream-test")
    )
    consumer.subscribe([topic])
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    last_seen = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(500, 0.2)
            records += [m for m in batch if m.error() is None]
            if batch:
                last_seen = time.monotonic()
            elif len(records) >= at_least and time.monotonic() - last_seen >= idle_s:
                break
    finally:
        consumer.close()
    return records


def read_alerts(settings: Settings, *, at_least: int) -> list[Alert]:
    return [
        Alert.model_validate_json(m.value()) for m in read_topic(settings, settings.topic_alerts, at_least=at_least)
    ]
