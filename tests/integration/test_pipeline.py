"""The whole flow: replay -> scorer -> fraud-alerts -> sink -> store -> GET /alerts, then an API restart.

Real broker, the real MLflow model of the session, the real `fraudstream serve` over HTTP, the real scorer loop.
"""

from __future__ import annotations

from pathlib import Path

from fraudstream.kafka.local.processes import free_port

from .api_support import assert_api_serves_exactly, fetch_all_alerts, process_env, wait_ready
from .stream_support import ScorerThread, offline_flags, read_alerts, replay_rows, stream_csv, wait_caught_up


def test_replayed_stream_reaches_the_api_exactly_once_and_survives_a_restart(
    settings_factory, trained_model, services, tmp_path: Path
) -> None:
    settings = settings_factory(
        **trained_model.overrides,
        api_port=free_port(),
        alert_store_url=f"sqlite:///{tmp_path / 'alerts.db'}",
        sink_batch_timeout_s=0.2,
    )
    csv = stream_csv(trained_model.data_csv, tmp_path, rows=2000, frauds=60)
    base_url = f"http://127.0.0.1:{settings.api_port}"
    api = services(["serve"], process_env(settings), tmp_path / "api-1.log")
    wait_ready(base_url, api)

    with ScorerThread(settings) as scorer:
        replay_rows(settings, csv)
        wait_caught_up(settings, expected=2000)
        assert scorer.error is None

    expected = offline_flags(settings, trained_model.version, csv)
    on_topic = read_alerts(settings, at_least=len(expected))
    assert {alert.transaction_id for alert in on_topic} == expected
    assert len(on_topic) == len(expected)  # each flagged transaction once
    assert_api_serves_exactly(base_url, on_topic)

    assert api.stop() == 0
    restarted = services(["serve"], process_env(settings), tmp_path / "api-2.log")
    wait_ready(base_url, restarted)
    assert_api_serves_exactly(base_url, on_topic)  # nothing lost, nothing stored twice
    assert len(fetch_all_alerts(base_url, limit=1000)) == len(expected)
    assert restarted.stop() == 0
