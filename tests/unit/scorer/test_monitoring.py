"""The scorer's monitoring observer without Kafka: binning parity with the profile, windows by rows and time, the
state that commits with each batch (abort forgets, a restore resumes), the challenger's shadow, no profile."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import numpy as np
import orjson
import pytest

from fraudstream.model.profile import ReferenceProfile
from fraudstream.model.serving import FraudModel
from fraudstream.monitoring import MonitoringRecord, Thresholds
from fraudstream.schemas import FEATURES
from scorer.batch import ScoredBatch, ScoredRows
from scorer.histograms import ProfileBins
from scorer.monitor_state import MonitorState
from scorer.monitoring import WindowMonitor, WindowRule

from .fakes import AmountEngine

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
AMOUNT = FEATURES.index("Amount")


def training_rows(n: int = 5000, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(n, len(FEATURES)))
    matrix[:, 0] = rng.uniform(0, 170_000, n)
    matrix[:, AMOUNT] = np.round(rng.exponential(80, n)) * (rng.random(n) > 0.25)  # ties at 0 collapse bins
    return matrix


def model(version: str, *, profiled: bool = True, threshold: float = 0.5) -> FraudModel:
    rows = training_rows()
    profile = None
    if profiled:
        profile = ReferenceProfile.compute(rows, np.zeros(len(rows)), np.clip(rows[:, AMOUNT] / 1000, 0, 1))
    return FraudModel(name="m", version=version, threshold=threshold, engine=AmountEngine(), profile=profile)  # type: ignore[arg-type]


def batch(m: FraudModel, matrix: np.ndarray, at: datetime, labels: np.ndarray | None = None) -> ScoredBatch:
    matrix = matrix.astype(np.float32)
    scores = m.score(matrix)
    flags = m.flags(scores)
    labels = np.full(len(matrix), -1, dtype=np.int8) if labels is None else labels.astype(np.int8)
    return ScoredBatch(
        consumed=len(matrix), scored=len(matrix), scored_at=at, model=m, rows=ScoredRows(matrix, scores, flags, labels)
    )


class MemoryState:
    """The state topic: the value of the last committed state record."""

    def __init__(self) -> None:
        self.value: bytes | None = None
        self.absent: list[str] = []

    def read(self, scorer: str) -> MonitorState | None:
        return None if self.value is None else MonitorState.from_json(orjson.loads(self.value))

    def missing(self, topics: list[str]) -> list[str]:
        return [name for name in topics if name in self.absent]


def monitor(rows: int = 1000, seconds: float = 60.0, **kwargs: object) -> WindowMonitor:
    return WindowMonitor(
        scorer="s1",
        topic="mon",
        state_topic="state",
        rule=WindowRule(rows=rows, seconds=seconds),
        thresholds=Thresholds(min_f1=0.5),
        **kwargs,  # type: ignore[arg-type]
    )


def commit(mon: WindowMonitor, b: ScoredBatch, store: MemoryState | None = None) -> list[MonitoringRecord]:
    out = mon.records(b)
    mon.committed(b)
    if store is not None:
        store.value = next(record.value for topic, record in out if topic == "state")
    return [MonitoringRecord.model_validate_json(record.value) for topic, record in out if topic == "mon"]


def test_binning_all_columns_at_once_matches_the_profiles_own_counts() -> None:
    rows = training_rows()
    profile = ReferenceProfile.compute(rows, np.zeros(len(rows)), np.linspace(0, 1, 100))
    bins = ProfileBins.of(profile)
    live = training_rows(777, seed=5) * 1.3
    counts = bins.features.trim(bins.features.counts(live))
    for i, name in enumerate(FEATURES):
        assert counts[i] == profile.bin_counts(name, live[:, i]).tolist(), name
    live32 = live.astype(np.float32)  # the scorer's matrix: compared with float32 edges
    counts32 = bins.features.trim(bins.features.counts(live32))
    for i, name in enumerate(FEATURES):
        assert counts32[i] == profile.bin_counts(name, live32[:, i]).tolist(), name
    scores = np.array([0.0, 0.1, 0.15, 0.3, 0.999, 1.0])
    assert bins.score.trim(bins.score.counts(scores))[0] == profile.score_bin_counts(scores).tolist()
    assert len(set(bins.features.sizes.tolist())) > 1  # Amount's tied zeros really collapsed bins


def test_a_window_closes_at_n_rows_with_psi_near_zero_on_training_like_rows_and_confusion_counts() -> None:
    m = model("1")
    mon = monitor(rows=1000)
    rng = np.random.default_rng(3)
    records: list[MonitoringRecord] = []
    labels_all, flags_all = [], []
    for i in range(4):
        rows = training_rows(500, seed=10 + i)
        labels = (rng.random(500) < 0.2).astype(int)
        b = batch(m, rows, T0 + timedelta(seconds=i), labels)
        labels_all.append(labels)
        flags_all.append(b.rows.flags)  # type: ignore[union-attr]
        records += commit(mon, b)
    assert [r.window for r in records] == [1, 2]
    assert [r.scored for r in records] == [1000, 1000]
    assert all(r.max_feature_psi < 0.1 and r.profiled for r in records)
    flags, labels = np.concatenate(flags_all), np.concatenate(labels_all)
    total = records[0].confusion + records[1].confusion
    assert total.tp == int(np.sum(flags & (labels == 1)))
    assert total.fp == int(np.sum(flags & (labels == 0)))
    assert total.fn == int(np.sum(~flags & (labels == 1)))
    assert total.labelled == 2000
    assert sum(records[0].feature_counts["V1"]) == 1000


def test_shifted_features_drift_and_the_others_stay_stable() -> None:
    m = model("1")
    mon = monitor(rows=1000)
    rows = training_rows(1000, seed=9)
    rows[:, AMOUNT] *= 3
    rows[:, FEATURES.index("V1")] += 2
    (record,) = commit(mon, batch(m, rows, T0))
    assert record.status == "drift"
    assert record.feature_psi["Amount"] > 0.25
    assert record.feature_psi["V1"] > 0.25
    assert max(v for k, v in record.feature_psi.items() if k not in ("Amount", "V1")) < 0.1
    assert any("V1 PSI" in reason for reason in record.reasons)


def test_an_aborted_batch_is_forgotten_and_a_time_window_is_published_when_idle() -> None:
    m = model("1")
    clock = [T0]
    mon = monitor(rows=10_000, seconds=5.0, now=lambda: clock[0])
    commit(mon, batch(m, training_rows(100), T0))
    b = batch(m, training_rows(100), T0 + timedelta(seconds=1))
    mon.records(b)
    mon.aborted(b)
    assert mon.state.window is not None
    assert mon.state.window.rows == 100
    assert mon.pending(final=False) == []  # its time is not up yet
    clock[0] = T0 + timedelta(seconds=6)
    out = mon.pending(final=False)
    mon.committed(ScoredBatch(extra=out))
    (record,) = [MonitoringRecord.model_validate_json(r.value) for topic, r in out if topic == "mon"]
    assert record.scored == 100
    assert mon.state.window is None
    assert mon.pending(final=True) == []


def test_a_restart_resumes_the_committed_window_and_a_replayed_commit_is_not_published_twice() -> None:
    m = model("1")
    store = MemoryState()
    first = monitor(rows=300, state_source=store)
    commit(first, batch(m, training_rows(200), T0), store)
    # the next batch closes the window; its commit's outcome is unknown (reported aborted), but it did commit
    b = batch(m, training_rows(200, seed=2), T0 + timedelta(seconds=1))
    out = first.records(b)
    store.value = next(r.value for t, r in out if t == "state")
    first.aborted(b)
    published = [MonitoringRecord.model_validate_json(r.value) for t, r in out if t == "mon"]
    assert [r.scored for r in published] == [400]
    # the same replica reads the committed state back: window 1 is done, nothing is counted twice
    later = commit(first, batch(m, training_rows(100, seed=3), T0 + timedelta(seconds=2)), store)
    assert later == []
    assert first.state.window is not None
    assert first.state.window.number == 2
    assert first.state.window.rows == 100
    # a new process (kill -9, restart) resumes window 2 from the state record
    second = monitor(rows=300, state_source=store)
    (record,) = commit(second, batch(m, training_rows(200, seed=4), T0 + timedelta(seconds=3)), store)
    assert (record.window, record.scored) == (2, 300)


def test_the_challenger_is_scored_in_the_shadow_on_the_same_windows() -> None:
    production, shadow = model("1", threshold=0.5), model("2", threshold=0.05)

    class Watcher:
        current = shadow

        def poll(self) -> bool:
            return False

    mon = monitor(rows=500, challenger=Watcher())  # type: ignore[arg-type]
    rows = training_rows(500)
    b = batch(production, rows, T0)
    records = commit(mon, b)
    by_role = {r.role: r for r in records}
    assert set(by_role) == {"production", "challenger"}
    assert by_role["challenger"].model_version == "2"
    assert (by_role["production"].window_start, by_role["production"].window) == (
        by_role["challenger"].window_start,
        by_role["challenger"].window,
    )
    assert by_role["challenger"].alerts > by_role["production"].alerts == len(b.alerts) == 0  # the shadow never alerts
    Watcher.current = None  # the alias is gone: the next window measures production alone
    assert {r.role for r in commit(mon, batch(production, rows, T0 + timedelta(seconds=1)))} == {"production"}


def test_a_version_without_profile_is_counted_without_psi_and_says_so() -> None:
    mon = monitor(rows=100)
    (record,) = commit(mon, batch(model("1", profiled=False), training_rows(100), T0))
    assert (record.scored, record.profiled, record.feature_psi, record.status) == (100, False, {}, "ok")
    assert any("no reference profile" in reason for reason in record.reasons)


def test_a_production_switch_closes_the_window_before_the_new_version_scores() -> None:
    mon = monitor(rows=1000)
    commit(mon, batch(model("1"), training_rows(100), T0))
    (closed,) = commit(mon, batch(model("2"), training_rows(100), T0 + timedelta(seconds=1)))
    assert (closed.model_version, closed.scored) == ("1", 100)
    assert mon.state.window is not None
    assert mon.state.window.lineup == (("production", "m", "2"),)


@pytest.mark.parametrize("broken", ["matrix"])
def test_a_batch_it_cannot_measure_is_left_out_without_raising(broken: str) -> None:
    mon = monitor(rows=1000)
    b = batch(model("1"), training_rows(10), T0)
    b.rows = dataclasses.replace(b.rows, matrix=np.zeros((10, 3)))  # type: ignore[arg-type]
    assert mon.records(b) == []


def test_without_its_topics_the_monitor_stays_out_of_the_transactions() -> None:
    store = MemoryState()
    store.absent = ["state"]
    mon = monitor(rows=100, state_source=store)
    out = mon.records(batch(model("1"), training_rows(100), T0))
    assert [topic for topic, _ in out] == ["mon"]  # windows still published, no state record
    store.absent = ["mon", "state"]
    off = monitor(rows=100, state_source=store)
    assert off.records(batch(model("1"), training_rows(100), T0)) == []
    assert off.pending(final=True) == []


def test_only_an_abort_with_a_replaced_producer_reads_the_state_back() -> None:
    store = MemoryState()
    reads: list[str] = []
    original = store.read

    def counting(scorer: str) -> MonitorState | None:
        reads.append(scorer)
        return original(scorer)

    store.read = counting  # type: ignore[method-assign]
    replaced = [0]
    mon = monitor(rows=1000, state_source=store, replacements=lambda: replaced[0])
    commit(mon, batch(model("1"), training_rows(100), T0), store)
    assert len(reads) == 1  # at start
    b = batch(model("1"), training_rows(100), T0 + timedelta(seconds=1))
    mon.records(b)
    mon.aborted(b)  # a clean abort: the committed state is what this process holds
    commit(mon, b, store)
    assert len(reads) == 1
    mon.records(b)
    mon.aborted(b)
    replaced[0] += 1  # the loop replaced the producer: the commit's outcome was unknown
    commit(mon, b, store)
    assert len(reads) == 2
