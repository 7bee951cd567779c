"""How the trainer's defaults are chosen: out-of-fold quality on TRAINING rows only, and fit time.

The holdout (20% by content, as the trainer holds it out) is dropped before anything else and never looked at:
choosing defaults on it would leak, as the seed's SMOTE-before-split did. Each configuration is scored out of
fold over all training rows (3 folds by content, the trainer's own protocol) and judged by out-of-fold PR-AUC
and by F1 at the threshold chosen on those same scores (optimistic by design; it ranks configurations, the
holdout reports the chosen one in benchmarks/train.py). Cheap by design, the machine being shared:

* ``--grid coarse``: one factor at a time around a base, with few trees (``--trees``, default 50: more trees
  smooth the scores of every configuration alike), on all training frauds and a share of the training normals
  (``--normals``, chosen by content);
* ``--grid final``: the finalists with their real tree counts, over ``--seeds``, with the wall time of the
  trainer's whole fitting protocol (k fold fits + the final fit on all training rows).

Every timing line carries the 1-minute load average, since other work shares the 2 cores.

    python benchmarks/train_grid.py --data /path/to/creditcard.csv --grid coarse
    python benchmarks/train_grid.py --data /path/to/creditcard.csv --grid final --seeds 42 7
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from fraudstream.data.check import load_dataset
from fraudstream.model.features import model_input
from trainer.config import TrainConfig
from trainer.pipeline import build_pipeline
from trainer.split import Part, content_folds, split_dataset
from trainer.threshold import choose_threshold, out_of_fold_scores

BASE: dict[str, Any] = {"max_depth": 12, "smote_ratio": 0.05}
COARSE: list[dict[str, Any]] = [
    {},
    {"max_depth": 8},
    {"max_depth": 16},
    {"max_depth": 20},
    {"max_depth": None},
    {"max_depth": None, "min_samples_leaf": 2},
    {"max_depth": None, "min_samples_leaf": 5},
    {"max_features": "log2"},
    {"max_features": 0.3},
    {"max_features": 0.5},
    {"smote_ratio": 0.01},
    {"smote_ratio": 0.1},
    {"smote_ratio": 0.3},
    {"smote_k_neighbors": 3},
    {"smote_k_neighbors": 10},
    {"class_weight": "balanced_subsample"},
    {"smote_ratio": 0.01, "class_weight": "balanced_subsample"},
    {"time_encoding": "time_of_day"},
    {"time_encoding": "none"},
    {"max_samples": 0.5},
    {"max_samples": 0.25},
    {"max_depth": None, "max_samples": 0.5},
    {"max_depth": 16, "min_samples_leaf": 2, "max_samples": 0.5},
]
FINAL: list[dict[str, Any]] = [
    {"n_estimators": 100, "max_depth": 12, "smote_ratio": 0.05},  # the defaults before issue 10
    {"n_estimators": 100, "max_depth": 12, "smote_ratio": 0.05, "max_samples": 0.5, "time_encoding": "time_of_day"},
    {"n_estimators": 150, "max_depth": 12, "smote_ratio": 0.1, "max_samples": 0.5, "time_encoding": "time_of_day"},
    {
        "n_estimators": 150,
        "max_depth": None,
        "min_samples_leaf": 5,
        "smote_ratio": 0.1,
        "max_samples": 0.5,
        "time_encoding": "time_of_day",
    },
]
"""Edited after the coarse grid: the configurations worth their full cost (see README, "Honest results")."""


def part_of(train: Part, kept: np.ndarray) -> Part:
    return Part(X=train.X[kept], y=train.y[kept], rows=train.rows[kept], keys=train.keys[kept])


def _cpu() -> float:
    """CPU seconds of this process (both cores count): on a quiet 2-core machine wall time is about half."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average() -> float:
    return os.getloadavg()[0]


def oof_line(config: TrainConfig, X: Any, y: np.ndarray, folds: np.ndarray, final_fit: bool) -> dict[str, float]:
    """Out-of-fold PR-AUC and F1 of one configuration, and what its fits cost."""
    encoded = pd.DataFrame(model_input(X.to_numpy(), config.time_encoding), columns=X.columns, index=X.index)
    started, cpu = time.perf_counter(), _cpu()
    scores = out_of_fold_scores(lambda a, b: build_pipeline(config).fit(a, b), encoded, y, folds)
    oof_seconds, oof_cpu = time.perf_counter() - started, _cpu() - cpu
    choice = choose_threshold(y, scores)
    result = {
        "pr_auc": float(average_precision_score(y, scores)),
        "f1": choice.f1,
        "precision": choice.precision,
        "recall": choice.recall,
        "oof_s": oof_seconds,
        "oof_cpu": oof_cpu,
    }
    if final_fit:
        started, cpu = time.perf_counter(), _cpu()
        build_pipeline(config).fit(encoded, y)
        result["final_s"], result["final_cpu"] = time.perf_counter() - started, _cpu() - cpu
    result["load"] = load_average()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="creditcard.csv (the full 284,807-row file)")
    parser.add_argument("--grid", choices=("coarse", "final"), default="coarse")
    parser.add_argument("--trees", type=int, default=50, help="trees in the coarse grid")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--only", type=int, nargs="*", help="indices of the grid to run (default: all)")
    parser.add_argument(
        "--normals", type=float, default=1.0, help="share of the training normals kept (all frauds are), by content"
    )
    args = parser.parse_args()

    frame, summary = load_dataset(args.data)
    splits = split_dataset(frame, kind="content", share=0.2)
    train = splits.train
    del frame, splits  # the holdout is never looked at here
    if args.normals < 1.0:  # a deterministic subsample of normals, by the upper bits of the fold key
        kept = (train.y == 1) | ((train.keys[:, 1] >> np.uint64(32)) / 2**32 < args.normals)
        train = part_of(train, kept)
    folds = content_folds(train.keys, args.folds)
    print(
        f"data: {summary.rows:,} rows; training rows only: {len(train):,} with {train.frauds} frauds "
        f"({args.folds} folds by content; {args.normals:.0%} of the training normals); the holdout is dropped unseen",
        flush=True,
    )
    grid = COARSE if args.grid == "coarse" else FINAL
    chosen = args.only if args.only else range(len(grid))
    header = f"{'#':>2} {'configuration':<62} {'seed':>4} {'PR-AUC':>7} {'F1*':>6} {'prec':>6} {'rec':>6}"
    print(header + f" {'oof s':>6} {'cpu':>6} {'final s':>7} {'cpu':>6} {'load':>5}", flush=True)
    for index in chosen:
        overrides = grid[index]
        for seed in args.seeds:
            settings = {**BASE, "n_estimators": args.trees, **overrides} if args.grid == "coarse" else overrides
            config = TrainConfig(seed=seed, **settings)
            line = oof_line(config, train.X, train.y, folds, final_fit=args.grid == "final")
            label = ", ".join(f"{key}={value}" for key, value in settings.items())
            final = f"{line['final_s']:>7.1f} {line['final_cpu']:>6.0f}" if "final_s" in line else f"{'':>14}"
            print(
                f"{index:>2} {label:<62} {seed:>4} {line['pr_auc']:>7.4f} {line['f1']:>6.4f} "
                f"{line['precision']:>6.3f} {line['recall']:>6.3f} {line['oof_s']:>6.1f} {line['oof_cpu']:>6.0f} "
                f"{final} {line['load']:>5.2f}",
                flush=True,
            )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak_mb:,.0f} MB. F1* = F1 at the threshold chosen on the same out-of-fold scores.")


if __name__ == "__main__":
    main()
