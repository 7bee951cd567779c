"""Wiring a replay: which data file, and that parts can be swapped for fakes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from fraudstream.data.source import synthetic_cache_path
from fraudstream.data.synth import write_synthetic
from fraudstream.exceptions import DataValidationError
from fraudstream.settings import Settings, load_settings
from producer.bootstrap import bootstrap, choose_data
from producer.replay import ReplayOptions

from .test_replay import FakeProducer


def test_an_explicit_file_that_is_missing_is_refused_with_a_hint(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path)
    with pytest.raises(DataValidationError, match=r"file not found\. To use the real data"):
        choose_data(settings, tmp_path / "nope.csv")


@pytest.fixture
def no_real_data(tmp_path: Path) -> Settings:
    """Settings whose real file is absent, with the synthetic fallback already cached (small, so tests are fast)."""
    settings = load_settings(state_dir=tmp_path, data_path=tmp_path / "absent.csv", topic_transactions="tx-test")
    write_synthetic(synthetic_cache_path(settings), rows=40, seed=1)
    return settings


def test_without_real_data_the_synthetic_set_is_chosen_and_flagged(no_real_data: Settings) -> None:
    path, synthetic = choose_data(no_real_data, None)
    assert synthetic
    assert path == synthetic_cache_path(no_real_data)


def test_bootstrap_wires_a_replayer_with_the_parts_given(no_real_data: Settings) -> None:
    settings = no_real_data
    producer = FakeProducer()
    replayer = bootstrap(
        settings, ReplayOptions(limit=7), producer=producer, stop=threading.Event(), create_topics=False
    )
    stats = replayer.run()
    assert (stats.sent, stats.delivered, stats.synthetic) == (7, 7, True)
    assert {message["topic"] for message in producer.sent} == {"tx-test"}
