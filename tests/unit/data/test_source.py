"""Choosing the data set: the path given, else the user's real file, else a cached synthetic set said loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudstream.data import source
from fraudstream.data.check import validate_csv
from fraudstream.data.source import resolve_dataset, synthetic_cache_path
from fraudstream.data.synth import write_synthetic
from fraudstream.exceptions import DataValidationError
from fraudstream.settings import Settings, load_settings

ROWS = 2000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(state_dir=tmp_path / "state", data_path=tmp_path / "data" / "creditcard.csv")


@pytest.fixture
def some_csv(tmp_path: Path) -> Path:
    return write_synthetic(tmp_path / "given" / "creditcard_synthetic.csv", 50, seed=1)


def test_an_explicit_path_wins(settings: Settings, some_csv: Path) -> None:
    real_looking = some_csv.rename(some_csv.with_name("mine.csv"))
    settings.data_path.parent.mkdir(parents=True)
    settings.data_path.write_text("present but not chosen")

    choice = resolve_dataset(settings, real_looking)

    assert (choice.path, choice.synthetic) == (real_looking, False)
    assert "mine.csv" in choice.description


def test_an_explicit_synthetic_file_is_announced_as_such(settings: Settings, some_csv: Path) -> None:
    choice = resolve_dataset(settings, some_csv)
    assert choice.synthetic
    assert "SYNTHETIC" in choice.description


def test_an_explicit_path_that_does_not_exist_is_refused_with_a_hint(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="file not found") as caught:
        resolve_dataset(settings, tmp_path / "missing.csv")
    assert "kaggle.com/datasets/mlg-ulb/creditcardfraud" in str(caught.value)
    assert str(settings.data_path) in str(caught.value)


def test_the_users_file_at_data_path_is_used(settings: Settings, some_csv: Path) -> None:
    settings.data_path.parent.mkdir(parents=True)
    some_csv.replace(settings.data_path)

    choice = resolve_dataset(settings)

    assert (choice.path, choice.synthetic) == (settings.data_path, False)
    assert not (settings.state_dir / "data").exists()


def test_without_data_a_synthetic_set_is_generated_and_announced(settings: Settings) -> None:
    choice = resolve_dataset(settings, synthetic_rows=ROWS, seed=3)

    assert choice.synthetic
    assert choice.path == settings.state_dir / "data" / f"creditcard_synthetic_{ROWS}_seed3.csv"
    assert choice.path == synthetic_cache_path(settings, ROWS, 3)
    assert "SYNTHETIC" in choice.description
    assert str(settings.data_path) in choice.description
    assert "fraudstream data fetch" in choice.description
    assert validate_csv(choice.path).rows == ROWS


def test_the_synthetic_set_is_reused(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    first = resolve_dataset(settings, synthetic_rows=ROWS, seed=3)
    before = first.path.read_bytes()

    def no_second_generation(*args: object, **kwargs: object) -> Path:
        raise AssertionError("the cached synthetic set should have been reused")

    monkeypatch.setattr(source, "write_synthetic", no_second_generation)
    again = resolve_dataset(settings, synthetic_rows=ROWS, seed=3)

    assert again.path == first.path
    assert again.path.read_bytes() == before
    assert "reused" in again.description


def test_another_size_or_seed_gets_its_own_cache(settings: Settings) -> None:
    one = resolve_dataset(settings, synthetic_rows=ROWS, seed=3).path
    other = resolve_dataset(settings, synthetic_rows=ROWS, seed=4).path
    assert one != other
    assert one.read_bytes() != other.read_bytes()
