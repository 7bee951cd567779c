"""Wiring a scorer: the transactional.id rule, and that every part can be swapped for a fake."""

from __future__ import annotations

import os
import socket
import threading

from fraudstream.model.watcher import ModelWatcher
from fraudstream.settings import load_settings
from scorer.bootstrap import bootstrap, transactional_id

from .fakes import FakeConsumer, FakeMessage, FakeProducer, transaction_bytes
from .test_loop import FakeRegistry


def test_the_transactional_id_is_the_configured_one_else_unique_to_the_process() -> None:
    assert transactional_id(load_settings(scorer_transactional_id="scorer-0")) == "scorer-0"
    derived = transactional_id(load_settings(scorer_group_id="g1"))
    assert derived == f"g1-{socket.gethostname()}-{os.getpid()}"


def test_bootstrap_runs_with_fake_parts_and_the_configured_topics() -> None:
    settings = load_settings(
        topic_transactions="tx",
        topic_alerts="al",
        topic_dlq="dl",
        scorer_metrics_port=0,
        scorer_batch_size=10,
        monitor_enabled=False,
    )
    stop = threading.Event()
    consumer, producer = FakeConsumer(), FakeProducer()
    consumer.batches.append([FakeMessage(transaction_bytes(0, 900.0)), FakeMessage(b"bad", _offset=1)])
    consumer.on_empty = stop.set
    scorer = bootstrap(
        settings,
        stop=stop,
        consumer=consumer,
        producer=producer,
        watcher=ModelWatcher(FakeRegistry("4"), interval_s=60),
        create_topics=False,
    )
    status = scorer.run()
    assert consumer.subscribed == ["tx"]
    assert [topic for topic, _ in producer.produced] == ["al", "dl"]
    assert (status.consumed, status.alerts, status.dead_letters, status.model_version) == (2, 1, 1, "4")
