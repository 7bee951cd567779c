"""What live monitoring costs the scorer: throughput with monitoring off, on, and on with a shadow challenger, in
the same run, on the same broker, the same registered versions and the same replayed transactions.

    python benchmarks/monitoring.py                 # starts its own local broker (Java), or FRAUD_KAFKA_BOOTSTRAP
    python benchmarks/monitoring.py --rows 100000 --repeat 5 --trees 100

Each run is a fresh scorer group over the whole topic, timed from the moment it holds its partitions to the moment
it has committed every transaction, with its models loaded (and the monitor's state read) beforehand; the three
modes are interleaved (off, on, challenger, off, ...) so that a change of machine load hits them alike. The
issue's target: monitoring on costs at most 5% of the throughput (on / off >= 0.95). The challenger adds one ONNX
call per batch of a forest the same size as production's, shown for what it is.

``monitoring_benchmark(settings, rows, repeat)`` is the measurement alone, for ``benchmarks/scorer.py`` to call with
a topic it has replayed and a registered production version (and a challenger alias, for the third mode).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fraudstream.logs import configure_logging
from fraudstream.settings import Settings, load_settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]  # `import scorer`: the package

MODES = ("off", "on", "challenger")


@dataclass(frozen=True)
class MonitoringCost:
    rows: int
    rates: dict[str, list[float]]
    windows: dict[str, int]

    def median(self, mode: str) -> float:
        return statistics.median(self.rates[mode])


def _run(settings: Settings, rows: int, mode: str) -> tuple[float, int]:
    """(tx/s, monitoring windows published) of one fresh scorer group in ``mode``."""
    from scorer.bootstrap import bootstrap, build_challenger_watcher, build_monitor, build_watcher
    from scorer.metrics import ScorerMetrics

    run = settings.model_copy(
        update={
            "scorer_group_id": f"bench-mon-{mode}-{uuid.uuid4().hex[:8]}",
            "monitor_enabled": mode != "off",
            "monitor_challenger": mode == "challenger",
        }
    )
    watcher = build_watcher(run)
    watcher.poll(force=True)
    metrics = ScorerMetrics()
    observer = None
    if mode != "off":
        challenger = build_challenger_watcher(run) if mode == "challenger" else None
        if challenger is not None:
            challenger.poll(force=True)
            if challenger.current is None:
                raise SystemExit(f"no version holds the alias {run.model_challenger_alias!r}")
        observer = build_monitor(run, f"bench-{uuid.uuid4().hex[:8]}", metrics, challenger)
        assert observer is not None
        observer.resume()
    stop = threading.Event()
    scorer = bootstrap(run, stop=stop, watcher=watcher, metrics=metrics, observer=observer, create_topics=False)
    thread = threading.Thread(target=scorer.run, daemon=True)
    thread.start()
    status = scorer.loop.status
    while not status.partitions:
        time.sleep(0.001)
    started = time.perf_counter()
    while status.consumed < rows:
        time.sleep(0.001)
        if not thread.is_alive():
            raise SystemExit("the scorer stopped early")
    elapsed = time.perf_counter() - started
    stop.set()
    thread.join()
    windows = int(
        sum(
            metrics.value("fraudstream_scorer_monitoring_windows_total", role="production", status=s)
            for s in ("ok", "drift", "degraded")
        )
    )
    return rows / elapsed, windows


def monitoring_benchmark(settings: Settings, rows: int, repeat: int, modes: tuple[str, ...] = MODES) -> MonitoringCost:
    """Throughput per mode over the ``rows`` transactions already on ``settings.topic_transactions``."""
    from fraudstream.kafka.topics import ensure_flow_topics, ensure_monitoring_state_topic

    ensure_flow_topics(settings)  # fraud-monitoring among them
    ensure_monitoring_state_topic(settings)  # without it the scorer says a crash would lose the open window
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    windows: dict[str, int] = dict.fromkeys(modes, 0)
    _run(settings, rows, "off")  # warm-up, not counted: a fresh broker's JVM compiles its hot paths
    for _ in range(repeat):
        for mode in modes:
            rate, published = _run(settings, rows, mode)
            rates[mode].append(rate)
            windows[mode] = published
    return MonitoringCost(rows, rates, windows)


def print_cost(cost: MonitoringCost, window_rows: int, batch: int) -> None:
    off = cost.median("off")
    print(f"monitoring cost on the same {cost.rows:,} transactions (batch {batch:,}, windows of {window_rows:,} rows)")
    for mode in cost.rates:
        rates = cost.rates[mode]
        line = f"  {mode:<11} {cost.median(mode):>10,.0f} tx/s  median of {len(rates)}, runs " + ", ".join(
            f"{r:,.0f}" for r in rates
        )
        if mode != "off":
            line += f"; {cost.median(mode) / off:.3f} of off, {cost.windows[mode]} windows"
        print(line)
    if "on" in cost.rates:
        ratio = cost.median("on") / off
        print(f"  on / off {ratio:.3f}   target >= 0.95 (<= 5% cost)   {'met' if ratio >= 0.95 else 'NOT met'}")


# ---- standalone: broker, data, two registered versions -------------------------------------------------------
@contextlib.contextmanager
def broker(home: Path) -> Iterator[str]:
    if os.environ.get("FRAUD_KAFKA_BOOTSTRAP"):
        yield os.environ["FRAUD_KAFKA_BOOTSTRAP"]
        return
    from fraudstream.kafka.local.broker import LocalBroker
    from fraudstream.kafka.local.processes import free_port

    cache = Path(os.environ.get("FRAUD_KAFKA_CACHE_DIR") or Settings.model_fields["kafka_cache_dir"].default)
    local = LocalBroker(port=free_port(), home=home / "kafka", cache_dir=cache)
    try:
        yield local.up(timeout=180).bootstrap
    finally:
        local.down()


def make_data(home: Path, rows: int) -> tuple[Path, Path, str]:
    """(training csv, stream csv, description): real rows when ../shared/data is there, else synthetic."""
    if (SHARED / "creditcard_fraud.csv").is_file():
        normal = pd.read_csv(SHARED / "creditcard_normal_sample.csv")
        fraud = pd.read_csv(SHARED / "creditcard_fraud.csv")
        train = pd.concat([normal.iloc[::3], fraud]).sort_values("Time", kind="stable")
        rest = normal.drop(normal.index[::3])
        stream = pd.concat(
            [
                rest.sample(n=rows - rows // 100, replace=len(rest) < rows, random_state=1),
                fraud.sample(n=rows // 100, replace=True, random_state=1),
            ]
        ).sample(frac=1.0, random_state=2)
        description = "real ULB rows (training: all frauds + every 3rd normal; stream: other normals + 1% frauds)"
    else:
        from fraudstream.data.synth import write_synthetic

        frame = pd.read_csv(write_synthetic(home / "synthetic.csv", rows=30_000 + rows, seed=3, fraud_rate=0.01))
        train, stream = frame.iloc[:30_000], frame.iloc[30_000:]
        description = "SYNTHETIC rows (no ../shared/data)"
    train_csv, stream_csv = home / "train.csv", home / "creditcard.csv"
    train.to_csv(train_csv, index=False, float_format="%.15g")
    stream.to_csv(stream_csv, index=False, float_format="%.15g")
    return train_csv, stream_csv, description


def register(settings: Settings, train_csv: Path, trees: int, seed: int) -> str:
    from trainer.config import TrainConfig
    from trainer.service import train

    result = train(settings, TrainConfig(data=train_csv, n_estimators=trees, bootstrap_rounds=200, seed=seed))
    if result.version is None:
        raise SystemExit(f"the benchmark model was not registered: {result.decision.reason}")
    return result.version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="transactions in the stream")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode (medians compared)")
    parser.add_argument("--trees", type=int, default=100, help="trees of each forest")
    parser.add_argument("--window-rows", type=int, default=None, help="monitoring window (default: the setting)")
    args = parser.parse_args()
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="fraudstream-bench-monitoring-") as tmp, broker(Path(tmp)) as bootstrap:
        home, suffix = Path(tmp), uuid.uuid4().hex[:8]
        overrides = {"monitor_window_rows": args.window_rows} if args.window_rows else {}
        settings = load_settings(
            state_dir=home / "state",
            kafka_bootstrap=bootstrap,
            model_name="bench-mon-rf",
            min_f1=0.5,
            topic_transactions=f"bench-mon-transactions-{suffix}",
            topic_alerts=f"bench-mon-alerts-{suffix}",
            topic_dlq=f"bench-mon-dlq-{suffix}",
            topic_monitoring=f"bench-mon-monitoring-{suffix}",
            topic_monitoring_state=f"bench-mon-state-{suffix}",
            scorer_metrics_port=0,
            **overrides,
        )
        from fraudstream.model.registry import ModelRegistry
        from producer.bootstrap import replay
        from producer.replay import ReplayOptions

        load_start = os.getloadavg()
        train_csv, stream_csv, description = make_data(home, args.rows)
        production = register(settings, train_csv, args.trees, seed=3)
        challenger = register(settings, train_csv, args.trees, seed=4)  # promoted by the gate: give the roles back
        client = ModelRegistry(settings).client
        client.set_registered_model_alias(settings.model_name, settings.model_alias, production)
        client.set_registered_model_alias(settings.model_name, settings.model_challenger_alias, challenger)
        stats = replay(settings, ReplayOptions(data=stream_csv), stop=threading.Event())
        assert stats.delivered == stats.sent == args.rows, stats
        cost = monitoring_benchmark(settings, args.rows, args.repeat)
        load_end = os.getloadavg()
    print()
    print(
        f"fraudstream monitoring benchmark: {settings.model_name} v{production} (challenger v{challenger}), "
        f"RandomForest {args.trees} trees each"
    )
    print(f"  data: {description}")
    print(
        f"  machine: {os.cpu_count()} CPUs, load average {load_start[0]:.1f} at start, {load_end[0]:.1f} at end; "
        "broker on the same machine"
    )
    print_cost(cost, settings.monitor_window_rows, settings.scorer_batch_size)


if __name__ == "__main__":
    main()
