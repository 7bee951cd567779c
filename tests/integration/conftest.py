"""A real Kafka broker for every integration test, found once per session, and factories of fresh topics.

Order: FRAUD_KAFKA_BOOTSTRAP (an existing cluster), else a Docker engine (testcontainers' Kafka), else the local
launcher on a free port with its own home folder. Every test here is marked ``integration``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fraudstream.exceptions import BrokerError
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.local.broker import LocalBroker
from fraudstream.kafka.local.processes import free_port
from fraudstream.kafka.topics import delete_topics, ensure_topics, standard_topics
from fraudstream.settings import Settings, load_settings

from .api_support import Service

# ---- BEGIN three-node cluster (h-cluster): session fixtures `kafka_cluster3` / `cluster3`, started only on request
from .cluster_support import cluster3, kafka_cluster3  # noqa: F401  (pytest finds fixtures imported here)

# ---- END three-node cluster

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
_CONTAINER_IMAGE = "confluentinc/cp-kafka:7.6.0"

NewTopicFactory = Callable[..., str]
SettingsFactory = Callable[..., Settings]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``integration`` (select or skip them with ``-m``)."""
    for item in items:
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


def unique_name(prefix: str) -> str:
    """A topic or group name no other test (or earlier run on a shared cluster) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def kafka_cache_dir() -> Path:
    """Where the local broker's jars are cached: the developer's FRAUD_KAFKA_CACHE_DIR, else the default."""
    configured = os.environ.get("FRAUD_KAFKA_CACHE_DIR")
    return Path(configured) if configured else Path(Settings.model_fields["kafka_cache_dir"].default)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory, kafka_cache_dir: Path) -> Iterator[str]:
    """Bootstrap address of the session's real broker (see the module docstring for where it comes from)."""
    configured = os.environ.get("FRAUD_KAFKA_BOOTSTRAP")
    if configured:
        log.info("integration tests use the cluster at %s (FRAUD_KAFKA_BOOTSTRAP)", configured)
        yield configured
    elif _docker_answers():
        yield from _container_broker()
    else:
        yield from _local_broker(tmp_path_factory.mktemp("kafka-home"), kafka_cache_dir)


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Iterator[NewTopicFactory]:
    """Factory: ``new_topic(prefix="test", partitions=3) -> name`` creates a uniquely named topic (deleted after)."""
    conn = KafkaConnection(bootstrap_servers=kafka_bootstrap)
    created: list[str] = []

    def make(prefix: str = "test", partitions: int = 3) -> str:
        name = unique_name(prefix)
        ensure_topics(conn, {name: partitions}, timeout=30)
        created.append(name)
        return name

    yield make
    with contextlib.suppress(BrokerError):
        delete_topics(conn, created)


@pytest.fixture
def settings_factory(kafka_bootstrap: str, tmp_path: Path) -> Iterator[SettingsFactory]:
    """Factory: ``settings_factory(**overrides) -> Settings`` pointing at the session broker.

    Every call in one test shares the same unique topics (created with 3 partitions), group ids and state folder,
    so a test's producer, scorer and sink settings see one pipeline. The scorer's metrics port is off (0) unless
    overridden, so concurrent test runs do not fight over it.
    """
    suffix = uuid.uuid4().hex[:10]
    defaults: dict[str, Any] = {
        "kafka_bootstrap": kafka_bootstrap,
        "topic_transactions": f"transactions-{suffix}",
        "topic_alerts": f"fraud-alerts-{suffix}",
        "topic_dlq": f"transactions.dlq-{suffix}",
        "topic_feedback": f"fraud-feedback-{suffix}",
        "topic_monitoring": f"fraud-monitoring-{suffix}",
        "topic_monitoring_state": f"fraud-monitoring-state-{suffix}",
        "topic_partitions": 3,
        "scorer_group_id": f"scorer-{suffix}",
        "sink_group_id": f"alert-sink-{suffix}",
        "scorer_metrics_port": 0,
        # the session's one model version is shared: only the test of the MLflow writer writes live_* on its run
        "monitor_to_mlflow": False,
        "state_dir": tmp_path / "state",
    }
    created: list[tuple[KafkaConnection, list[str]]] = []
    known: set[str] = set()

    def make(**overrides: Any) -> Settings:
        settings = load_settings(**{**defaults, **overrides})
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        wanted = {name: count for name, count in standard_topics(settings).items() if name not in known}
        if wanted:
            conn = settings.kafka()
            ensure_topics(conn, wanted, replication_factor=settings.topic_replication_factor, timeout=30)
            created.append((conn, list(wanted)))
            known.update(wanted)
        return settings

    yield make
    for conn, names in created:
        with contextlib.suppress(BrokerError, concurrent.futures.TimeoutError):
            delete_topics(conn, names, timeout=10)


# ---- where the session's broker comes from ----------------------------------------------------------------------
def _docker_answers() -> bool:
    """True when a Docker engine answers a ping within a couple of seconds."""
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
    except Exception:  # the SDK raises several types when no engine is configured
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def _container_broker() -> Iterator[str]:
    from testcontainers.community.kafka import KafkaContainer

    container = (
        KafkaContainer(_CONTAINER_IMAGE)
        .with_kraft()
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    )
    with container:
        bootstrap = container.get_bootstrap_server()
        log.info("integration tests use a Kafka container at %s", bootstrap)
        yield bootstrap


def _local_broker(home: Path, cache_dir: Path) -> Iterator[str]:
    broker = LocalBroker(port=free_port(), home=home, cache_dir=cache_dir)
    try:
        status = broker.up(timeout=120)
        log.info("integration tests use a local broker at %s (log: %s)", status.bootstrap, status.log_file)
        yield status.bootstrap
    finally:
        broker.down()


# ---- a broker of the test's own, for the fault tests (kill -9, restart) ------------------------------------------
@pytest.fixture
def fault_broker(tmp_path: Path, kafka_cache_dir: Path) -> Iterator[LocalBroker]:
    """A local broker on a free port with its own home, for a test that kills it (never the session broker).

    Kill it with ``os.kill(broker.status().pid, SIGKILL)`` (the broker process only: its KRaft controller keeps
    running); ``broker.up()`` starts it again on the same home and port, with its topics, offsets and transactions.
    Broker and controller are stopped at the end of the test.
    """
    broker = LocalBroker(port=free_port(), home=tmp_path / "fault-broker", cache_dir=kafka_cache_dir)
    broker.up(timeout=180)
    try:
        yield broker
    finally:
        broker.down()


# ---- services run as processes (the API, the sink) -------------------------------------------------------------
@pytest.fixture
def services() -> Iterator[Callable[..., Service]]:
    """Start `fraudstream ...` processes; each is stopped at the end of the test, even a failed one."""
    started: list[Service] = []

    def start(args: list[str], env: dict[str, str], log_file: Path) -> Service:
        service = Service(args, env, log_file)
        started.append(service)
        return service

    yield start
    for service in started:  # a failed test must not leave servers running
        service.stop(timeout=10)


@pytest.fixture
def stream(trained_model: Any, tmp_path: Path) -> Path:
    """The stream tests' input: 2,000 shuffled rows (100 frauds) of the data the session's model was trained on."""
    from .stream_support import stream_csv

    return stream_csv(trained_model.data_csv, tmp_path)
