"""How the trainer's defaults were chosen: quality on VALIDATION rows and fit time, per configuration.

The test split is never looked at here (choosing defaults on it would leak, as the seed's SMOTE-before-split
did): each configuration is fitted on the training part, and judged by validation PR-AUC and by the best F1
over thresholds on validation rows. Prints one line per configuration.

    python benchmarks/train_grid.py --data /path/to/creditcard.csv
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from fraudstream.data.check import load_dataset
from trainer.config import TrainConfig
from trainer.export import forest_to_onnx
from trainer.pipeline import build_pipeline
from trainer.split import split_dataset
from trainer.threshold import choose_threshold

GRID: list[dict[str, object]] = [
    {"n_estimators": 100, "max_depth": 12, "smote_ratio": 0.1},
    {"n_estimators": 100, "max_depth": None, "smote_ratio": 0.1},
    {"n_estimators": 100, "max_depth": 16, "smote_ratio": 0.1},
    {"n_estimators": 200, "max_depth": 12, "smote_ratio": 0.1},
    {"n_estimators": 100, "max_depth": 12, "smote_ratio": 0.05},
    {"n_estimators": 100, "max_depth": 12, "smote_ratio": 0.3},
    {"n_estimators": 100, "max_depth": 12, "smote_ratio": 0.1, "max_features": 0.5},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="creditcard.csv (the full 284,807-row file)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    frame, summary = load_dataset(args.data)
    splits = split_dataset(frame, kind="stratified", test_size=0.2, val_size=0.2, seed=args.seed)
    fit, val = len(splits.fit), len(splits.validation)
    print(f"data: {summary.rows:,} rows, {summary.frauds} frauds; fit {fit:,} / validation {val:,} rows")
    from sklearn.metrics import average_precision_score

    print(f"{'configuration':<70} {'fit s':>7} {'val PR-AUC':>10} {'val F1*':>8} {'onnx MB':>8}")

    for overrides in GRID:
        config = TrainConfig(seed=args.seed, **overrides)  # type: ignore[arg-type]
        started = time.perf_counter()
        pipeline = build_pipeline(config).fit(splits.fit.X, splits.fit.y)
        seconds = time.perf_counter() - started
        scores = pipeline.predict_proba(splits.validation.X)[:, 1]
        best = choose_threshold(splits.validation.y, scores)
        pr_auc = average_precision_score(splits.validation.y, scores)
        size_mb = len(forest_to_onnx(pipeline)) / 1e6
        label = ", ".join(f"{key}={value}" for key, value in overrides.items())
        print(f"{label:<70} {seconds:>7.1f} {pr_auc:>10.4f} {best.f1:>8.4f} {size_mb:>8.1f}", flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak_mb:,.0f} MB. F1* = best F1 over thresholds on validation rows (optimistic by design;")
    print("it ranks configurations, the test split reports the chosen one).")


if __name__ == "__main__":
    main()
