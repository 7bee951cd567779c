"""Kafka connection options and client configurations (no broker needed)."""

from __future__ import annotations

import logging
import time

import pytest
from pydantic import SecretStr

from fraudstream.exceptions import BrokerError, ConfigurationError
from fraudstream.kafka.clients import admin_config, consumer_config, producer_config
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.local.processes import free_port
from fraudstream.kafka.topics import ensure_topics, probe_cluster, standard_topics
from fraudstream.settings import load_settings

SECRET = "s3cret-value"


@pytest.fixture
def sasl() -> KafkaConnection:
    return KafkaConnection(
        bootstrap_servers="kafka-1:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="scorer",
        sasl_password=SecretStr(SECRET),
        ssl_ca_location="/etc/ca.pem",
        extra={"ssl.key.password": SECRET, "client.rack": "eu-1"},
    )


def test_as_dict_yields_librdkafka_keys_with_secrets_in_clear(sasl: KafkaConnection) -> None:
    assert sasl.as_dict() == {
        "bootstrap.servers": "kafka-1:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "scorer",
        "sasl.password": SECRET,
        "ssl.ca.location": "/etc/ca.pem",
        "ssl.key.password": SECRET,
        "client.rack": "eu-1",
    }


def test_describe_masks_every_secret(sasl: KafkaConnection) -> None:
    described = sasl.describe()

    assert SECRET not in repr(described)
    assert described["sasl.password"] == "**********"
    assert described["ssl.key.password"] == "**********"
    assert described["sasl.username"] == "scorer"
    assert SECRET not in repr(sasl.sasl_password)


def test_plaintext_connection_has_only_the_basics() -> None:
    assert KafkaConnection(bootstrap_servers="127.0.0.1:9092").as_dict() == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "PLAINTEXT",
    }


def test_producer_is_idempotent_and_transactional_only_on_request(sasl: KafkaConnection) -> None:
    plain = producer_config(sasl, client_id="producer")
    transactional = producer_config(sasl, client_id="scorer", transactional_id="scorer-0", linger_ms=1)

    assert plain["enable.idempotence"] is True
    assert plain["acks"] == "all"
    assert "transactional.id" not in plain
    assert transactional["transactional.id"] == "scorer-0"
    assert transactional["linger_ms"] == 1
    assert plain["sasl.password"] == SECRET  # the connection options reach the client
    assert plain["client.id"].startswith("producer@")


def test_consumer_reads_committed_and_commits_explicitly(sasl: KafkaConnection) -> None:
    config = consumer_config(sasl, group_id="scorer", client_id="scorer")
    uncommitted = consumer_config(sasl, group_id="g", client_id="c", read_committed=False)

    assert config["isolation.level"] == "read_committed"
    assert config["enable.auto.commit"] is False
    assert config["enable.auto.offset.store"] is False
    assert config["group.id"] == "scorer"
    assert config["auto.offset.reset"] == "earliest"
    assert uncommitted["isolation.level"] == "read_uncommitted"


def test_every_client_logs_through_python_logging(sasl: KafkaConnection) -> None:
    for config in (
        admin_config(sasl),
        producer_config(sasl, client_id="p"),
        consumer_config(sasl, group_id="g", client_id="c"),
    ):
        assert isinstance(config["logger"], logging.Logger)


def test_settings_build_a_sasl_connection() -> None:
    settings = load_settings(
        kafka_bootstrap="kafka-1:9093,kafka-2:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="svc",
        kafka_sasl_password=SECRET,
    )
    conn = settings.kafka()

    assert conn.as_dict()["bootstrap.servers"] == "kafka-1:9093,kafka-2:9093"
    assert conn.as_dict()["sasl.password"] == SECRET
    assert conn.describe()["sasl.password"] == "**********"
    assert SECRET not in repr(settings.redacted())


def test_settings_refuse_incomplete_sasl() -> None:
    with pytest.raises(ConfigurationError, match="FRAUD_KAFKA_SASL_PASSWORD"):
        load_settings(kafka_bootstrap="k:9093", kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="PLAIN")


def test_standard_topics_follow_the_settings() -> None:
    settings = load_settings(topic_transactions="tx", topic_alerts="alerts", topic_dlq="tx.dlq", topic_partitions=6)

    assert standard_topics(settings) == {
        "tx": 6,
        "alerts": 6,
        "tx.dlq": 6,
        "fraud-alerts.dlq": 6,
        "fraud-monitoring": 6,
    }


def test_an_unreachable_cluster_is_named_in_the_error() -> None:
    address = f"127.0.0.1:{free_port()}"
    conn = KafkaConnection(bootstrap_servers=address)
    started = time.monotonic()

    with pytest.raises(BrokerError, match=address):
        probe_cluster(conn, timeout=1)
    with pytest.raises(BrokerError, match="fraudstream kafka up"):
        ensure_topics(conn, ["t"], timeout=1)
    assert time.monotonic() - started < 10


def test_a_consumer_is_a_static_member_with_an_instance_id_and_every_client_reconnects_within_a_second(
    sasl: KafkaConnection,
) -> None:
    from fraudstream.kafka.outage import ClientEvents, OutageLog

    events = ClientEvents(OutageLog("test"))
    config = consumer_config(
        sasl, group_id="g", client_id="c", group_instance_id="scorer-0", session_timeout_ms=8000, events=events
    )
    assert (config["group.instance.id"], config["session.timeout.ms"]) == ("scorer-0", 8000)
    assert config["heartbeat.interval.ms"] == 1333  # a sixth of the session: survivors hear of a death soon
    assert config["logger"] is events
    assert config["error_cb"] == events.error
    assert config["reconnect.backoff.max.ms"] == 1000
    assert "group.instance.id" not in consumer_config(sasl, group_id="g", client_id="c")
    assert producer_config(sasl, client_id="p")["message.max.bytes"] == 1_000_000
