from __future__ import annotations

from pathlib import Path

import pytest

from fraudstream.exceptions import ConfigurationError
from fraudstream.settings import Settings, env_name, load_settings


def test_defaults_are_usable_without_any_environment() -> None:
    settings = load_settings()
    assert settings.uses_local_broker
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert (settings.topic_transactions, settings.topic_alerts, settings.topic_dlq) == (
        "transactions",
        "fraud-alerts",
        "transactions.dlq",
    )
    assert settings.topic_partitions == 3
    assert settings.min_f1 == 0.91
    assert settings.model_uri == "models:/fraudstream-rf@production"
    assert settings.tracking_uri.startswith("sqlite:///")
    assert settings.tracking_uri.endswith(".fraudstream/mlflow.db")
    assert settings.alert_store.startswith("sqlite:///")


def test_environment_variables_use_the_fraud_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_KAFKA_BOOTSTRAP", "broker-1:9092, broker-2:9092")
    monkeypatch.setenv("FRAUD_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("FRAUD_MIN_F1", "0.8")
    monkeypatch.setenv("FRAUD_KAFKA_OPTIONS", '{"client.rack": "eu-1"}')
    settings = load_settings()
    assert not settings.uses_local_broker
    assert settings.bootstrap_servers == "broker-1:9092,broker-2:9092"
    assert settings.topic_partitions == 12
    assert settings.min_f1 == 0.8
    assert settings.kafka().as_dict()["client.rack"] == "eu-1"


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FRAUD_API_PORT=8123\n")
    assert load_settings().api_port == 8123  # the autouse fixture runs each test in tmp_path


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("FRAUD_TOPIC_PARTITIONS", "zero", "FRAUD_TOPIC_PARTITIONS"),
        ("FRAUD_TOPIC_PARTITIONS", "0", "FRAUD_TOPIC_PARTITIONS"),
        ("FRAUD_MIN_F1", "1.5", "FRAUD_MIN_F1"),
        ("FRAUD_API_PORT", "70000", "FRAUD_API_PORT"),
        ("FRAUD_KAFKA_BOOTSTRAP", "no-port-here", "FRAUD_KAFKA_BOOTSTRAP"),
        ("FRAUD_TOPIC_ALERTS", "bad topic!", "FRAUD_TOPIC_ALERTS"),
        ("FRAUD_KAFKA_OPTIONS", "not json", "FRAUD_KAFKA_OPTIONS"),
        ("FRAUD_LOG_LEVEL", "LOUD", "FRAUD_LOG_LEVEL"),
    ],
)
def test_a_bad_value_refuses_to_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=expected):
        load_settings()


def test_sasl_needs_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigurationError, match="FRAUD_KAFKA_SASL_USERNAME"):
        load_settings()


def test_secrets_never_appear_in_logs_or_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("FRAUD_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("FRAUD_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("FRAUD_KAFKA_SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("FRAUD_API_KEY", "top-secret")
    monkeypatch.setenv("FRAUD_KAFKA_OPTIONS", '{"ssl.key.password": "p4ss"}')
    settings = load_settings()
    shown = f"{settings!r} {settings.redacted()} {settings.kafka().describe()}"
    for secret in ("hunter2", "top-secret", "p4ss"):
        assert secret not in shown
    assert settings.kafka().as_dict()["sasl.password"] == "hunter2"  # the client itself gets it


def test_tracking_uri_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert load_settings().tracking_uri == "http://mlflow.internal:5000"
    assert load_settings().artifact_location is None  # a tracking server decides where artifacts go
    monkeypatch.setenv("FRAUD_MLFLOW_TRACKING_URI", "sqlite:////tmp/x.db")
    assert load_settings().tracking_uri == "sqlite:////tmp/x.db"


def test_env_name_matches_every_field() -> None:
    assert env_name("kafka_bootstrap") == "FRAUD_KAFKA_BOOTSTRAP"
    assert all(env_name(field).isupper() for field in Settings.model_fields)


def test_a_local_cluster_gives_clients_every_node_and_replicates_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAUD_KAFKA_BOOTSTRAP", raising=False)
    single = load_settings()
    cluster = load_settings(kafka_local_nodes=3, kafka_local_port=29092)

    assert (single.kafka_local_nodes, single.topic_replication_factor) == (1, 1)
    assert cluster.kafka_local_ports == [29092, 29093, 29094]
    assert cluster.bootstrap_servers == "127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094"
    assert cluster.topic_replication_factor == 3
    assert load_settings(kafka_local_nodes=5).topic_replication_factor == 3
    assert load_settings(kafka_local_nodes=3, topic_replication_factor=2).topic_replication_factor == 2


def test_an_external_cluster_keeps_its_own_default_replication() -> None:
    settings = load_settings(kafka_bootstrap="kafka-1:9092", kafka_local_nodes=3)

    assert settings.topic_replication_factor is None  # CreateTopics asks for the cluster's default.replication.factor
    assert settings.bootstrap_servers == "kafka-1:9092"


def test_a_local_cluster_must_fit_below_the_last_port() -> None:
    with pytest.raises(ConfigurationError, match=r"FRAUD_KAFKA_LOCAL_NODES=3 .* up to 65536"):
        load_settings(kafka_local_nodes=3, kafka_local_port=65534)
