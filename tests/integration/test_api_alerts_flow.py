"""fraud-alerts -> alert sink -> store -> GET /alerts, on a real broker, a real MLflow model and real HTTP.

The alerts are produced here by a transactional producer (committed transactions, and one aborted whose alerts
must never show), scored by the trained model through the kernel's FraudModel, so this test does not wait on the
scorer. The full replay -> scorer leg is one more test: produce the transactions, run the scorer, then hand the
alerts it should raise to :func:`assert_api_serves_exactly`.

The API runs as users run it, ``fraudstream serve`` in a subprocess (first with the sink inside, then restarted
with ``FRAUD_API_RUN_SINK=false`` beside a standalone ``fraudstream sink``): nothing stored is lost or duplicated.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from fraudstream.kafka.clients import consumer_config, producer_config
from fraudstream.kafka.local.processes import free_port
from fraudstream.model.registry import ModelRegistry
from fraudstream.schemas import FEATURES, Alert
from fraudstream.settings import Settings

from .api_support import Service, assert_api_serves_exactly, process_env, wait_ready
from .stream_support import read_topic

T0 = datetime(2013, 9, 1, tzinfo=timezone.utc)


# ---- alerts scored by the trained model ----------------------------------------------------------------------------
def scored_alerts(settings: Settings, data_csv: Path, count: int) -> list[Alert]:
    """``count`` alerts the serving model really raises on rows of ``data_csv`` (frauds first), via FraudModel."""
    model = ModelRegistry(settings).load_serving()
    frame = pd.read_csv(data_csv)
    frame = pd.concat([frame[frame["Class"] == 1], frame[frame["Class"] == 0].head(2000)])
    scores = model.score(frame[list(FEATURES)].to_numpy(dtype=np.float32))
    flagged = frame.assign(score=scores)[model.flags(scores)].head(count)
    assert len(flagged) == count, f"the model flags only {len(flagged)} rows"
    run = uuid.uuid4().hex[:6]
    return [
        Alert(
            transaction_id=f"flow-{run}:{row.Index}",
            score=min(float(row.score), 1.0),  # ONNX sums tree votes in float32: 1.0000004 happens
            threshold=model.threshold,
            model_name=model.name,
            model_version=model.version,
            event_time=T0 + timedelta(seconds=float(row.Time)),
            scored_at=datetime.now(timezone.utc),
            partition=int(row.Index) % 3,
            offset=int(row.Index),
            amount=float(row.Amount),
            label=int(row.Class),
        )
        for row in flagged.itertuples()
    ]


class AlertProducer:
    """A transactional producer on the alerts topic, as the scorer's output side is."""

    def __init__(self, settings: Settings) -> None:
        config = producer_config(
            settings.kafka(), client_id="test-alerts", transactional_id=f"test-alerts-{uuid.uuid4().hex[:8]}"
        )
        self.topic = settings.topic_alerts
        self.producer = Producer(config)
        self.producer.init_transactions(30)

    def transaction(self, payloads: Sequence[Alert | bytes], *, commit: bool = True) -> None:
        self.producer.begin_transaction()
        for payload in payloads:
            if isinstance(payload, Alert):
                self.producer.produce(self.topic, key=payload.transaction_id, value=payload.model_dump_json())
            else:
                self.producer.produce(self.topic, key=b"junk", value=payload)
        self.producer.flush(30)
        if commit:
            self.producer.commit_transaction(30)
        else:
            self.producer.abort_transaction(30)


def committed_and_end_offsets(settings: Settings) -> tuple[dict[int, int], dict[int, int]]:
    consumer = Consumer(consumer_config(settings.kafka(), group_id=settings.sink_group_id, client_id="test-check"))
    try:
        partitions = [TopicPartition(settings.topic_alerts, p) for p in range(settings.topic_partitions)]
        committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
        return committed, ends
    finally:
        consumer.close()


# ---- the test ------------------------------------------------------------------------------------------------------
def test_alerts_on_the_topic_are_served_exactly_once_across_an_api_restart(
    settings_factory: Callable[..., Settings], trained_model: Any, services: Callable[..., Service], tmp_path: Path
) -> None:
    settings = settings_factory(
        **trained_model.overrides,
        alert_store_url=f"sqlite:///{tmp_path / 'alerts.db'}",
        api_port=free_port(),
        sink_batch_timeout_s=0.2,
    )
    base_url = f"http://127.0.0.1:{settings.api_port}"
    alerts = scored_alerts(settings, trained_model.data_csv, 45)
    first, aborted, second, later = alerts[:15], alerts[15:25], alerts[25:35], alerts[35:]
    producer = AlertProducer(settings)
    producer.transaction(first)
    producer.transaction(aborted, commit=False)
    producer.transaction([*second, b'{"transaction_id": "not an alert"}'])

    # 1. The API with its sink inside: exactly the committed alerts, the invalid message counted, no lag left.
    api = services(["serve"], process_env(settings), tmp_path / "serve-1.log")
    ready = wait_ready(base_url, api)
    assert ready["model"]["detail"] == f"{settings.model_name} v{trained_model.version}"
    assert_api_serves_exactly(base_url, first + second)
    # (the lag comes with the consumer's statistics, a second old at most: wait for the invalid one too)
    sink = _wait_for(
        lambda: httpx.get(f"{base_url}/readyz").json()["sink"], lambda s: s["lag"] == 0 and s["invalid"] == 1
    )
    assert sink["dead_lettered"] == 1
    (dead,) = read_topic(settings, settings.topic_sink_dlq, at_least=1)  # what the store cannot hold, with why
    assert dead.value() == b'{"transaction_id": "not an alert"}'
    assert dict(dead.headers())["error_kind"] == b"invalid_alert"
    assert dict(dead.headers())["source_topic"] == settings.topic_alerts.encode()
    metrics = httpx.get(f"{base_url}/metrics").text.splitlines()
    (stored,) = [float(line.split()[-1]) for line in metrics if line.startswith("fraudstream_api_alerts_stored_total")]
    assert stored >= len(first + second)  # writes: a redelivery after a rebalance would count twice
    assert httpx.get(f"{base_url}/alerts/{aborted[0].transaction_id}").status_code == 404
    assert api.stop() == 0, api.output()[-3000:]
    committed, ends = committed_and_end_offsets(settings)
    assert committed == ends  # offsets committed past every stored alert (and the transaction markers)

    # 2. Restarted as replicas run it: the API without a sink, and one standalone sink; a redelivered alert too.
    producer.transaction([*later, first[0]])
    api = services(["serve"], process_env(settings, FRAUD_API_RUN_SINK="false"), tmp_path / "serve-2.log")
    sink_process = services(["sink", "--status-interval", "1"], process_env(settings), tmp_path / "sink.log")
    assert wait_ready(base_url, api)["sink"]["detail"].startswith("not run in this process")
    assert_api_serves_exactly(base_url, first + second + later)
    assert httpx.get(f"{base_url}/alerts/stats").json()["total"] == len(first + second + later)
    assert sink_process.stop() == 0, sink_process.output()[-3000:]
    assert "stored" in sink_process.output()
    assert api.stop() == 0, api.output()[-3000:]


def test_readyz_is_503_while_the_sink_stalls_after_a_kill_9_and_200_once_it_holds_partitions_again(
    settings_factory: Callable[..., Settings], trained_model: Any, services: Callable[..., Service], tmp_path: Path
) -> None:
    # Dynamic membership (no FRAUD_SINK_INSTANCE_ID): the killed sink stays in the group until its session ends
    # (15 s here, longer than the API takes to restart), and the restarted one holds no partitions until then.
    # That stall is what /readyz must not hide.
    settings = settings_factory(
        **trained_model.overrides,
        alert_store_url=f"sqlite:///{tmp_path / 'alerts.db'}",
        api_port=free_port(),
        sink_batch_timeout_s=0.2,
        sink_session_timeout_ms=15_000,
    )
    base_url = f"http://127.0.0.1:{settings.api_port}"
    alerts = scored_alerts(settings, trained_model.data_csv, 20)
    producer = AlertProducer(settings)
    producer.transaction(alerts[:10])
    api = services(["serve"], process_env(settings), tmp_path / "serve-1.log")
    wait_ready(base_url, api)
    assert_api_serves_exactly(base_url, alerts[:10])
    api.kill()

    producer.transaction(alerts[10:])
    api = services(["serve"], process_env(settings), tmp_path / "serve-2.log")
    stalled = _wait_for(
        lambda: _readyz(base_url), lambda r: r is not None and r[0] == 503 and "no partitions" in r[1]["sink"]["detail"]
    )
    stalled_at = time.monotonic()
    ready = _wait_for(lambda: _readyz(base_url), lambda r: r is not None and r[0] == 200, timeout=60)
    stall_s = time.monotonic() - stalled_at
    assert_api_serves_exactly(base_url, alerts)
    print(  # noqa: T201 (the acceptance asks for the tally)
        f"\n[sink stall] sent {len(alerts)} alerts, served {len(alerts)}, lost 0, duplicated 0; 503 for {stall_s:.1f} s"
        f" ({stalled[1]['sink']['detail']}), then 200 ({ready[1]['sink']})"
    )
    assert stalled[1]["status"] == "not ready"
    assert ready[1]["sink"]["partitions"] == settings.topic_partitions
    assert api.stop() == 0, api.output()[-3000:]


def _readyz(base_url: str) -> tuple[int, Any] | None:
    try:
        response = httpx.get(f"{base_url}/readyz", timeout=2)
    except httpx.TransportError:
        return None
    return response.status_code, response.json()


def _wait_for(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            pytest.fail(f"still {value!r} after {timeout} s")
        time.sleep(0.5)
        value = read()
    return value
