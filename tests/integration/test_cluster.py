"""The local three-node cluster as fault tests use it: replication 3 / min.insync 2 everywhere, a node killed with
SIGKILL and restarted, a rolling restart of all three, and the helpers that find whom to kill."""

from __future__ import annotations

import logging
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import ConfigResource, ResourceType

from fraudstream.kafka.clients import consumer_config, producer_config
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.local.cluster import LocalCluster
from fraudstream.kafka.topics import admin_client, delete_topics, ensure_topics

from .cluster_support import (
    TRANSACTION_STATE,
    Deliveries,
    acks_all_producer,
    busiest_leader,
    leader_counts,
    partition_leaders,
    transaction_coordinator,
    transaction_coordinator_by_tool,
    write_acks_all,
)

log = logging.getLogger(__name__)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def topic_config(conn: KafkaConnection, topic: str, key: str) -> str:
    admin = admin_client(conn)  # keep a reference: a collected client cancels its pending requests
    [future] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)], request_timeout=15).values()
    return future.result(timeout=15)[key].value


def replicas_of(conn: KafkaConnection, topic: str) -> set[int]:
    """The replica counts of the topic's partitions (one number when they all agree)."""
    metadata = admin_client(conn).list_topics(topic, timeout=10)
    return {len(part.replicas) for part in metadata.topics[topic].partitions.values()}


def read_keys(conn: KafkaConnection, topic: str, expected: int, timeout: float = 60.0) -> list[bytes]:
    """Every key in ``topic`` from the start (read_committed), until ``expected`` records or ``timeout``."""
    consumer = Consumer(consumer_config(conn, group_id=unique("reader"), client_id=unique("reader")))
    consumer.subscribe([topic])
    keys: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(keys) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1.0):
                assert message.error() is None, message.error()
                keys.append(message.key())
    finally:
        consumer.close()
    return keys


def test_every_topic_and_the_internal_ones_have_three_replicas_and_min_isr_two(cluster3: LocalCluster) -> None:
    conn = cluster3.connection()
    topic, group, transactional_id = unique("replicated"), unique("group"), unique("txn")
    report = ensure_topics(conn, {topic: 6}, replication_factor=3, timeout=30)
    try:
        producer = Producer(producer_config(conn, client_id="txn-writer", transactional_id=transactional_id))
        producer.init_transactions(30)
        producer.begin_transaction()
        producer.produce(topic, key=b"k", value=b"v")
        producer.commit_transaction(30)
        consumer = Consumer(consumer_config(conn, group_id=group, client_id="committer"))
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        messages = []
        while not messages and time.monotonic() < deadline:
            messages = consumer.consume(num_messages=10, timeout=1.0)
        consumer.commit(message=messages[0], asynchronous=False)  # creates __consumer_offsets
        consumer.close()

        assert report.replicas == {topic: 3}
        assert replicas_of(conn, topic) == {3}
        assert topic_config(conn, topic, "min.insync.replicas") == "2"
        for internal in ("__consumer_offsets", TRANSACTION_STATE):
            assert replicas_of(conn, internal) == {3}, internal
            assert topic_config(conn, internal, "min.insync.replicas") == "2", internal
        log.info("leaders of %s: %s (node -> partitions)", topic, leader_counts(conn, topic))

        by_hash = transaction_coordinator(conn, transactional_id)
        by_kafka = transaction_coordinator_by_tool(cluster3, transactional_id)
        log.info("coordinator of %s: node %d (kafka-transactions says %d)", transactional_id, by_hash, by_kafka)
        assert by_hash == by_kafka
        assert by_hash in {node.node_id for node in cluster3.nodes}
    finally:
        delete_topics(conn, [topic])


def test_a_killed_node_leaves_acks_all_writes_working_and_rejoins_when_restarted(cluster3: LocalCluster) -> None:
    conn = cluster3.connection()
    topic = unique("kill")
    ensure_topics(conn, {topic: 6}, replication_factor=3, timeout=30)
    try:
        victim = cluster3.node(busiest_leader(conn, topic))
        led_before = leader_counts(conn, topic)[victim.node_id]
        pid = victim.kill()
        assert pid is not None
        assert not victim.status().running

        keys = [f"k-{i:04d}".encode() for i in range(600)]
        deliveries = write_acks_all(conn, topic, keys)
        log.info(
            "killed node %d (pid %d, led %d of 6 partitions): sent %d with acks=all, acknowledged %d, errors %s",
            victim.node_id,
            pid,
            led_before,
            len(keys),
            len(deliveries.acked),
            deliveries.errors,
        )
        assert deliveries.errors == []
        assert deliveries.acked == set(keys)
        assert victim.node_id not in partition_leaders(conn, topic).values()

        restarted = victim.up(timeout=120)
        cluster3.wait_in_sync(timeout=120)

        assert restarted.running
        assert restarted.pid != pid
        assert restarted.bootstrap == victim.bootstrap  # same port, same home
        metadata = admin_client(conn).list_topics(topic, timeout=10)
        assert victim.node_id in metadata.brokers
        assert all(victim.node_id in part.isrs for part in metadata.topics[topic].partitions.values())
        assert sorted(read_keys(conn, topic, len(keys))) == sorted(keys)  # nothing acknowledged was lost
    finally:
        delete_topics(conn, [topic])


def test_a_rolling_restart_keeps_acks_all_writes_flowing(cluster3: LocalCluster) -> None:
    conn = cluster3.connection()
    topic = unique("rolling")
    ensure_topics(conn, {topic: 6}, replication_factor=3, timeout=30)
    pids_before = [node.status().pid for node in cluster3.nodes]
    deliveries, stop, sent, unflushed = Deliveries(), threading.Event(), [], []

    def write() -> None:
        producer = acks_all_producer(conn, "rolling-writer")
        while not stop.is_set():
            key = f"r-{len(sent):06d}".encode()
            producer.produce(topic, key=key, value=b"v", on_delivery=deliveries)
            sent.append(key)
            producer.poll(0.01)
        unflushed.append(producer.flush(90))

    writer = threading.Thread(target=write, name="rolling-writer")
    writer.start()
    try:
        started = time.monotonic()
        cluster3.rolling_restart(timeout=120)
        took = time.monotonic() - started
    finally:
        stop.set()
        writer.join(timeout=120)
    try:
        pids_after = [node.status().pid for node in cluster3.nodes]
        log.info(
            "rolling restart in %.0f s: sent %d with acks=all, acknowledged %d, errors %s; pids %s -> %s",
            took,
            len(sent),
            len(deliveries.acked),
            deliveries.errors,
            pids_before,
            pids_after,
        )
        assert not writer.is_alive()
        assert unflushed == [0]
        assert deliveries.errors == []
        assert deliveries.acked == set(sent)
        assert all(after is not None and after != before for before, after in zip(pids_before, pids_after, strict=True))
        assert sorted(read_keys(conn, topic, len(sent))) == sorted(sent)
    finally:
        delete_topics(conn, [topic])
