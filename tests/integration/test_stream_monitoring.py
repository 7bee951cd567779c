"""Live monitoring on a real broker and a real MLflow store: windows on fraud-monitoring (read_committed) that
match an offline count, drift detected on a perturbed replay, exactly once across a kill -9, and a challenger
scored in production's shadow while the aliases move."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraudstream.data.check import iter_validated_chunks
from fraudstream.model.registry import ModelRegistry
from fraudstream.monitoring import MonitoringRecord
from fraudstream.schemas import FEATURES, LABEL_COLUMN
from producer.drift import Drift
from producer.pacing import Pace

from .stream_support import (
    STREAM_FILE,
    BackgroundReplay,
    ScorerThread,
    committed_count,
    read_alerts,
    read_topic,
    replay_rows,
    scorer_process,
    wait_caught_up,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from fraudstream.settings import Settings
    from tests.conftest import TrainedModel
    from tests.integration.conftest import SettingsFactory

ROWS = 2000
WINDOW = 500
DRIFT = "Amount*3,V13+2,V15+2"
DRIFTED = ("Amount", "V13", "V15")


def training_sample(source: Path, out_dir: Path, rows: int = ROWS, seed: int = 5) -> Path:
    """``rows`` rows drawn uniformly from the model's own data (its fraud rate too): the training distribution."""
    frame = pd.read_csv(source).sample(n=rows, random_state=seed)
    out = out_dir / STREAM_FILE
    frame.to_csv(out, index=False, float_format="%.15g")
    return out


def monitored(trained_model: TrainedModel, settings_factory: SettingsFactory, **overrides: object) -> Settings:
    # The test model passed a gate of min_f1 0.5 (tests/conftest.py): the same bar decides "degraded" here.
    defaults: dict[str, object] = {
        "scorer_batch_size": 100,
        "scorer_batch_timeout_s": 0.05,
        "monitor_window_rows": WINDOW,
        "monitor_window_s": 600.0,
        "min_f1": 0.5,
    }
    return settings_factory(**trained_model.overrides, **{**defaults, **overrides})


def read_windows(settings: Settings, at_least: int) -> list[MonitoringRecord]:
    records = read_topic(settings, settings.topic_monitoring, at_least=at_least)
    return [MonitoringRecord.model_validate_json(m.value()) for m in records]


def offline_confusion(settings: Settings, version: str, csv: Path) -> Counter[str]:
    model = ModelRegistry(settings).load(version)
    counts: Counter[str] = Counter()
    for _, frame in iter_validated_chunks(csv):
        flags = model.flags(model.score(frame[list(FEATURES)].to_numpy(np.float32)))
        labels = frame[LABEL_COLUMN].to_numpy()
        counts["tp"] += int(np.sum(flags & (labels == 1)))
        counts["fp"] += int(np.sum(flags & (labels == 0)))
        counts["fn"] += int(np.sum(~flags & (labels == 1)))
    return counts


def test_a_training_like_replay_is_ok_in_every_window_and_its_confusion_matches_the_offline_count(
    trained_model: TrainedModel, settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    settings = monitored(trained_model, settings_factory)
    csv = training_sample(trained_model.data_csv, tmp_path)
    with ScorerThread(settings) as scorer:
        replay_rows(settings, csv)
        wait_caught_up(settings, ROWS)
    assert scorer.error is None
    windows = read_windows(settings, at_least=ROWS // WINDOW)
    assert {w.role for w in windows} == {"production"}
    assert {w.model_version for w in windows} == {trained_model.version}
    assert sum(w.scored for w in windows) == ROWS
    assert len(windows) >= ROWS // WINDOW
    assert [w.window for w in windows] == list(range(1, len(windows) + 1))
    assert all(w.profiled for w in windows)
    assert [w.status for w in windows] == ["ok"] * len(windows), [w.reasons for w in windows]
    assert max(w.max_feature_psi for w in windows if w.scored >= WINDOW) < 0.1
    total = sum((w.confusion for w in windows[1:]), windows[0].confusion)
    expected = offline_confusion(settings, trained_model.version, csv)
    assert (total.tp, total.fp, total.fn) == (expected["tp"], expected["fp"], expected["fn"])
    assert total.labelled == ROWS
    # the scorer's gauges show the last window
    last = windows[-1]
    gauge = scorer.scorer.metrics.value
    labels = {"version": last.model_version, "role": "production"}
    assert gauge("fraudstream_scorer_feature_psi", feature="V1", **labels) == last.feature_psi["V1"]
    assert gauge("fraudstream_scorer_monitoring_status", status="ok", **labels) == 1


def test_a_drifted_replay_is_detected_in_the_first_windows_and_only_on_the_drifted_features(
    trained_model: TrainedModel, settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    settings = monitored(trained_model, settings_factory)
    csv = training_sample(trained_model.data_csv, tmp_path)
    with ScorerThread(settings):
        replay_rows(settings, csv, drift=Drift.parse(DRIFT))
        wait_caught_up(settings, ROWS)
    windows = read_windows(settings, at_least=ROWS // WINDOW)
    full = [w for w in windows if w.scored >= WINDOW]
    assert len(full) >= 2
    assert {w.status for w in full[:2]} <= {"drift", "degraded"}
    assert any(w.status == "drift" for w in full[:2]), [(w.status, w.reasons) for w in full[:2]]
    for w in full:
        assert min(w.feature_psi[name] for name in DRIFTED) > 0.25, w.feature_psi
        assert max(v for name, v in w.feature_psi.items() if name not in DRIFTED) < 0.1, w.feature_psi
        assert all(any(reason.startswith(f"{name} PSI") for reason in w.reasons) for name in DRIFTED)


def test_kill_9_mid_window_then_restart_publishes_every_transaction_in_exactly_one_window(
    trained_model: TrainedModel, settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    settings = monitored(
        trained_model,
        settings_factory,
        scorer_batch_size=50,
        monitor_window_rows=300,
        monitor_window_s=3.0,
        scorer_transactional_id=f"scorer-mon-{tmp_path.name}",
        scorer_session_timeout_ms=45_000,
    )
    csv = training_sample(trained_model.data_csv, tmp_path)

    with (
        scorer_process(settings, tmp_path / "first.log") as first,
        BackgroundReplay(settings, csv, pace=Pace(rate=400)) as replay,
    ):
        deadline = time.monotonic() + 60
        while committed_count(settings) < 450 and time.monotonic() < deadline:  # inside the second window
            time.sleep(0.05)
        first.kill()
        at_kill = committed_count(settings)
        assert 0 < at_kill < ROWS, f"the kill should land mid-stream, committed {at_kill}"
        replay.join()
    with scorer_process(settings, tmp_path / "second.log") as second:
        wait_caught_up(settings, ROWS)
        time.sleep(settings.monitor_window_s + 1.5)  # idle: the last window is published on its own
        assert second.terminate() == 0, second.output()[-3000:]
        resumed = "monitoring resumes window" in second.output()  # unless the kill fell right after a window closed

    windows = read_windows(settings, at_least=2)
    numbers = Counter(w.window for w in windows)
    print(  # noqa: T201 (the acceptance asks for the tally)
        f"\n[monitoring kill -9] committed at kill {at_kill}, windows {len(windows)}, "
        f"scored {sum(w.scored for w in windows)} of {ROWS}, open window resumed {resumed}",
        flush=True,
    )
    assert not [n for n, count in numbers.items() if count > 1], numbers
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    assert sum(w.scored for w in windows) == ROWS


def test_a_challenger_is_monitored_on_the_same_windows_and_a_moved_production_alias_takes_over(
    trained_model: TrainedModel,
    settings_factory: SettingsFactory,
    train_and_promote: Callable[[Path, Path, str], str],
    tmp_path: Path,
) -> None:
    settings = monitored(trained_model, settings_factory, model_poll_interval_s=0.5, monitor_window_rows=250)
    store = Path(settings.tracking_uri.removeprefix("sqlite:///")).parent
    registry = ModelRegistry(settings)
    original = trained_model.version
    csv = training_sample(trained_model.data_csv, tmp_path)
    half = ROWS // 2
    client, name = registry.client, settings.model_name
    try:
        challenger = train_and_promote(store, trained_model.data_csv, name)
        client.set_registered_model_alias(name, settings.model_alias, original)  # the new one shadows production
        client.set_registered_model_alias(name, settings.model_challenger_alias, challenger)
        with ScorerThread(settings) as scorer:
            replay_rows(settings, csv, limit=half)
            wait_caught_up(settings, half)
            client.set_registered_model_alias(name, settings.model_alias, challenger)  # promote: swap the roles
            client.set_registered_model_alias(name, settings.model_challenger_alias, original)
            deadline = time.monotonic() + 30
            while scorer.status.model_version != challenger and time.monotonic() < deadline:
                time.sleep(0.1)
            assert scorer.status.model_version == challenger
            time.sleep(1.5)  # the shadow's watcher polls at the same interval
            replay_rows(settings, csv, start=half)
            wait_caught_up(settings, ROWS)
        assert scorer.alive is False
        assert scorer.error is None
    finally:  # other tests share this store: give the aliases back
        client.set_registered_model_alias(name, settings.model_alias, original)
        client.delete_registered_model_alias(name, settings.model_challenger_alias)

    windows = read_windows(settings, at_least=ROWS // 250)
    alerts = read_alerts(settings, at_least=1)
    by_window: dict[int, dict[str, MonitoringRecord]] = {}
    for w in windows:
        assert w.role not in by_window.setdefault(w.window, {}), f"window {w.window} has two {w.role} records"
        by_window[w.window][w.role] = w
    paired = {n: roles for n, roles in by_window.items() if set(roles) == {"production", "challenger"}}
    assert len(paired) >= len(by_window) - 2, by_window.keys()  # at most the windows around the switch differ
    for roles in paired.values():
        production, shadow = roles["production"], roles["challenger"]
        assert (production.window_start, production.window_end) == (shadow.window_start, shadow.window_end)
        assert production.scored == shadow.scored
        assert production.model_version != shadow.model_version
    first_rows = sum(r["production"].scored for r in by_window.values() if r["production"].model_version == original)
    assert first_rows == half
    versions = [roles["production"].model_version for _, roles in sorted(by_window.items())]
    assert versions == sorted(versions, key=lambda v: v != original)  # original first, then the new one only
    assert versions[-1] == challenger
    assert {r["challenger"].model_version for r in paired.values() if r["production"].model_version == challenger} == {
        original
    }
    # only production alerts: each alert names the version that held the production alias for its row
    for alert in alerts:
        row = int(alert.transaction_id.rsplit(":", 1)[1])
        assert alert.model_version == (original if row < half else challenger)
    assert Counter(alert.transaction_id for alert in alerts).most_common(1)[0][1] == 1
