"""Hot reload: a version promoted while the scorer runs takes over between batches, without a restart, and no
transaction is lost or scored twice across the switch."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from fraudstream.model.registry import ModelRegistry

from .stream_support import (
    ScorerThread,
    offline_flags,
    read_alerts,
    replay_rows,
    stream_csv,
    wait_caught_up,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.conftest import TrainedModel
    from tests.integration.conftest import SettingsFactory

HALF = 1000


def test_a_promoted_version_takes_over_mid_run_and_no_alert_is_lost(
    trained_model: TrainedModel,
    settings_factory: SettingsFactory,
    train_and_promote: Callable[[Path, Path, str], str],
    tmp_path: Path,
) -> None:
    settings = settings_factory(**trained_model.overrides, model_poll_interval_s=0.5, scorer_batch_size=250)
    stream = stream_csv(trained_model.data_csv, tmp_path)
    store = Path(settings.tracking_uri.removeprefix("sqlite:///")).parent
    registry = ModelRegistry(settings)
    original = trained_model.version

    with ScorerThread(settings) as scorer:
        replay_rows(settings, stream, limit=HALF)
        wait_caught_up(settings, HALF)
        assert scorer.status.model_version == original
        try:
            new_version = train_and_promote(store, trained_model.data_csv, settings.model_name)
            assert new_version != original
            deadline = time.monotonic() + 30
            while scorer.status.model_version != new_version and time.monotonic() < deadline:
                time.sleep(0.1)
            assert scorer.status.model_version == new_version, "the scorer did not pick up the promoted version"
            replay_rows(settings, stream, start=HALF)
            wait_caught_up(settings, 2 * HALF)
        finally:  # other tests share this store: give the alias back to the fixture's version
            registry.client.set_registered_model_alias(settings.model_name, settings.model_alias, original)
        expected_before = offline_flags(settings, original, stream, limit=HALF)
        expected_after = offline_flags(settings, new_version, stream, start=HALF)
        alerts = read_alerts(settings, at_least=len(expected_before) + len(expected_after))
        assert scorer.alive  # the same scorer throughout: no restart
        assert scorer.error is None

    def row(alert_id: str) -> int:
        return int(alert_id.rsplit(":", 1)[1])

    ids = Counter(alert.transaction_id for alert in alerts)
    assert max(ids.values()) == 1
    assert set(ids) == expected_before | expected_after
    assert {alert.model_version for alert in alerts if row(alert.transaction_id) < HALF} == {original}
    assert {alert.model_version for alert in alerts if row(alert.transaction_id) >= HALF} == {new_version}
