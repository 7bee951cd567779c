"""Which creditcard.csv a command uses: the one named, else the user's real file, else a synthetic one.

Nothing is downloaded here: without the real file, a synthetic set is generated once under the state folder,
reused afterwards, and announced loudly (``DatasetChoice.description``) so that nobody mistakes its results
for results on real data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from fraudstream.data.synth import write_synthetic
from fraudstream.exceptions import DataValidationError
from fraudstream.settings import Settings

log = logging.getLogger(__name__)

KAGGLE_DATASET = "mlg-ulb/creditcardfraud"
KAGGLE_URL = "https://www.kaggle.com/datasets/mlg-ulb/creditcardfraud"
KAGGLE_SHA256 = "76274b691b16a6c49d3f159c883398e03ccd6d1ee12d9d8ee38f4b4b98551a89"
"""SHA-256 of Kaggle's creditcard.csv (150,828,752 bytes, 284,807 rows, 492 frauds)."""
DEFAULT_SYNTHETIC_ROWS = 100_000


@dataclass(frozen=True)
class DatasetChoice:
    """The data set a command will read, and a sentence saying what it is (loud when synthetic)."""

    path: Path
    synthetic: bool
    description: str


def how_to_get_real_data(settings: Settings) -> str:
    """One sentence telling the user how to put the real file where fraudstream looks for it."""
    return (
        f"To use the real data, download creditcard.csv from {KAGGLE_URL} and place it at {settings.data_path} "
        "(or run `fraudstream data fetch` with Kaggle credentials); see data/README.md."
    )


def synthetic_cache_path(settings: Settings, rows: int = DEFAULT_SYNTHETIC_ROWS, seed: int = 42) -> Path:
    """Where the synthetic fallback of ``rows`` rows and ``seed`` is kept once generated."""
    return settings.state_dir / "data" / f"creditcard_synthetic_{rows}_seed{seed}.csv"


def resolve_dataset(
    settings: Settings,
    explicit: Path | None = None,
    *,
    synthetic_rows: int = DEFAULT_SYNTHETIC_ROWS,
    seed: int = 42,
) -> DatasetChoice:
    """The explicit path (it must exist), else ``settings.data_path`` when present, else a cached synthetic set."""
    if explicit is not None:
        return _explicit(settings, Path(explicit))
    if settings.data_path.is_file():
        return DatasetChoice(settings.data_path, False, f"{settings.data_path} (FRAUD_DATA_PATH)")
    return _synthetic(settings, synthetic_rows, seed)


def _explicit(settings: Settings, path: Path) -> DatasetChoice:
    if not path.is_file():
        problem = "is a folder, expected a CSV file" if path.is_dir() else "file not found"
        raise DataValidationError(str(path), f"{problem}. {how_to_get_real_data(settings)}")
    if "synthetic" in path.name.lower():
        description = f"SYNTHETIC data: {path} (not real transactions; results on it say nothing about real fraud)"
        return DatasetChoice(path, True, description)
    return DatasetChoice(path, False, f"{path} (given explicitly)")


def _synthetic(settings: Settings, rows: int, seed: int) -> DatasetChoice:
    path = synthetic_cache_path(settings, rows, seed)
    if path.is_file():
        origin = "generated earlier, reused"
    else:
        log.info("generating a synthetic data set", extra={"path": str(path), "rows": rows, "seed": seed})
        write_synthetic(path, rows, seed=seed)
        origin = "generated now"
    description = (
        f"SYNTHETIC data: {settings.data_path} was not found, so fraudstream uses {path} ({rows:,} generated rows, "
        f"seed {seed}, {origin}). These are not real transactions: results on them say nothing about real fraud. "
        + how_to_get_real_data(settings)
    )
    log.warning(description)
    return DatasetChoice(path, True, description)
