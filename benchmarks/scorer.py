"""Where the exactly-once scorer stands: against the exactly-once passthrough ceiling, a Quix Streams peer, a naive
per-message scorer and the model alone, on one broker and one topic of real transactions.

    python benchmarks/scorer.py            # the whole benchmark (starts its own local broker, or FRAUD_KAFKA_BOOTSTRAP)
    python benchmarks/scorer.py --quick    # the same contenders, fewer repeats and shorter latency runs (< 10 min)

All on the same broker, the same topic of --rows transactions (real rows: normal rows the model did not train on,
frauds at 0.17%; see make_data) and the same registered model version. Each throughput is the median of
--repeat runs after one warm-up run, each run a fresh consumer group reading the whole topic:

* passthrough ceiling: exactly-once consume -> produce -> commit with no decoding and no model (consume 5,000,
  begin, produce one record per 600 messages as the alerts would be, send_offsets_to_transaction, commit);
* our scorer: ``scorer.bootstrap`` as ``fraudstream score`` runs it (validate every message, one ONNX call per
  batch, alerts with reason codes, one transaction per batch, the commit overlapping the next batch);
* every Kafka contender timed alike: from its first message to its last commit (the start-up before the first
  message, a fresh group looking up its offsets, is printed apart);
* the Quix Streams peer (benchmarks/peers/quix_peer.py, in its own virtualenv .venv-quix, as its own process):
  ``processing_guarantee="exactly-once"``, pydantic validation per message, the same ONNX model per message,
  alerts to a topic; timed from its first message to its last checkpoint committed;
* the naive scorer: per message poll one, predict one row with the model exactly as MLflow loads it
  (``mlflow.sklearn.load_model``), produce the alert when flagged (flushed), commit synchronously; timed on a
  prefix of the topic (the whole topic would take too long), as the output says;
* the model alone: the same FraudModel (ONNX) scoring the same rows in-process from a ready float32 matrix, in
  the scorer's batch size;
* latency: a stream replayed at fixed rates (2,000 and 20,000 tx/s) while the scorer runs; per alert, from its
  event_time (the instant the replay sent it) to the instant a read_committed consumer receives it;
* a profile of one batch of the topic, step by step (consume, decode, matrix, model, alerts, produce, commit).

See benchmarks/README.md for what each contender does and why the peer is fair.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudstream.kafka.clients import consumer_config, producer_config
from fraudstream.logs import configure_logging
from fraudstream.memory import freeze_long_lived
from fraudstream.schemas import FEATURES, Alert, Transaction
from fraudstream.settings import Settings, load_settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# This script is named like the scorer package: keep its folder off the import path, so that `import scorer`
# finds the package and not this file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]


# ---- set-up: broker, data, model ----------------------------------------------------------------------------
BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "3000"}
"""Kafka's own default, where the tests' broker has 0 (fast joins): a fresh group of several members started
together (our workers, the peer's replicas) is then assigned in one rebalance, as on a production broker, rather
than the first member taking every partition and giving some up a second later. Every rate is timed from the first
message, so the delay is only in the start-up printed apart."""


@contextlib.contextmanager
def broker(home: Path) -> Iterator[str]:
    """FRAUD_KAFKA_BOOTSTRAP when set, else a local broker started like the test fixture does (and stopped)."""
    if os.environ.get("FRAUD_KAFKA_BOOTSTRAP"):
        yield os.environ["FRAUD_KAFKA_BOOTSTRAP"]
        return
    from fraudstream.kafka.local.broker import LocalBroker
    from fraudstream.kafka.local.processes import free_port

    cache = Path(os.environ.get("FRAUD_KAFKA_CACHE_DIR") or Settings.model_fields["kafka_cache_dir"].default)
    local = LocalBroker(port=free_port(), home=home / "kafka", cache_dir=cache, server_overrides=BROKER_OVERRIDES)
    try:
        yield local.up(timeout=120).bootstrap
    finally:
        local.down()


@dataclass(frozen=True)
class BenchData:
    train_csv: Path
    stream_csv: Path
    latency_csv: Path
    description: str


STREAM_FRAUD_RATE = 0.0017
"""The frauds' share of the throughput stream: the original data set's rate."""
LATENCY_FRAUD_RATE = 0.05
"""The frauds' share of the latency streams: more alerts, so that p99 rests on enough samples."""
LATENCY_WARMUPS = 4
"""Latency runs before the timed ones: a fresh broker's JVM compiles its many-small-transactions path over about
half a minute of that load (benchmarks/README.md, latency)."""


def make_data(home: Path, rows: int, latency_rows: int) -> BenchData:
    """Training rows (every fifth normal row and all frauds), the throughput stream (the other normal rows, each
    once before any is repeated, and frauds at 0.17%) and the latency stream (5% frauds, for samples)."""
    if (SHARED / "creditcard_fraud.csv").is_file():
        normal = pd.read_csv(SHARED / "creditcard_normal_sample.csv")
        fraud = pd.read_csv(SHARED / "creditcard_fraud.csv")
        train, unseen = pd.concat([normal.iloc[::5], fraud]), normal.drop(normal.index[::5])
        description = f"real ULB rows from {SHARED} (train: {len(train):,} rows; streams: unseen normal rows + frauds)"
    else:
        from fraudstream.data.synth import generate

        frame = generate(60_000 + rows + latency_rows, seed=7, fraud_rate=0.01)
        train, rest = frame.iloc[:60_000], frame.iloc[60_000:]
        fraud, unseen = rest[rest["Class"] == 1], rest[rest["Class"] == 0]
        description = "SYNTHETIC rows (no real data in ../shared/data)"
    train_csv = home / "train.csv"
    train.to_csv(train_csv, index=False, float_format="%.15g")

    def stream(name: str, count: int, fraud_share: float, seed: int) -> Path:
        frauds = fraud.sample(n=round(count * fraud_share), replace=True, random_state=seed)
        wanted = count - len(frauds)
        parts = [unseen.sample(frac=1.0, random_state=seed)] * (wanted // len(unseen))
        normals = pd.concat([*parts, unseen.sample(n=wanted % len(unseen), random_state=seed)])
        out = home / name
        pd.concat([frauds, normals]).sample(frac=1.0, random_state=seed).to_csv(out, index=False, float_format="%.15g")
        return out

    return BenchData(
        train_csv,
        stream("stream.csv", rows, STREAM_FRAUD_RATE, 1),
        stream("latency.csv", latency_rows, LATENCY_FRAUD_RATE, 2),
        description,
    )


def train_model(settings: Settings, train_csv: Path, trees: int) -> tuple[str, str]:
    from trainer.config import TrainConfig
    from trainer.service import train

    config = TrainConfig(data=train_csv, n_estimators=trees, bootstrap_rounds=200, seed=3)
    result = train(settings, config)
    if result.version is None:
        raise SystemExit(f"the benchmark model was not registered: {result.decision.reason}")
    return (
        result.version,
        f"RandomForest {trees} trees, max depth {config.max_depth}, test F1 {result.evaluation.f1:.3f}",
    )


def _sibling(name: str) -> Any:
    """Another script of benchmarks/ as a module (this folder is off sys.path, so that `import scorer` is ours)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", _HERE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def monitoring_cost(settings: Settings, data: BenchData, production: str, rows: int, repeat: int, trees: int) -> Any:
    """benchmarks/monitoring.py's measurement on this run's topic: monitoring off, on, and on with a challenger
    (a second forest trained with another seed, under the challenger alias; production keeps its version)."""
    from fraudstream.model.registry import ModelRegistry
    from trainer.config import TrainConfig
    from trainer.service import train

    challenger = train(settings, TrainConfig(data=data.train_csv, n_estimators=trees, bootstrap_rounds=200, seed=4))
    if challenger.version is None:
        raise SystemExit(f"the benchmark challenger was not registered: {challenger.decision.reason}")
    client = ModelRegistry(settings).client
    client.set_registered_model_alias(settings.model_name, settings.model_alias, production)
    client.set_registered_model_alias(settings.model_name, settings.model_challenger_alias, challenger.version)
    try:
        return _sibling("monitoring").monitoring_benchmark(settings, rows, repeat, stream_csv=data.stream_csv)
    finally:  # the runs after this one score without a shadow
        client.delete_registered_model_alias(settings.model_name, settings.model_challenger_alias)


def replay_all(settings: Settings, csv: Path, rate: float | None = None) -> None:
    from producer.bootstrap import replay
    from producer.pacing import Pace
    from producer.replay import ReplayOptions

    stats = replay(settings, ReplayOptions(data=csv, pace=Pace(rate=rate)), stop=threading.Event())
    assert stats.delivered == stats.sent, stats


# ---- the contenders -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OurRun:
    rate: float
    """tx/s from the first message to the last commit."""
    transactions: int
    batch_ms: float
    startup_s: float
    """From holding the partitions to the first message (a fresh group looks up its offsets): not in the rate."""


def our_scorer(settings: Settings, rows: int, group: str | None = None) -> OurRun:
    """Our scorer over the whole topic for a fresh group, timed as the peer is: from its first message to its
    last commit. The model and its explainer are loaded beforehand (as the peer loads its model before it
    consumes)."""
    from scorer.bootstrap import bootstrap

    run = settings.model_copy(update={"scorer_group_id": group or f"bench-scorer-{uuid.uuid4().hex[:8]}"})
    stop = threading.Event()
    scorer = bootstrap(run, stop=stop, watcher=ready_watcher(run), create_topics=False)
    freeze_long_lived()  # as `fraudstream score` does once started; here before the clock starts
    thread = threading.Thread(target=scorer.run, daemon=True)
    thread.start()
    status = scorer.loop.status
    while not status.partitions:
        time.sleep(0.001)
    assigned = time.perf_counter()
    while status.consumed < rows:
        time.sleep(0.001)
        if not thread.is_alive():
            raise SystemExit("the scorer stopped early")
    ended = time.perf_counter()
    stop.set()
    thread.join()
    first = status.first_message_at
    assert first is not None
    histogram = scorer.metrics
    batch_ms = histogram.value("fraudstream_scorer_batch_seconds_sum") / max(1, status.batches) * 1000
    return OurRun(rows / (ended - first), status.batches, batch_ms, first - assigned)


@dataclass(frozen=True)
class Replicas:
    rate: float
    """tx/s over the whole topic, from the first message any replica got to the last one's last message."""
    shares: list[int]
    """Messages each replica consumed."""


def our_workers(overrides: dict[str, Any], rows: int, workers: int) -> Replicas:
    """Our scorer as ``fraudstream score --workers N`` runs it: N processes, each a replica of its own in a fresh
    group (its own transactional.id), each running ``scorer.bootstrap`` as the one-process contender does, timed
    alike (from the first message of any to the last commit of the last; each reports its own, the parent watches
    the group's committed offsets to know when the topic is done)."""
    import json
    import subprocess

    group = f"bench-workers-{uuid.uuid4().hex[:8]}"
    children = []
    for index in range(workers):
        spec = {**overrides, "scorer_group_id": group, "scorer_transactional_id": f"{group}-{index}"}
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
        children.append(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    for child in children:  # each has its model and explainer loaded, as the peer loads its model first
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY", "a worker did not start"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("GO\n")
        child.stdin.flush()
    _until_committed(load_settings(**{**overrides, "scorer_group_id": group}), group, rows, children)
    return _collect(children)


def _until_committed(settings: Settings, group: str, rows: int, children: list[Any], timeout: float = 600) -> None:
    """Until ``group`` has committed ``rows`` offsets on the transactions topic (a replica cannot know its share)."""
    from confluent_kafka import Consumer, TopicPartition

    watcher = Consumer(consumer_config(settings.kafka(), group_id=group, client_id="bench-watch", read_committed=False))
    partitions = [TopicPartition(settings.topic_transactions, p) for p in range(settings.topic_partitions)]
    deadline = time.monotonic() + timeout
    try:
        while sum(max(0, tp.offset) for tp in watcher.committed(partitions, timeout=30)) < rows:
            if time.monotonic() > deadline or any(child.poll() is not None for child in children):
                raise SystemExit(f"the replicas of {group} did not get through the topic")
            time.sleep(0.05)
    finally:
        watcher.close()


def _collect(children: list[Any]) -> Replicas:
    import json
    import signal

    reports = []
    for child in children:
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=120)
        reports.append(json.loads(out.strip().splitlines()[-1]))
    working = [report for report in reports if report["first"] is not None]
    first, last = min(r["first"] for r in working), max(r["last"] for r in working)
    return Replicas(sum(r["consumed"] for r in reports) / (last - first), [int(r["consumed"]) for r in reports])


def worker_child(spec: str) -> None:
    """One worker of :func:`our_workers` (``--worker``): ready, then GO on stdin, then score until SIGTERM; prints
    its first message and its last commit (``time.perf_counter``, one clock for every process of the machine)."""
    import json
    import signal

    from scorer.bootstrap import bootstrap

    settings = load_settings(**json.loads(spec))
    stop, asked = threading.Event(), threading.Event()
    scorer = bootstrap(settings, stop=stop, watcher=ready_watcher(settings), create_topics=False)
    freeze_long_lived()
    thread = threading.Thread(target=scorer.run, daemon=True)
    signal.signal(signal.SIGTERM, lambda *_: asked.set())
    print("READY", flush=True)
    sys.stdin.readline()
    thread.start()
    status = scorer.loop.status
    seen, last = 0, None
    while not asked.is_set():  # as our_scorer watches the one-process run: the consumed count, each millisecond
        if status.consumed != seen:
            seen, last = status.consumed, time.perf_counter()
        time.sleep(0.001)
    stop.set()
    thread.join()
    print(json.dumps({"first": status.first_message_at, "last": last, "consumed": status.consumed}), flush=True)


def ready_watcher(settings: Settings) -> Any:
    """A model watcher holding the serving version, its explainer (when on) loaded."""
    from scorer.bootstrap import build_watcher

    watcher = build_watcher(settings)
    watcher.poll(force=True)
    model = watcher.current
    assert model is not None
    if model.explainer is not None:
        model.explainer.wait()
    return watcher


def naive_scorer(settings: Settings, version: str, prefix: int) -> float:
    """Per message: poll one, predict one row (sklearn as MLflow loads it), produce when flagged, commit."""
    import mlflow.sklearn
    from confluent_kafka import Consumer, Producer

    from fraudstream.kafka.topics import ensure_topics
    from fraudstream.model.registry import ModelRegistry

    registry = ModelRegistry(settings)
    threshold = registry.load(version).threshold
    model = mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}")
    alerts_topic = f"{settings.topic_alerts}-naive"
    ensure_topics(settings.kafka(), [alerts_topic], partitions=settings.topic_partitions)
    consumer = Consumer(
        consumer_config(settings.kafka(), group_id=f"bench-naive-{uuid.uuid4().hex[:8]}", client_id="bench-naive")
    )
    producer = Producer(producer_config(settings.kafka(), client_id="bench-naive"))
    consumer.subscribe([settings.topic_transactions])
    done, started = 0, 0.0
    while done < prefix:
        message = consumer.poll(1.0)
        if message is None or message.error() is not None:
            continue
        if done == 0:
            started = time.perf_counter()  # from the first message: the group join is not counted
        tx = Transaction.model_validate_json(message.value())
        score = float(model.predict_proba(pd.DataFrame([tx.as_row()], columns=list(FEATURES)))[0, 1])
        if score >= threshold:
            producer.produce(alerts_topic, key=message.key(), value=tx.model_dump_json())
            producer.flush()
        consumer.commit(message=message, asynchronous=False)
        done += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return (prefix - 1) / elapsed  # prefix - 1 intervals after the first message arrived


def _matrix(csv: Path) -> np.ndarray:
    return pd.read_csv(csv)[list(FEATURES)].to_numpy(np.float32)


def model_alone(settings: Settings, version: str, csv: Path, repeat: int = 5) -> float:
    from fraudstream.model.registry import ModelRegistry

    model, matrix, batch = ModelRegistry(settings).load(version), _matrix(csv), settings.scorer_batch_size
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for first in range(0, len(matrix), batch):
            model.score(matrix[first : first + batch])
        best = min(best, time.perf_counter() - started)
    return len(matrix) / best


def scorer_cpu_path(settings: Settings, version: str, csv: Path) -> float:
    """The scorer's per-batch work without Kafka: decode and validate the JSON bytes (scorer.decode.decode_batch:
    the wire decoder and the feature matrix), then one ONNX call."""
    from fraudstream.model.registry import ModelRegistry
    from producer.encode import encode_row
    from scorer.decode import decode_batch

    model, batch = ModelRegistry(settings).load(version), settings.scorer_batch_size
    frame = pd.read_csv(csv)
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    rows = frame[list(FEATURES)].to_numpy().tolist()
    values = [encode_row(csv.name, i, row, 0, now).value for i, row in enumerate(rows)]
    started = time.perf_counter()
    for first in range(0, len(values), batch):
        model.score(decode_batch(values[first : first + batch]).matrix)
    return len(values) / (time.perf_counter() - started)


def sklearn_reference(settings: Settings, version: str, csv: Path) -> tuple[float, float]:
    """(rows/s in the scorer's batch size, seconds for one row) of the pipeline as mlflow.sklearn loads it."""
    import mlflow.sklearn

    model = mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}")
    frame, batch = pd.read_csv(csv)[list(FEATURES)], settings.scorer_batch_size
    started = time.perf_counter()
    for first in range(0, len(frame), batch):
        model.predict_proba(frame.iloc[first : first + batch])
    per_batch = len(frame) / (time.perf_counter() - started)
    started = time.perf_counter()
    for index in range(20):
        model.predict_proba(frame.iloc[index : index + 1])
    return per_batch, (time.perf_counter() - started) / 20


@dataclass(frozen=True)
class Latency:
    """Per alert of a paced replay: seconds from its event_time to its scoring, and to its receipt; and how many
    transactions the scorer committed meanwhile."""

    scored: np.ndarray
    received: np.ndarray
    transactions: int

    def percentiles(self) -> tuple[float, float]:
        """p50 and p99 of event -> received, in ms."""
        p50, p99 = np.percentile(self.received, [50, 99]) * 1000
        return float(p50), float(p99)


def replay_process(settings: Settings, csv: Path, rate: float) -> Any:
    """`fraudstream replay --rate` in its own process, as a user runs it next to the scorer (a replay thread in
    this process would take the scorer's interpreter lock for every row it encodes)."""
    import subprocess

    from fraudstream.settings import env_name

    names = ("kafka_bootstrap", "topic_transactions", "topic_alerts", "topic_dlq", "topic_partitions", "state_dir")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUD_", "MLFLOW_"))}
    env.update({env_name(name): str(getattr(settings, name)) for name in names})
    env["FRAUD_LOG_LEVEL"] = "WARNING"
    command = [str(Path(sys.executable).parent / "fraudstream"), "replay", "--data", str(csv), "--rate", str(rate)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def latency_run(settings: Settings, csv: Path, rate: float) -> Latency:
    """Event -> scored and event -> received by a read_committed consumer, for each alert of a paced replay."""
    from confluent_kafka import Consumer, TopicPartition

    from scorer.bootstrap import bootstrap

    reader = Consumer(
        consumer_config(settings.kafka(), group_id=f"bench-latency-{uuid.uuid4().hex[:8]}", client_id="bench-latency")
    )
    partitions = [TopicPartition(settings.topic_alerts, p) for p in range(settings.topic_partitions)]
    reader.assign([TopicPartition(tp.topic, tp.partition, reader.get_watermark_offsets(tp)[1]) for tp in partitions])
    stop = threading.Event()
    # The throughput group, already at the end of the topic.
    scorer = bootstrap(settings, stop=stop, watcher=ready_watcher(settings), create_topics=False)
    freeze_long_lived()  # as `fraudstream score` does once started (a full collection paused it 235 ms)
    thread = threading.Thread(target=scorer.run, daemon=True)
    thread.start()
    while not scorer.loop.status.partitions:
        reader.poll(0.05)
    replayer = replay_process(settings, csv, rate)
    scored: list[float] = []
    received: list[float] = []
    idle_since = time.monotonic()
    while replayer.poll() is None or time.monotonic() - idle_since < 3.0:
        message = reader.poll(0.1)
        if message is None or message.error() is not None:
            continue
        now = time.time()
        alert = Alert.model_validate_json(message.value())
        event = alert.event_time.timestamp()
        scored.append(alert.scored_at.timestamp() - event)
        received.append(now - event)
        idle_since = time.monotonic()
    stop.set()
    thread.join()
    reader.close()
    if replayer.returncode != 0:
        raise SystemExit(f"the latency replay at {rate:,.0f} tx/s exited with {replayer.returncode}")
    return Latency(np.array(scored), np.array(received), scorer.loop.status.batches)


# ---- the exactly-once passthrough ceiling and the Quix Streams peer -------------------------------------------
PASSTHROUGH_BATCH = 5000
PASSTHROUGH_PRODUCE_EVERY = 600
"""The passthrough writes one record per 600 messages: about the alerts our scorer writes at 0.17% frauds."""


def passthrough(settings: Settings, rows: int) -> tuple[float, float]:
    """(tx/s, start-up s) of exactly-once consume -> produce -> commit with no decoding and no model, for a fresh
    group; timed like our scorer and the peer, from the first message to the last commit (the start-up, from
    holding the partitions to the first message, apart)."""
    from confluent_kafka import Consumer, Producer

    group = f"bench-passthrough-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(consumer_config(settings.kafka(), group_id=group, client_id="bench-passthrough"))
    producer = Producer(
        producer_config(
            settings.kafka(),
            client_id="bench-passthrough",
            transactional_id=group,
            **{"retry.backoff.ms": 10},  # as the scorer's producer (see scorer.bootstrap.build_producer)
        )
    )
    producer.init_transactions(30)
    assigned: list[float] = []
    consumer.subscribe([settings.topic_transactions], on_assign=lambda c, p: assigned.append(time.perf_counter()))
    out_topic = f"{settings.topic_alerts}-passthrough"
    done = 0
    first = 0.0
    while done < rows:
        messages = consumer.consume(PASSTHROUGH_BATCH, 0.2)
        if not messages:
            continue
        first = first or time.perf_counter()
        producer.begin_transaction()
        for index, message in enumerate(messages):
            if (done + index) % PASSTHROUGH_PRODUCE_EVERY == 0:
                producer.produce(out_topic, value=message.value(), key=message.key())
        positions = consumer.position(consumer.assignment())
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        done += len(messages)
    elapsed = time.perf_counter() - first
    consumer.close()
    return rows / elapsed, first - assigned[0]


QUIX_VENV = Path(__file__).resolve().parents[1] / ".venv-quix"
QUIX_REQUIREMENTS = Path(__file__).resolve().parent / "peers" / "requirements-quix.txt"
QUIX_PEER = Path(__file__).resolve().parent / "peers" / "quix_peer.py"


def quix_python() -> Path:
    """The Quix Streams virtualenv's python, built once (Quix Streams 3.28 pins older confluent-kafka and pydantic
    than ours, so it cannot share our environment)."""
    import subprocess

    python = QUIX_VENV / "bin" / "python"
    marker = QUIX_VENV / ".requirements"
    wanted = QUIX_REQUIREMENTS.read_text()
    if python.is_file() and marker.is_file() and marker.read_text() == wanted:
        return python
    print(f"building {QUIX_VENV} for the Quix Streams peer (once)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(QUIX_REQUIREMENTS)], check=True)
    marker.write_text(wanted)
    return python


@dataclass(frozen=True)
class PeerModel:
    onnx: Path
    threshold: float
    time_encoding: str


def peer_model(settings: Settings, version: str, home: Path) -> PeerModel:
    """The registered version's ONNX file (downloaded from the registry), threshold and Time encoding."""
    import mlflow

    from fraudstream.model.registry import ModelRegistry

    model = ModelRegistry(settings).load(version)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{settings.model_name}/{version}", dst_path=str(home)))
    onnx = next(local.rglob("*.onnx"))
    return PeerModel(onnx, model.threshold, model.time_encoding)


def quix_peer(settings: Settings, model: PeerModel, rows: int) -> float:
    """tx/s of the Quix Streams peer (its own process, its own virtualenv) over the whole topic, fresh group."""
    import json
    import subprocess

    group = f"bench-quix-{uuid.uuid4().hex[:8]}"
    command = [
        str(quix_python()),
        str(QUIX_PEER),
        *("--bootstrap", settings.kafka_bootstrap, "--topic", settings.topic_transactions),
        *("--alerts", f"{settings.topic_alerts}-quix", "--group", group, "--onnx", str(model.onnx)),
        *("--threshold", repr(model.threshold), "--time-encoding", model.time_encoding, "--rows", str(rows)),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=900)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["rows"]) / float(result["seconds"])


def quix_replicas(settings: Settings, model: PeerModel, rows: int, replicas: int) -> Replicas:
    """The Quix Streams peer as its users scale it: ``replicas`` copies of the same app in one fresh group, each
    until SIGTERM. Timed from the first message any got to the last message the last one processed: its last
    checkpoint (Quix commits every 5 s) is not counted, which flatters the peer a little."""
    import subprocess

    group = f"bench-quix-{uuid.uuid4().hex[:8]}"
    command = [
        str(quix_python()),
        str(QUIX_PEER),
        *("--bootstrap", settings.kafka_bootstrap, "--topic", settings.topic_transactions),
        *("--alerts", f"{settings.topic_alerts}-quix", "--group", group, "--onnx", str(model.onnx)),
        *("--threshold", repr(model.threshold), "--time-encoding", model.time_encoding, "--rows", "0"),
    ]
    children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(replicas)]
    _until_committed(settings, group, rows, children)
    return _collect(children)


# ---- a profile of one batch ---------------------------------------------------------------------------------
def profile_batch(settings: Settings, version: str, batches: int = 5) -> dict[str, float]:
    """Milliseconds of each step of one batch of the topic (the median of ``batches`` batches), done as the scorer
    does it but one step after the other: consume, decode, matrix, model, alerts, produce, commit."""
    from confluent_kafka import Consumer, Producer

    from fraudstream.model.registry import ModelRegistry
    from fraudstream.schemas import feature_matrix
    from fraudstream.wire import WireDecoder
    from scorer.batch import alert_record

    model = ModelRegistry(settings).load(version)
    if model.explainer is not None:
        model.explainer.wait()
    decoder = WireDecoder(Transaction)
    group = f"bench-profile-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(consumer_config(settings.kafka(), group_id=group, client_id="bench-profile"))
    producer = Producer(
        producer_config(settings.kafka(), client_id="bench-profile", transactional_id=group, **{"retry.backoff.ms": 10})
    )
    producer.init_transactions(30)
    consumer.subscribe([settings.topic_transactions])
    while not consumer.assignment():
        consumer.consume(1, 0.1)  # joins the group (a message taken here is simply part of the first batch)
    consumer.consume(settings.scorer_batch_size, 1.0)  # warm-up batch, not counted
    steps: dict[str, list[float]] = {}
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    for _ in range(batches):
        stamps: list[tuple[str, float]] = [("", time.perf_counter())]

        def lap(name: str, stamps: list[tuple[str, float]] = stamps) -> None:
            stamps.append((name, time.perf_counter()))

        messages = consumer.consume(settings.scorer_batch_size, 1.0)
        lap("consume")
        values = [message.value() for message in messages]
        wired = decoder.decode_many(values)
        lap("decode")
        matrix = feature_matrix(wired.accepted)
        lap("matrix")
        scores = model.score(matrix)
        flagged = np.flatnonzero(model.flags(scores))
        lap("model")
        explanations = model.explain(matrix[flagged]) if len(flagged) else []
        alerts = [
            alert_record(wired.accepted[i], messages[wired.rows[i]], float(scores[i]), model, now, explanation)
            for i, explanation in zip(flagged.tolist(), explanations, strict=True)
        ]
        lap("alerts")
        producer.begin_transaction()
        for record in alerts:
            producer.produce(f"{settings.topic_alerts}-profile", value=record.value, key=record.key)
        positions = consumer.position(consumer.assignment())
        lap("produce")
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
        lap("send_offsets")
        producer.commit_transaction(30)
        lap("commit")
        timings = {name: (stamp - stamps[i][1]) * 1000 for i, (name, stamp) in enumerate(stamps[1:])}
        timings["messages"] = float(len(messages))
        for name, value in timings.items():
            steps.setdefault(name, []).append(value)
    consumer.close()
    return {name: float(np.median(values)) for name, values in steps.items()}


def print_profile(profile: dict[str, float]) -> None:
    count = profile.pop("messages")
    total = sum(profile.values())
    print(f"profile of one batch of {count:,.0f} messages (median of 5 batches, steps one after the other)")
    for name, ms in profile.items():
        print(f"  {name:<13} {ms:>8.2f} ms  {ms * 1000 / max(count, 1):>6.2f} us/message  {ms / total:>6.1%}")
    print(f"  {'total':<13} {total:>8.2f} ms  {total * 1000 / max(count, 1):>6.2f} us/message")


# ---- reason codes (issue #13): throughput with explanations off and on, at the natural fraud rate and in a burst ----
NATURAL_FRAUD_RATE = 0.0017
BURST_FRAUD_RATE = 0.10


@dataclass(frozen=True)
class ExplanationRun:
    stream: str
    fraud_rate: float
    off: list[float]
    on: list[float]
    methods: dict[str, int]
    cpu: tuple[float, float, int] = (0.0, 0.0, 0)
    """score_batch alone on one batch: (ms off, ms on, alerts)."""

    @property
    def cpu_cost(self) -> float:
        return self.cpu[1] / self.cpu[0] - 1.0 if self.cpu[0] else 0.0

    @property
    def loss(self) -> float:
        """Share of the throughput lost with explanations on (median runs)."""
        return 1.0 - float(np.median(self.on)) / float(np.median(self.off))


def explanation_stream(home: Path, data: BenchData, name: str, rows: int, fraud_rate: float, seed: int) -> Path:
    """``rows`` transactions with ``fraud_rate`` of them real frauds (sampled with replacement), shuffled."""
    train = pd.read_csv(data.train_csv)
    fraud, normal = train[train["Class"] == 1], pd.read_csv(data.stream_csv).query("Class == 0")
    frauds = fraud.sample(n=max(1, round(rows * fraud_rate)), replace=True, random_state=seed)
    normals = normal.sample(n=rows - len(frauds), replace=len(normal) < rows - len(frauds), random_state=seed)
    out = home / name
    pd.concat([frauds, normals]).sample(frac=1.0, random_state=seed).to_csv(out, index=False, float_format="%.15g")
    return out


def scorer_with_ready_model(settings: Settings, rows: int) -> tuple[float, dict[str, int]]:
    """(tx/s, alerts per explanation method) of a fresh scorer group over the whole topic; timed from holding the
    partitions to the last commit, with the model (and its explainer, when on) loaded beforehand."""
    import orjson
    from confluent_kafka import Consumer

    from scorer.bootstrap import bootstrap, build_watcher

    run = settings.model_copy(update={"scorer_group_id": f"bench-explain-{uuid.uuid4().hex[:8]}"})
    watcher = build_watcher(run)
    watcher.poll(force=True)
    model = watcher.current
    assert model is not None
    if model.explainer is not None:
        model.explainer.wait()
    stop = threading.Event()
    scorer = bootstrap(run, stop=stop, watcher=watcher, create_topics=False)
    thread = threading.Thread(target=scorer.run, daemon=True)
    alerts_before = _end_offsets(run)
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
    methods: dict[str, int] = {}
    reader = Consumer(consumer_config(run.kafka(), group_id=f"bench-read-{uuid.uuid4().hex[:8]}", client_id="bench"))
    from confluent_kafka import TopicPartition

    reader.assign([TopicPartition(run.topic_alerts, p, o) for p, o in alerts_before.items()])
    idle = time.monotonic()
    while time.monotonic() - idle < 2.0:
        for message in reader.consume(1000, 0.2):
            if message.error() is None:
                explanation = orjson.loads(message.value()).get("explanation")
                key = explanation["method"] if explanation else "none"
                methods[key] = methods.get(key, 0) + 1
                idle = time.monotonic()
    reader.close()
    return rows / elapsed, methods


def _end_offsets(settings: Settings) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    reader = Consumer(consumer_config(settings.kafka(), group_id="bench-offsets", client_id="bench"))
    try:
        partitions = [TopicPartition(settings.topic_alerts, p) for p in range(settings.topic_partitions)]
        return {tp.partition: reader.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
    finally:
        reader.close()


def explanation_benchmark(
    settings: Settings, home: Path, data: BenchData, rows: int, repeat: int, version: str
) -> list[ExplanationRun]:
    """The scorer with explanations off and on, interleaved (off, on, off, on...) on the same topic and broker, at
    the natural fraud rate and in a burst where 10% of the stream is fraud."""
    from fraudstream.kafka.topics import ensure_flow_topics

    results = []
    for name, rate in (("natural", NATURAL_FRAUD_RATE), ("burst", BURST_FRAUD_RATE)):
        csv = explanation_stream(home, data, f"explain-{name}.csv", rows, rate, seed=5)
        suffix = uuid.uuid4().hex[:8]
        topics = {
            "topic_transactions": f"bench-explain-{name}-{suffix}",
            "topic_alerts": f"bench-explain-alerts-{name}-{suffix}",
        }
        run = settings.model_copy(update=topics)
        ensure_flow_topics(run)
        replay_all(run, csv)
        off: list[float] = []
        on: list[float] = []
        methods: dict[str, int] = {}
        scorer_with_ready_model(run, rows)  # warm-up
        for _ in range(repeat):
            off.append(scorer_with_ready_model(run.model_copy(update={"explain_enabled": False}), rows)[0])
            rate_on, seen = scorer_with_ready_model(run.model_copy(update={"explain_enabled": True}), rows)
            on.append(rate_on)
            methods = seen
        cpu = explanation_cpu_cost(run, version, csv)
        results.append(ExplanationRun(name, rate, off, on, methods, cpu))
    return results


def explanation_cpu_cost(settings: Settings, version: str, csv: Path, repeat: int = 15) -> tuple[float, float, int]:
    """(ms off, ms on, alerts) of score_batch on one batch of the stream, no Kafka: the fastest of ``repeat``
    interleaved runs each, so that other processes on the machine count as little as possible."""
    from fraudstream.model.registry import ModelRegistry
    from scorer.batch import score_batch

    messages = _sibling("monitoring").batch_messages(csv, settings.scorer_batch_size)
    off = ModelRegistry(settings.model_copy(update={"explain_enabled": False})).load(version)
    on = ModelRegistry(settings.model_copy(update={"explain_enabled": True})).load(version)
    assert on.explainer is not None
    on.explainer.wait()
    best = {"off": float("inf"), "on": float("inf")}
    alerts = 0
    for _ in range(repeat):
        for name, model in (("off", off), ("on", on)):
            started = time.perf_counter()
            batch = score_batch(messages, model)
            best[name] = min(best[name], (time.perf_counter() - started) * 1000)
            alerts = len(batch.alerts)
    return best["off"], best["on"], alerts


def model_load_seconds(settings: Settings, version: str) -> tuple[float, float, float | None]:
    """(seconds until a version scores with explanations off, with them on, until its explainer is ready)."""
    from fraudstream.model.registry import ModelRegistry

    started = time.perf_counter()
    ModelRegistry(settings.model_copy(update={"explain_enabled": False})).load(version)
    off = time.perf_counter() - started
    started = time.perf_counter()
    model = ModelRegistry(settings.model_copy(update={"explain_enabled": True})).load(version)
    on = time.perf_counter() - started
    if model.explainer is None:
        return off, on, None
    model.explainer.wait()
    return off, on, time.perf_counter() - started


def print_explanations(
    results: list[ExplanationRun], loads: tuple[float, float, float | None], budget_ms: float
) -> None:
    print()
    print(f"reason codes: the scorer with explanations off and on (exact TreeSHAP budget {budget_ms:g} ms a batch)")
    for result in results:
        target = 0.10 if result.stream == "natural" else 0.30
        verdict = "met" if result.loss <= target else "NOT met"
        print(
            f"  {result.stream:<8} ({result.fraud_rate:.2%} fraud)  off {np.median(result.off):>9,.0f} tx/s  "
            f"on {np.median(result.on):>9,.0f} tx/s  loss {result.loss:6.1%}  target <= {target:.0%}  {verdict}"
        )
        print(
            f"           runs off {', '.join(f'{r:,.0f}' for r in result.off)}; "
            f"on {', '.join(f'{r:,.0f}' for r in result.on)}; alerts by method (last run) {result.methods}"
        )
        off_ms, on_ms, alerts = result.cpu
        print(
            f"           CPU of one {alerts}-alert batch without Kafka (fastest of 15): off {off_ms:.1f} ms, "
            f"on {on_ms:.1f} ms, +{result.cpu_cost:.1%}"
        )
    off, on, ready = loads
    ready_text = "no explainer" if ready is None else f"explainer ready after {ready:.2f} s (in the background)"
    print(f"  model load: scoring after {off:.2f} s without explanations, {on:.2f} s with them; {ready_text}")


# ---- the report ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    rows: int
    repeat: int
    naive_prefix: int
    rates: tuple[float, ...]
    latency_seconds: float


def median(values: list[float]) -> float:
    return float(np.median(values))


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 runs each, 5 s latency runs, no reason-code section")
    parser.add_argument("--rows", type=int, default=100_000, help="transactions in the throughput topic")
    parser.add_argument("--naive-prefix", type=int, default=None, help="messages the naive scorer is timed on")
    parser.add_argument("--rates", default="2000,20000", help="fixed rates of the latency runs (tx/s, comma-separated)")
    parser.add_argument("--latency-seconds", type=float, default=None, help="length of each latency run")
    parser.add_argument(
        "--latency-warmups",
        type=int,
        default=LATENCY_WARMUPS,
        help=f"latency runs at the first rate before the timed ones, not counted (default {LATENCY_WARMUPS})",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="scorer batch size (default: the setting)")
    parser.add_argument("--repeat", type=int, default=None, help="runs of each Kafka contender (median shown)")
    parser.add_argument("--trees", type=int, default=100, help="trees of the benchmark forest")
    parser.add_argument("--skip-peer", action="store_true", help="leave out the Quix Streams peer")
    parser.add_argument("--explain-rows", type=int, default=50_000, help="transactions of each reason-code stream")
    parser.add_argument("--explain-repeat", type=int, default=3, help="runs off and on of each reason-code stream")
    parser.add_argument("--skip-explanations", action="store_true", help="leave out the reason-code section")
    parser.add_argument(
        "--skip-monitoring", action="store_true", help="leave out monitoring off / on / with a challenger"
    )
    parser.add_argument("--only-explanations", action="store_true", help="run the reason-code section alone")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes of the --workers contender (and peer replicas); 0: off"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one worker of that contender
    args = parser.parse_args()
    if args.worker is not None:
        configure_logging("WARNING")
        worker_child(args.worker)
        return
    configure_logging("WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per model load, in the output
    options = Options(
        rows=args.rows,
        repeat=args.repeat or (3 if args.quick else 5),
        naive_prefix=args.naive_prefix or (200 if args.quick else 300),
        rates=tuple(float(rate) for rate in args.rates.split(",") if rate),
        latency_seconds=args.latency_seconds or (5.0 if args.quick else 10.0),
    )
    skip_explanations = args.skip_explanations or args.quick
    peer_python = None if args.skip_peer else quix_python()  # built before anything is timed
    began = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="fraudstream-bench-scorer-") as tmp, broker(Path(tmp)) as bootstrap:
        home, suffix = Path(tmp), uuid.uuid4().hex[:8]
        overrides = {"scorer_batch_size": args.batch_size} if args.batch_size else {}
        bench: dict[str, Any] = {
            "state_dir": str(home / "state"),
            "kafka_bootstrap": bootstrap,
            "model_name": "bench-rf",
            "min_f1": 0.5,
            "topic_transactions": f"bench-transactions-{suffix}",
            "topic_alerts": f"bench-alerts-{suffix}",
            "topic_dlq": f"bench-dlq-{suffix}",
            "scorer_metrics_port": 0,
            "scorer_group_id": f"bench-{suffix}",
            **overrides,
        }
        settings = load_settings(**bench)
        latency_rows = int(max(options.rates, default=0) * options.latency_seconds)
        data = make_data(home, options.rows, latency_rows=max(latency_rows, 1000))
        load = os.getloadavg()
        version, model_text = train_model(settings, data.train_csv, args.trees)
        if args.only_explanations:
            loads = model_load_seconds(settings, version)
            explained = explanation_benchmark(settings, home, data, args.explain_rows, args.explain_repeat, version)
            print(f"\nfraudstream scorer benchmark, reason codes only: {settings.model_name} v{version} ({model_text})")
            print(f"  data: {data.description}")
            end_load = os.getloadavg()[0]
            print(f"  machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} at start, {end_load:.1f} at end")
            print_explanations(explained, loads, settings.explain_exact_budget_ms)
            return
        from fraudstream.kafka.topics import ensure_flow_topics, ensure_monitoring_state_topic, ensure_topics

        ensure_flow_topics(settings)  # as `fraudstream score` makes sure of them: monitoring's topics among them
        ensure_monitoring_state_topic(settings)
        ensure_topics(
            settings.kafka(),
            [f"{settings.topic_alerts}-{name}" for name in ("passthrough", "quix", "profile", "naive")],
            partitions=settings.topic_partitions,
        )
        replay_all(settings, data.stream_csv)
        model = peer_model(settings, version, home / "peer-model") if peer_python else None
        # One warm-up run each, not counted (a fresh broker's JVM compiles its hot paths), then the runs
        # interleaved, so that a change of load on the machine touches every contender alike.
        passthrough(settings, options.rows)
        our_scorer(settings, options.rows)
        if model is not None:
            quix_peer(settings, model, options.rows)
        if args.workers > 1:
            our_workers(bench, options.rows, args.workers)
            if model is not None:
                quix_replicas(settings, model, options.rows, args.workers)
        workers: list[Replicas] = []
        peer_replicas: list[Replicas] = []
        ceiling: list[float] = []
        ceiling_startup: list[float] = []
        ours: list[OurRun] = []
        peer: list[float] = []
        plain: list[float] = []  # our scorer without reason codes: the alerts the peer writes (an aside, not a target)
        for run in range(options.repeat):
            rate, startup = passthrough(settings, options.rows)
            ceiling.append(rate)
            ceiling_startup.append(startup)
            last = run == options.repeat - 1
            ours.append(our_scorer(settings, options.rows, group=settings.scorer_group_id if last else None))
            if model is not None:
                peer.append(quix_peer(settings, model, options.rows))
                plain.append(our_scorer(settings.model_copy(update={"explain_enabled": False}), options.rows).rate)
            if args.workers > 1:
                workers.append(our_workers(bench, options.rows, args.workers))
                if model is not None:
                    peer_replicas.append(quix_replicas(settings, model, options.rows, args.workers))
        naive = naive_scorer(settings, version, options.naive_prefix)
        alone = model_alone(settings, version, data.stream_csv)
        cpu_path = scorer_cpu_path(settings, version, data.stream_csv)
        profile = profile_batch(settings, version)
        latencies: dict[float, Latency] = {}
        warmups: list[Latency] = []
        for index, rate in enumerate(options.rates):
            csv = home / f"latency-{rate:.0f}.csv"
            pd.read_csv(data.latency_csv).head(int(rate * options.latency_seconds)).to_csv(
                csv, index=False, float_format="%.15g"
            )
            if index == 0:  # warm-up runs, not counted: the broker's JVM compiles its many-small-transactions path
                warmups = [latency_run(settings, csv, rate) for _ in range(args.latency_warmups)]
            latencies[rate] = latency_run(settings, csv, rate)
        monitored = None
        if not args.skip_monitoring:  # last of the Kafka runs: it moves the aliases
            monitored = monitoring_cost(settings, data, version, options.rows, options.repeat, args.trees)
        explained: list[ExplanationRun] = []
        loads: tuple[float, float, float | None] = (0.0, 0.0, None)
        if not skip_explanations:
            loads = model_load_seconds(settings, version)
            explained = explanation_benchmark(settings, home, data, args.explain_rows, args.explain_repeat, version)
        end_load = os.getloadavg()

    batch = settings.scorer_batch_size
    our_rates = [run.rate for run in ours]
    our, top = median(our_rates), max(our_rates)
    best = max(ours, key=lambda run: run.rate)
    print()
    mode = " (quick)" if args.quick else ""
    print(f"fraudstream scorer benchmark{mode}: {settings.model_name} v{version} ({model_text})")
    print(f"  data: {data.description}")
    print(
        f"  machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start, "
        f"{end_load[0]:.2f} {end_load[1]:.2f} {end_load[2]:.2f} at end; broker on the same machine; "
        f"{(time.monotonic() - began) / 60:.1f} min"
    )
    print()
    print(
        f"throughput on one topic of {options.rows:,} transactions ({STREAM_FRAUD_RATE:.2%} frauds), "
        f"{settings.topic_partitions} partitions; median of {options.repeat} runs after a warm-up, interleaved; "
        "each timed from its first message to its last commit"
    )

    def runs(values: list[float]) -> str:
        return ", ".join(f"{value:,.0f}" for value in values)

    print(f"  exactly-once passthrough ceiling  {median(ceiling):>9,.0f} tx/s  runs {runs(ceiling)}")
    print(
        f"  our scorer (batch {batch:,})        {our:>9,.0f} tx/s  runs {runs(our_rates)}; best {top:,.0f}: "
        f"{best.transactions} transactions, mean batch {best.batch_ms:.1f} ms"
    )
    if peer:
        print(f"  Quix Streams 3.28 peer (EOS)      {median(peer):>9,.0f} tx/s  runs {runs(peer)}")
        print(
            f"  our scorer, no reason codes       {median(plain):>9,.0f} tx/s  runs {runs(plain)}; "
            "FRAUD_EXPLAIN_ENABLED=false: alerts as the peer writes them (an aside)"
        )
    if workers:
        shares = " / ".join(f"{share:,}" for share in max(workers, key=lambda run: run.rate).shares)
        print(
            f"  our scorer, {args.workers} workers              {median([w.rate for w in workers]):>9,.0f} tx/s  runs "
            f"{runs([w.rate for w in workers])}; fraudstream score --workers {args.workers} (shares of the best run: "
            f"{shares})"
        )
    if peer_replicas:
        replicated = [r.rate for r in peer_replicas]
        print(
            f"  Quix Streams peer, {args.workers} replicas      {median(replicated):>9,.0f} tx/s  "
            f"runs {runs(replicated)}; the same app {args.workers} times in one group"
        )
    print(
        "  start-up, not in the rates: partitions held -> first message, median "
        f"{median(ceiling_startup) * 1000:,.0f} ms (ceiling), {median([run.startup_s for run in ours]) * 1000:,.0f} ms "
        "(ours)"
    )
    print(
        f"  naive per-message scorer          {naive:>9,.1f} tx/s  the first {options.naive_prefix} messages only "
        "(poll one, sklearn predict one row, produce, commit)"
    )
    print(f"  model alone (FraudModel, ONNX)    {alone:>9,.0f} rows/s  ready float32 matrix, batches of {batch:,}")
    print(
        f"  reference: scorer CPU path        {cpu_path:>9,.0f} tx/s  JSON bytes -> scorer.decode.decode_batch -> "
        "ONNX, no Kafka"
    )
    print()
    print("ratios (medians)                       target")
    vs_ceiling = our / median(ceiling)
    print(f"  our / passthrough ceiling  {vs_ceiling:>8.3f}     >= 0.4    {verdict(vs_ceiling >= 0.4)}")
    if peer:
        vs_peer = our / median(peer)
        print(f"  our / Quix Streams peer    {vs_peer:>8.2f} x   >= 3 x    {verdict(vs_peer >= 3)}")
        like = median(plain) / median(peer)
        print(f"  (no reason codes) / Quix   {like:>8.2f} x   like for like: neither writes reason codes (an aside)")
    if workers:
        many = median([w.rate for w in workers])
        print(
            f"  {args.workers} workers / ceiling        {many / median(ceiling):>8.3f}     >= 0.4    "
            f"{verdict(many / median(ceiling) >= 0.4)}"
        )
        if peer:
            print(
                f"  {args.workers} workers / Quix peer      {many / median(peer):>8.2f} x   >= 3 x    "
                f"{verdict(many / median(peer) >= 3)}  (the peer as one app, as above)"
            )
        if peer_replicas:
            both = many / median([r.rate for r in peer_replicas])
            print(
                f"  {args.workers} workers / {args.workers} Quix replicas {both:>7.2f} x   each side on every core "
                "(an aside: like for like)"
            )
    print(f"  our / naive                {our / naive:>8,.0f} x   >= 100 x  {verdict(our / naive >= 100)}")
    print(f"  our / model alone          {our / alone:>8.3f}     >= 0.25   {verdict(our / alone >= 0.25)}")
    print()
    print(
        f"latency: a replay at a fixed rate for {options.latency_seconds:g} s ({LATENCY_FRAUD_RATE:.0%} frauds, for "
        f"samples), after {len(warmups)} warm-up runs at the first rate; event_time -> alert received by a "
        "read_committed consumer"
    )
    if warmups:
        counted = [run.percentiles() for run in warmups if len(run.received)]
        shown = ", ".join(f"{p50:,.0f}/{p99:,.0f}" for p50, p99 in counted)
        print(f"  warm-up runs, not counted (p50/p99 ms): {shown}")
    for rate, latency in latencies.items():
        values = latency.received
        if not len(values):
            print(f"  {rate:>7,.0f} tx/s  no alert arrived")
            continue
        p50, p99 = latency.percentiles()
        s50, s99 = np.percentile(latency.scored, [50, 99]) * 1000
        target = f"   target p99 <= 100 ms  {verdict(p99 <= 100)}" if rate == 2000 else ""
        print(
            f"  {rate:>7,.0f} tx/s  p50 {p50:>6,.0f} ms  p99 {p99:>6,.0f} ms  max {values.max() * 1000:>6,.0f} ms  "
            f"({len(values):,} alerts, {latency.transactions:,} transactions; event -> scored p50 {s50:,.0f} ms, "
            f"p99 {s99:,.0f} ms){target}"
        )
    print()
    print_profile(profile)
    if monitored is not None:
        print()
        _sibling("monitoring").print_cost(monitored, settings.monitor_window_rows, batch)
    if explained:
        print_explanations(explained, loads, settings.explain_exact_budget_ms)


if __name__ == "__main__":
    main()
