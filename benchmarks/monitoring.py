"""What live monitoring costs the scorer: throughput with monitoring off, on, and on with a shadow challenger, in
the same run, on the same broker, the same registered versions and the same replayed transactions.

    python benchmarks/monitoring.py                 # starts its own local broker (Java), or FRAUD_KAFKA_BOOTSTRAP
    python benchmarks/monitoring.py --rows 100000 --repeat 5 --trees 100

Each run is a fresh scorer group over the whole topic, timed from the moment it holds its partitions to the moment
it has committed every transaction, with its models loaded (and the monitor's state read) beforehand; the three
modes are interleaved, in the opposite order every other round (off, on, challenger, then challenger, on, off, ...),
so that a change of machine load hits them alike. The issue's target: monitoring on costs at most 5% of the
throughput (on / off >= 0.95). The challenger adds one ONNX call per batch of a forest the same size as
production's, shown for what it is.

On two cores shared with the broker, one run's throughput varies by 10-20% from the next, more than the cost
measured, so the script prints three views of the same cost:

* the ratio of the medians (each mode's median over all its runs);
* the median of the paired ratios (each round's on / off, runs next to each other, so slow drift cancels): the
  verdict is on this one;
* the CPU the monitor's own work takes beside ``score_batch`` on one batch of the stream, no Kafka (the fastest of
  30 interleaved runs): what monitoring costs the loop's thread, without the broker's noise. It leaves out the
  Kafka side of monitoring, one small state record per transaction, which only the throughput runs include.

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
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fraudstream.logs import configure_logging
from fraudstream.memory import freeze_long_lived
from fraudstream.settings import Settings, load_settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]  # `import scorer`: the package

MODES = ("off", "on", "challenger")
CPU_REPEAT = 30
"""Runs of one batch per mode for the CPU figure (the fastest counts; 15 still left a 1-4% jitter)."""


@dataclass(frozen=True)
class MonitoringCost:
    rows: int
    rates: dict[str, list[float]]
    """Each mode's runs, round by round (run i of every mode belongs to round i)."""
    windows: dict[str, int]
    cpu_ms: dict[str, float] = field(default_factory=dict)
    """One batch's CPU milliseconds per mode, no Kafka (see :func:`monitoring_cpu_cost`); empty when not measured."""

    def median(self, mode: str) -> float:
        return statistics.median(self.rates[mode])

    def paired(self, mode: str) -> float:
        """The median over rounds of ``mode`` / off within the round."""
        return statistics.median(m / off for m, off in zip(self.rates[mode], self.rates["off"], strict=True))


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
    freeze_long_lived()  # as `fraudstream score` does once started; here before the clock starts
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


def monitoring_benchmark(
    settings: Settings, rows: int, repeat: int, modes: tuple[str, ...] = MODES, stream_csv: Path | None = None
) -> MonitoringCost:
    """Throughput per mode over the ``rows`` transactions already on ``settings.topic_transactions`` (and, given
    the topic's ``stream_csv``, the CPU of one batch per mode, :func:`monitoring_cpu_cost`)."""
    from fraudstream.kafka.topics import ensure_flow_topics, ensure_monitoring_state_topic

    ensure_flow_topics(settings)  # fraud-monitoring among them
    ensure_monitoring_state_topic(settings)  # without it the scorer says a crash would lose the open window
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    windows: dict[str, int] = dict.fromkeys(modes, 0)
    _run(settings, rows, "off")  # warm-up, not counted: a fresh broker's JVM compiles its hot paths
    for round_number in range(repeat):
        for mode in modes if round_number % 2 == 0 else modes[::-1]:
            rate, published = _run(settings, rows, mode)
            rates[mode].append(rate)
            windows[mode] = published
    cpu = monitoring_cpu_cost(settings, stream_csv, modes) if stream_csv is not None else {}
    return MonitoringCost(rows, rates, windows, cpu)


@dataclass(frozen=True)
class _Message:
    """What score_batch reads of a consumed message."""

    _value: bytes
    _offset: int

    def error(self) -> None:
        return None

    def value(self) -> bytes:
        return self._value

    def key(self) -> None:
        return None

    def topic(self) -> str:
        return "bench"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def batch_messages(csv: Path, count: int) -> list[_Message]:
    """The first ``count`` rows of a stream file as the scorer would consume them (the replay's encoding)."""
    from datetime import datetime, timezone

    from fraudstream.schemas import FEATURES
    from producer.encode import encode_row

    rows = pd.read_csv(csv).head(count)[list(FEATURES)].to_numpy().tolist()
    now = datetime.now(timezone.utc)
    return [_Message(encode_row(csv.name, i, row, 0, now).value, i) for i, row in enumerate(rows)]


class _NoState:
    """A state source with nothing committed: the monitor starts a fresh window and reads no Kafka."""

    def read(self, scorer: str) -> None:
        return None

    def missing(self, topics: list[str]) -> list[str]:
        return []


def monitoring_cpu_cost(
    settings: Settings, csv: Path, modes: tuple[str, ...] = MODES, repeat: int = CPU_REPEAT
) -> dict[str, float]:
    """Milliseconds of CPU of one batch of ``csv`` per mode, no Kafka: ``score_batch`` alone (off), then with the
    monitor's ``records`` and ``committed`` on the same batch (on; challenger: with the shadow's ONNX call). The
    fastest of ``repeat`` interleaved runs each, so that other processes on the machine count as little as
    possible. The monitor is built as the scorer builds it, with its state record staged on every batch."""
    from scorer.batch import score_batch
    from scorer.bootstrap import build_challenger_watcher, build_monitor, build_watcher
    from scorer.metrics import ScorerMetrics
    from scorer.monitoring import WindowMonitor

    messages = batch_messages(csv, settings.scorer_batch_size)
    watcher = build_watcher(settings)
    watcher.poll(force=True)
    model = watcher.current
    assert model is not None
    if model.profile is None:  # without it the monitor counts but bins nothing: no cost to measure
        raise SystemExit(f"version {model.version} has no reference profile")
    if model.explainer is not None:
        model.explainer.wait()

    def monitor(challenger: bool) -> WindowMonitor:
        run = settings.model_copy(update={"monitor_enabled": True, "monitor_challenger": challenger})
        shadow = None
        if challenger:
            shadow = build_challenger_watcher(run)
            shadow.poll(force=True)
        built = build_monitor(run, "bench-cpu", ScorerMetrics(), shadow, state_source=_NoState())
        assert built is not None
        return built

    monitors = {mode: None if mode == "off" else monitor(mode == "challenger") for mode in modes}
    best = dict.fromkeys(modes, float("inf"))
    for round_number in range(repeat):
        order = list(monitors.items())
        for mode, observer in order if round_number % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            batch = score_batch(messages, model)
            if observer is not None:
                batch.extra = observer.records(batch)
                observer.committed(batch)
                if not batch.extra:  # at least the state record: else the monitor measured nothing
                    raise SystemExit(f"the {mode} monitor staged no record")
            best[mode] = min(best[mode], (time.perf_counter() - started) * 1000)
    return best


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
    if cost.cpu_ms:
        base = cost.cpu_ms["off"]
        line = f"  CPU of one batch, no Kafka (fastest of {CPU_REPEAT}): off {base:.1f} ms"
        for mode in (m for m in cost.cpu_ms if m != "off"):
            line += f", {mode} {cost.cpu_ms[mode]:.1f} ms ({cost.cpu_ms[mode] / base - 1:+.1%})"
        print(line)
    if "on" in cost.rates:
        ratio, paired = cost.median("on") / off, cost.paired("on")
        print(
            f"  on / off {paired:.3f} (median of the {len(cost.rates['on'])} rounds' ratios; ratio of the medians "
            f"{ratio:.3f})   target >= 0.95 (<= 5% cost)   {'met' if paired >= 0.95 else 'NOT met'}"
        )


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
        cost = monitoring_benchmark(settings, args.rows, args.repeat, stream_csv=stream_csv)
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
