"""How the forest should read ``Time``: raw, time of day (``Time mod 86,400``) or not at all.

``Time`` counts seconds since the data set's first row. For each encoding the trainer's protocol (out-of-fold
threshold, final fit, the current defaults) runs on two holdouts of the real file:

* ``content``: the default holdout by content (rows from the whole two days);
* ``time``: the latest 20% of rows, trained on the earlier ones (what a model meets in production);

and its holdout is scored a second time as a live stream would send it later: every ``Time`` moved two days on
(172,800 s, a whole number of days, so the time of day is unchanged), which is what a live feed, or a replay
with ``--loop``, does within days. A model whose decisions move under that shift has learnt the calendar.

    python benchmarks/time_feature.py --data /path/to/creditcard.csv [--seeds 42 7]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from fraudstream.data.check import load_dataset
from fraudstream.model.engine import OnnxEngine
from fraudstream.model.features import TIME_COLUMN
from fraudstream.model.serving import FraudModel
from fraudstream.settings import load_settings
from trainer.config import TrainConfig
from trainer.evaluate import evaluate
from trainer.stages import Data, LogReporter, fit_and_measure, hold_out

SHIFT_S = 2 * 86_400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the real creditcard.csv")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--splits", nargs="+", choices=("content", "time"), default=["content", "time"])
    parser.add_argument("--encodings", nargs="+", default=["raw", "time_of_day", "none"])
    args = parser.parse_args()

    frame, summary = load_dataset(args.data)
    data = Data(None, frame, summary)  # type: ignore[arg-type]
    print(
        f"{'split':<8} {'Time':<12} {'seed':>4} {'F1':>6} {'prec':>6} {'rec':>6} {'PR-AUC':>6} "
        f"{'F1 +2 days':>10} {'alerts +2d/asis':>15} {'fit s':>6} {'load':>5}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="fraudstream-time-") as state:
        settings = load_settings(state_dir=Path(state))
        for kind in args.splits:
            for encoding in args.encodings:
                for seed in args.seeds:
                    config = TrainConfig(split=kind, time_encoding=encoding, seed=seed)
                    splits = hold_out(data, config, 1, LogReporter())
                    seconds: dict[str, float] = {}
                    started = time.perf_counter()
                    fitted = fit_and_measure(config, splits, settings, LogReporter(), seconds)
                    took = time.perf_counter() - started
                    model = FraudModel(
                        "m",
                        "1",
                        fitted.threshold.threshold,
                        OnnxEngine(fitted.onnx_bytes),
                        time_encoding=config.time_encoding,
                    )
                    later = splits.test.X.to_numpy(dtype=np.float64, copy=True)
                    later[:, TIME_COLUMN] += SHIFT_S
                    shifted_scores = model.score(later.astype(np.float32))
                    shifted = evaluate(splits.test.y, shifted_scores, model.threshold, rounds=100, seed=seed)
                    e = fitted.evaluation
                    alerts = f"{shifted.tp + shifted.fp}/{e.tp + e.fp}"
                    print(
                        f"{kind:<8} {encoding:<12} {seed:>4} {e.f1:>6.4f} {e.precision:>6.4f} {e.recall:>6.4f} "
                        f"{e.pr_auc:>6.4f} {shifted.f1:>10.4f} {alerts:>15} {took:>6.0f} "
                        f"{os.getloadavg()[0]:>5.1f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
