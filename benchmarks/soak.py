"""Soak: the whole pipeline over at least 1,000,000 replayed transactions, with a broker kill in the middle.

    python benchmarks/soak.py                              # 1,000,000 transactions, broker down 10 s at half-way
    python benchmarks/soak.py --transactions 2000000 --down 30 --rate 15000

Everything runs as a user runs it, as processes on a local broker of its own (never a shared one):
``fraudstream replay --loop`` -> ``fraudstream score`` -> ``fraudstream serve`` (the alert sink inside). Once the
scorer has scored half the transactions, the broker is killed with ``kill -9`` and started again ``--down``
seconds later; the replay is stopped once the topic holds ``--transactions`` transactions. Then, end to end:

* every transaction on the topic was scored once: the alerts topic (read_committed) holds one alert for each
  transaction message the model flags (the offline answer of the same model version on the same rows), keyed by
  its source partition and offset: none lost, none twice; the DLQ holds nothing (every row is valid);
* the store holds exactly the distinct transactions of those alerts (the replay loops the file, so each
  transaction id comes back once a pass, and the store upserts it);
* the scorer's and the API's resident memory at the end is within 10% of their level after the first 100,000.

Not part of CI: it takes several minutes. The model is trained here (30 trees) on the real rows of
../shared/data when present, else on a synthetic set; the replayed file is those rows (100,492 real ones).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FRAUDSTREAM = Path(sys.executable).with_name("fraudstream")
RSS_TOLERANCE = 0.10

_HERE = Path(__file__).resolve().parent  # keep this folder off the path: `import scorer` is the package
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

from fraudstream.kafka.local.broker import LocalBroker  # noqa: E402
from fraudstream.kafka.local.processes import free_port  # noqa: E402
from fraudstream.settings import Settings, load_settings  # noqa: E402


# ---- set-up -----------------------------------------------------------------------------------------------------
def make_data(home: Path) -> tuple[Path, Path, str]:
    """(the file to replay, the training file, a description): real rows when ../shared/data has them."""
    out, train = home / "creditcard.csv", home / "train.csv"
    if (SHARED / "creditcard_fraud.csv").is_file():
        normal = pd.read_csv(SHARED / "creditcard_normal_sample.csv")
        fraud = pd.read_csv(SHARED / "creditcard_fraud.csv")
        pd.concat([normal, fraud]).to_csv(out, index=False, float_format="%.15g")
        pd.concat([normal.iloc[::3], fraud]).to_csv(train, index=False, float_format="%.15g")
        return out, train, f"real ULB rows from {SHARED} ({len(normal) + len(fraud):,} rows, {len(fraud)} frauds)"
    from fraudstream.data.synth import generate

    frame = generate(100_000, seed=7, fraud_rate=0.005)
    frame.to_csv(out, index=False, float_format="%.15g")
    frame.iloc[::3].to_csv(train, index=False, float_format="%.15g")
    return out, train, "SYNTHETIC rows (no real data in ../shared/data): 100,000 rows"


def train_model(settings: Settings, train_csv: Path) -> str:
    from trainer.config import TrainConfig
    from trainer.service import train

    result = train(settings, TrainConfig(data=train_csv, n_estimators=30, max_depth=10, bootstrap_rounds=100, seed=3))
    if result.version is None:
        raise SystemExit(f"the soak model was not registered: {result.decision.reason}")
    return result.version


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("FRAUD_", "MLFLOW_"))}
    fields = {
        "kafka_bootstrap": settings.kafka_bootstrap,
        "state_dir": settings.state_dir,
        "mlflow_tracking_uri": settings.tracking_uri,
        "mlflow_artifact_location": settings.artifact_location,
        "model_name": settings.model_name,
        "alert_store_url": settings.alert_store,
        "scorer_transactional_id": settings.scorer_transactional_id,
        "scorer_metrics_port": settings.scorer_metrics_port,
        "api_port": settings.api_port,
        "log_level": "WARNING",
    }
    env.update({f"FRAUD_{name.upper()}": str(value) for name, value in fields.items() if value is not None})
    env.update(extra, COLUMNS="200")
    return env


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for {self.name}")

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@contextlib.contextmanager
def services(home: Path) -> Iterator[dict[str, Service]]:
    started: dict[str, Service] = {}
    try:
        yield started
    finally:
        for service in started.values():
            service.stop(10)


def start(started: dict[str, Service], name: str, args: list[str], env: dict[str, str], home: Path) -> Service:
    log = home / f"{name}.log"
    handle = log.open("wb")
    process = subprocess.Popen([str(FRAUDSTREAM), *args], env=env, stdout=handle, stderr=subprocess.STDOUT)
    started[name] = Service(name, process, log)
    return started[name]


# ---- probes -------------------------------------------------------------------------------------------------------
def http_json(url: str) -> tuple[int, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except (OSError, ValueError):
        return None


def scorer_metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def wait_for(condition: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")


def end_offsets(settings: Settings, topic: str) -> dict[int, int] | None:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    from fraudstream.kafka.clients import consumer_config

    consumer = Consumer(consumer_config(settings.kafka(), group_id="soak-probe", client_id="soak-probe"))
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
            for p in range(settings.topic_partitions)
        }
    except KafkaException:
        return None
    finally:
        consumer.close()


def committed_offsets(settings: Settings) -> dict[int, int] | None:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    from fraudstream.kafka.clients import consumer_config

    config = consumer_config(
        settings.kafka(), group_id=settings.scorer_group_id, client_id="soak-probe", read_committed=False
    )
    consumer = Consumer(config)
    try:
        partitions = [TopicPartition(settings.topic_transactions, p) for p in range(settings.topic_partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
    except KafkaException:
        return None
    finally:
        consumer.close()


def read_all(settings: Settings, topic: str) -> list[Any]:
    """Every committed record of ``topic`` (read_committed), from the start to the end offsets."""
    from confluent_kafka import Consumer, TopicPartition

    from fraudstream.kafka.clients import consumer_config

    consumer = Consumer(consumer_config(settings.kafka(), group_id=f"soak-read-{time.time_ns()}", client_id="soak"))
    ends = end_offsets(settings, topic) or {}
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.topic_partitions)])
    records: list[Any] = []
    idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < 5:
            batch = [m for m in consumer.consume(10_000, 1.0) if m.error() is None]
            if batch:
                records += batch
                idle_since = time.monotonic()
            positions = {tp.partition: tp.offset for tp in consumer.position(consumer.assignment())}
            if all(positions.get(p, -1) >= end for p, end in ends.items()):
                break
    finally:
        consumer.close()
    return records


def offline_flags(settings: Settings, version: str, csv: Path) -> set[str]:
    from fraudstream.data.check import iter_validated_chunks
    from fraudstream.model.registry import ModelRegistry
    from fraudstream.schemas import FEATURES

    model = ModelRegistry(settings).load(version)
    flagged: set[str] = set()
    for first_row, frame in iter_validated_chunks(csv):
        hits = np.flatnonzero(model.flags(model.score(frame[list(FEATURES)].to_numpy(np.float32))))
        flagged |= {f"{csv.name}:{first_row + int(i)}" for i in hits}
    return flagged


# ---- the run ------------------------------------------------------------------------------------------------------
@dataclass
class Timeline:
    rss_at_100k: dict[str, float] = field(default_factory=dict)
    rss_at_end: dict[str, float] = field(default_factory=dict)
    killed_at_scored: float = 0
    down_s: float = 0
    restart_s: float = 0
    resumed_after_s: float = float("nan")
    started: float = field(default_factory=time.monotonic)


def run(args: argparse.Namespace) -> int:
    home = Path(tempfile.mkdtemp(prefix="fraudstream-soak-"))
    cache = Path(os.environ.get("FRAUD_KAFKA_CACHE_DIR") or Settings.model_fields["kafka_cache_dir"].default)
    broker = LocalBroker(port=free_port(), home=home / "kafka", cache_dir=cache)
    print(f"soak in {home}; load average at start {os.getloadavg()[0]:.1f} (2 CPUs shared)", flush=True)
    broker.up(timeout=240)
    try:
        return soak(args, home, broker)
    finally:
        broker.down()


def soak(args: argparse.Namespace, home: Path, broker: LocalBroker) -> int:
    settings = load_settings(
        kafka_bootstrap=broker.bootstrap,
        state_dir=home / "state",
        model_name="soak-rf",
        min_f1=0.5,
        scorer_transactional_id="soak-scorer-0",
        scorer_metrics_port=free_port(),
        api_port=free_port(),
    )
    csv, train_csv, description = make_data(home)
    version = train_model(settings, train_csv)
    print(f"data: {description}; model {settings.model_name} v{version}", flush=True)
    timeline = Timeline()
    with services(home) as started:
        scorer = start(started, "score", ["score"], environment(settings), home)
        api = start(started, "serve", ["serve"], environment(settings), home)
        ready = f"http://127.0.0.1:{settings.scorer_metrics_port}/readyz"
        api_ready = f"http://127.0.0.1:{settings.api_port}/readyz"
        wait_for(lambda: (http_json(ready) or (0,))[0] == 200, "the scorer to be ready", 180)
        wait_for(lambda: (http_json(api_ready) or (0,))[0] == 200, "the API to be ready", 180)
        replay_args = ["replay", "--data", str(csv), "--loop", *(["--rate", str(args.rate)] if args.rate else [])]
        replay = start(started, "replay", replay_args, environment(settings), home)
        sent, next_line = 0, time.monotonic() + args.every
        while True:
            time.sleep(1.0)
            scored = scorer_metric(settings.scorer_metrics_port, "fraudstream_scorer_scored_total") or 0
            if time.monotonic() >= next_line:
                next_line += args.every
                print(
                    f"  {time.monotonic() - timeline.started:5.0f} s  sent {sent:>9,}  scored {scored:>9,.0f}  "
                    f"RSS scorer {scorer.rss_mb():.0f} MB, API {api.rss_mb():.0f} MB",
                    flush=True,
                )
            if not timeline.rss_at_100k and scored >= 100_000:
                timeline.rss_at_100k = {"scorer": scorer.rss_mb(), "API": api.rss_mb()}
            if args.kill_at and not timeline.killed_at_scored and scored >= args.transactions * args.kill_at:
                kill_and_restart(broker, settings, timeline, scored, args.down)
            ends = end_offsets(settings, settings.topic_transactions)
            sent = sum(ends.values()) if ends else sent
            if sent >= args.transactions:
                break
            for service in (scorer, api, replay):
                if service.process.poll() is not None:
                    raise SystemExit(f"{service.name} exited with {service.process.returncode}: see {service.log}")
        replay_code = replay.stop(60)
        total = sum((end_offsets(settings, settings.topic_transactions) or {}).values())
        wait_for(lambda: caught_up(settings, total), "the scorer to catch up", 900)
        wait_for(lambda: sink_caught_up(api_ready), "the sink to catch up", 300)
        timeline.rss_at_end = {"scorer": scorer.rss_mb(), "API": api.rss_mb()}
        codes = {"scorer": scorer.stop(), "API": api.stop()}
    return verify(settings, version, csv, total, args.transactions, replay_code, codes, timeline)


def kill_and_restart(broker: LocalBroker, settings: Settings, timeline: Timeline, scored: float, down: float) -> None:
    pid = broker.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    timeline.killed_at_scored = scored
    print(f"  kill -9 of the broker at {scored:,.0f} scored; back in {down:g} s", flush=True)
    time.sleep(down)
    broker.up(timeout=240)
    back = time.monotonic()
    timeline.down_s, timeline.restart_s = back - killed, back - killed - down
    before = scorer_metric(settings.scorer_metrics_port, "fraudstream_scorer_scored_total") or 0
    while (scorer_metric(settings.scorer_metrics_port, "fraudstream_scorer_scored_total") or 0) <= before:
        if time.monotonic() - back > 120:
            break
        time.sleep(0.2)
    timeline.resumed_after_s = time.monotonic() - back


def caught_up(settings: Settings, total: int) -> bool:
    committed = committed_offsets(settings)
    return committed is not None and sum(max(0, offset) for offset in committed.values()) >= total


def sink_caught_up(url: str) -> bool:
    answer = http_json(url)
    return answer is not None and answer[0] == 200 and answer[1]["sink"]["lag"] == 0


def verify(
    settings: Settings,
    version: str,
    csv: Path,
    total: int,
    wanted: int,
    replay_code: int,
    codes: dict[str, int],
    timeline: Timeline,
) -> int:
    from fraudstream.schemas import Alert

    transactions = read_all(settings, settings.topic_transactions)
    flagged = offline_flags(settings, version, csv)
    expected = {(m.partition(), m.offset()) for m in transactions if m.key().decode() in flagged}
    alerts = [Alert.model_validate_json(m.value()) for m in read_all(settings, settings.topic_alerts)]
    sources = Counter((alert.partition, alert.offset) for alert in alerts)
    lost, duplicated = expected - set(sources), {key for key, count in sources.items() if count > 1}
    unexpected = set(sources) - expected
    dead = read_all(settings, settings.topic_dlq)
    with sqlite3.connect(settings.alert_store.removeprefix("sqlite:///")) as db:
        stored = {row[0] for row in db.execute("SELECT transaction_id FROM alerts")}
    distinct = {alert.transaction_id for alert in alerts}
    growth = {name: timeline.rss_at_end[name] / timeline.rss_at_100k[name] - 1 for name in timeline.rss_at_end}

    print(
        f"\nfraudstream soak: {time.monotonic() - timeline.started:,.0f} s, load average now {os.getloadavg()[0]:.1f}"
    )
    print(f"  replayed              {total:,} transactions on the topic ({len(transactions):,} read back)")
    if timeline.killed_at_scored:
        print(
            f"  broker kill -9        at {timeline.killed_at_scored:,.0f} scored; down {timeline.down_s:.0f} s "
            f"(restart {timeline.restart_s:.0f} s); scoring resumed {timeline.resumed_after_s:.1f} s after its return"
        )
    else:
        print("  broker kill -9        none (--kill-at 0: a baseline)")
    print(f"  alerts expected       {len(expected):,} (the model flags {len(flagged):,} of the file's rows)")
    print(
        f"  alerts on the topic   {sum(sources.values()):,}: lost {len(lost)}, duplicated {len(duplicated)}, "
        f"unexpected {len(unexpected)}"
    )
    print(f"  dead letters          {len(dead)}")
    print(
        f"  store                 {len(stored):,} rows for {len(distinct):,} distinct alerted transactions "
        f"({'equal' if stored == distinct else 'DIFFERENT'})"
    )
    for name in ("scorer", "API"):
        print(
            f"  {name + ' RSS':<21} {timeline.rss_at_100k[name]:.0f} MB after 100,000 -> "
            f"{timeline.rss_at_end[name]:.0f} MB at the end ({growth[name]:+.1%})"
        )
    print(f"  exit codes            replay {replay_code}, scorer {codes['scorer']}, API {codes['API']}")
    ok = (
        total >= wanted
        and not lost
        and not duplicated
        and not unexpected
        and not dead
        and stored == distinct
        and all(abs(value) <= RSS_TOLERANCE for value in growth.values())
        and replay_code == 0
        and not any(codes.values())
    )
    print("  result                " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=1_000_000, help="How many to replay (at least).")
    parser.add_argument("--down", type=float, default=10.0, help="Seconds the broker stays down.")
    parser.add_argument("--rate", type=float, default=12_000, help="Replay pace in tx/s (0: as fast as it goes).")
    parser.add_argument("--every", type=float, default=15.0, help="Seconds between progress lines.")
    parser.add_argument(
        "--kill-at", type=float, default=0.5, help="Kill the broker when this share is scored (0: never, a baseline)."
    )
    from fraudstream.logs import configure_logging

    configure_logging("WARNING")
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
