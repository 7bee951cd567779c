"""One validated configuration object per process, read from ``FRAUD_*`` variables and an optional ``.env``.

Build it at the entry point with :func:`load_settings`, then pass it down. A bad value refuses to start with
a :class:`~fraudstream.exceptions.ConfigurationError` that names the variable at fault.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from fraudstream.exceptions import ConfigurationError
from fraudstream.kafka.connection import KafkaConnection

ENV_PREFIX = "FRAUD_"
DEFAULT_STATE_DIR = Path(".fraudstream")

Port = Annotated[int, Field(ge=1, le=65535)]
TopicName = Annotated[str, Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")]
GroupId = Annotated[str, Field(min_length=1, max_length=255)]
PositiveSeconds = Annotated[float, Field(gt=0)]


class Settings(BaseSettings):
    """Every tunable of fraudstream. The environment variable is ``FRAUD_`` + the field name in capitals."""

    _derived: dict[str, str | None] = PrivateAttr(default_factory=dict)

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        validate_default=True,
    )

    # ---- local state ---------------------------------------------------------------------------------------
    state_dir: Path = Field(DEFAULT_STATE_DIR, description="Folder for local state: MLflow store, alert DB, broker.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level of every process.")
    log_format: Literal["text", "json"] = Field(
        "text", description="text for people, json (one object a line) for machines."
    )

    # ---- Kafka ---------------------------------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        None, description="Bootstrap servers of an existing cluster. Unset: the local broker on 127.0.0.1."
    )
    kafka_local_port: Port = Field(9092, description="Port of the local broker started by `fraudstream kafka up`.")
    kafka_local_nodes: int = Field(
        1,
        ge=1,
        le=5,
        description="Nodes of the local Kafka (`fraudstream kafka up`): 3 runs a replicated cluster on one machine, "
        "node i on FRAUD_KAFKA_LOCAL_PORT + i - 1.",
    )
    kafka_cache_dir: Path = Field(
        Path.home() / ".cache" / "fraudstream" / "kafka",
        description="Where the local broker's jars are cached after the first download.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="librdkafka security.protocol of a real cluster."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism (with a SASL_* protocol)."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (never logged or shown).")
    kafka_ssl_ca_location: str | None = Field(None, description="CA certificate file for SSL.")
    kafka_options: dict[str, str] = Field(
        default_factory=dict,
        repr=False,  # values may hold secrets (ssl.key.password, ...)
        description='Extra librdkafka options as JSON, e.g. {"client.rack": "eu-1"}; passed through as given.',
    )
    topic_transactions: TopicName = Field("transactions", description="Topic the replay writes and the scorer reads.")
    topic_alerts: TopicName = Field("fraud-alerts", description="Topic of committed alerts (read it read_committed).")
    topic_dlq: TopicName = Field("transactions.dlq", description="Dead letters: bad messages, reason in a header.")
    topic_feedback: TopicName = Field(
        "fraud-feedback", description="Compacted topic of analysts' verdicts, keyed by transaction id."
    )
    topic_sink_dlq: TopicName = Field(
        "fraud-alerts.dlq",
        description="The alert sink's dead letters: alerts the store cannot hold (invalid, unstorable time, "
        "refused row), with the reason in a header.",
    )
    topic_monitoring: TopicName = Field(
        "fraud-monitoring",
        description="Topic of the scorer's monitoring windows (one record per model version and window).",
    )
    topic_monitoring_state: TopicName = Field(
        "fraud-monitoring-state",
        description="Compacted topic of each scorer replica's open monitoring window, written in every batch's "
        "transaction, so a restarted replica resumes its window (neither lost nor repeated).",
    )
    topic_partitions: int = Field(3, ge=1, le=1000, description="Partitions of topics fraudstream creates.")
    topic_replication_factor: int | None = Field(
        None,
        ge=1,
        le=10,
        description="Replicas of topics fraudstream creates (min.insync.replicas: 2 from 3 replicas on, else 1). "
        "Unset: the local Kafka's node count, at most 3; with FRAUD_KAFKA_BOOTSTRAP, the cluster's default.",
    )

    # ---- replay --------------------------------------------------------------------------------------------
    replay_transactional: bool = Field(
        False,
        description="Replay in Kafka transactions (`fraudstream replay --transactional`): rows count as delivered "
        "when their transaction commits, and none is written twice, even across a partition leader's change "
        "(an idempotent producer alone can duplicate a record then: librdkafka #4953). Readers must read "
        "read_committed (the scorer does).",
    )
    replay_transactional_id: str | None = Field(
        None,
        min_length=1,
        description="transactional.id of the transactional replay: a restarted replay fences its predecessor and "
        "settles its open transaction. Unset: fraudstream-replay@HOST:TOPIC (this host, FRAUD_TOPIC_TRANSACTIONS).",
    )
    replay_transaction_rows: int = Field(
        500, ge=1, le=100_000, description="The transactional replay commits every this many rows..."
    )
    replay_transaction_ms: int = Field(
        100, ge=1, le=60_000, description="...or this long after a transaction's first row, whichever comes first."
    )

    # ---- scorer --------------------------------------------------------------------------------------------
    scorer_group_id: GroupId = Field("fraudstream-scorer", description="Consumer group the scorers share.")
    scorer_batch_size: int = Field(
        5000,
        ge=1,
        le=100_000,
        description="Most messages scored in one transaction. Larger batches pay the ~10 ms transaction cost less "
        "often under load; at lower rates batches close sooner (see FRAUD_SCORER_BATCH_CLOSE_WHEN_IDLE), so latency "
        "does not grow.",
    )
    scorer_batch_timeout_s: PositiveSeconds = Field(
        0.2,
        description="Longest wait for a batch: for its first message when batches close when idle, else to fill it.",
    )
    scorer_batch_close_when_idle: bool = Field(
        True,
        description="Close a batch as soon as the consumer has nothing more buffered (a transaction then carries "
        "what arrived since the last one); false: only when full or at FRAUD_SCORER_BATCH_TIMEOUT_S.",
    )
    scorer_batch_linger_s: float = Field(
        0.01,
        ge=0,
        le=10,
        description="With batches closing when idle: how much longer to wait for more messages once the buffer is "
        "empty (fewer, larger transactions at low rates). The wait mostly overlaps the previous commit; 0 closes at "
        "once, which at 2,000 tx/s made more, smaller transactions and doubled the alerts' p99 (benchmarks/README.md).",
    )
    scorer_commit_overlap: bool = Field(
        True,
        description="Commit a batch's transaction in a second thread while the next batch is consumed and scored "
        "(still one transaction at a time); false: commit in the loop thread.",
    )
    scorer_score_chunk: int = Field(
        0,
        ge=0,
        le=100_000,
        description="0 (the default) decodes and scores each batch in one piece. N > 0: N rows at a time, the model "
        "scoring one chunk in a thread of its own (ONNX Runtime releases the GIL) while the loop thread decodes the "
        "next: 30% faster in-process, but through Kafka, with the broker on the same 2 cores, no better than one "
        "piece (8 of 16 paired rounds; benchmarks/README.md). Batches under 2N rows are one piece anyway.",
    )
    scorer_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Scorer processes `fraudstream score` runs, each a replica of its own in the group (CPython runs "
        "one thread of Python at a time: one process uses one core). Worker i gets the transactional.id "
        "FRAUD_SCORER_TRANSACTIONAL_ID-i (when set) and the metrics port FRAUD_SCORER_METRICS_PORT + i (when not 0). "
        "On our 2 cores, the broker on them too, 2 workers gained little: 0.87-1.03x of one process on 3 partitions "
        "(split 2:1), 1.13x on 4 (benchmarks/README.md, workers); it pays with more cores. Workers beyond the "
        "partitions idle.",
    )
    scorer_explain_process: bool = Field(
        True,
        description="Compute the alerts' reason codes (exact TreeSHAP: shap's C++ holds the GIL, up to "
        "FRAUD_EXPLAIN_EXACT_BUDGET_MS a batch) in a worker process of their own, collected by the commit thread "
        "while the loop thread decodes the next batch: 82,369 against 70,862 tx/s in the loop thread (6 of 6 paired "
        "rounds, benchmarks/README.md). false: in the loop thread. The worker is spawned: a program that embeds the "
        "scorer needs an `if __name__ == '__main__':` guard.",
    )
    scorer_metrics_port: int = Field(
        9464,
        ge=0,
        le=65535,
        description="Port of the scorer's /metrics and /readyz (worker i: this + i); 0 turns them off.",
    )
    scorer_metrics_host: str = Field(
        "127.0.0.1", min_length=1, description="Interface of the scorer's metrics port (0.0.0.0 for all)."
    )
    monitor_enabled: bool = Field(True, description="Measure drift and live metrics per window in the scorer.")
    monitor_window_rows: int = Field(
        20_000, ge=100, le=10_000_000, description="A monitoring window closes after this many scored transactions..."
    )
    monitor_window_s: PositiveSeconds = Field(60.0, description="...or this long after it opened, whichever first.")
    monitor_psi_moderate: float = Field(0.1, gt=0.0, description="PSI from which a shift is reported as moderate.")
    monitor_psi_drift: float = Field(
        0.25, gt=0.0, description="PSI above which a feature (or the score) has drifted: status drift."
    )
    monitor_degraded_windows: int = Field(
        3, ge=1, le=1000, description="Windows the live F1 is pooled over; below FRAUD_MIN_F1: status degraded."
    )
    monitor_challenger: bool = Field(
        True,
        description="When the registered model has the challenger alias, score each batch with it too (no alerts) "
        "and monitor it on the same windows (monitoring on only).",
    )
    monitor_to_mlflow: bool = Field(
        True,
        description="The API logs each stored monitoring window as live_f1, live_precision, live_recall, score_psi "
        "and max_feature_psi (step = the version's window number) on the version's MLflow run; one writer at a "
        "time across API replicas sharing a store (a lease in it).",
    )
    model_poll_interval_s: PositiveSeconds = Field(10.0, description="How often the registry alias is checked.")
    scorer_transactional_id: str | None = Field(
        None,
        min_length=1,
        description="Stable id of this scorer replica (e.g. the pod name): its transactional.id, so a restarted "
        "replica fences its crashed predecessor at once, and its group.instance.id (static membership), so it "
        "gets its partitions back at once. Unset: a transactional.id from the group, host and process id, and "
        "dynamic membership (a restart after a crash waits for the session timeout).",
    )
    scorer_transaction_timeout_ms: int = Field(
        20_000,
        ge=1000,
        le=900_000,
        description="How long an abandoned scorer transaction may block readers, and the replica that takes over "
        "its partitions (on a combined broker-and-controller node, 10 s with a 1 s broker sweep stopped a scorer "
        "after a 60 s outage in 4 of 4 runs, 20 s with Kafka's 10 s sweep in 3 of 11: see the README).",
    )
    scorer_session_timeout_ms: int = Field(
        10_000,
        ge=1000,
        le=3_600_000,
        description="How long the group waits for a silent scorer (killed, or stopped: a static member does not "
        "leave) before its partitions move to the others. The broker's group.min.session.timeout.ms (6 s by "
        "default) is the floor.",
    )
    scorer_status_interval_s: PositiveSeconds = Field(10.0, description="Seconds between the scorer's status lines.")

    # ---- reason codes -------------------------------------------------------------------------------------
    explain_enabled: bool = Field(
        True, description="Attach reason codes to alerts and fraudulent /predict answers (loads the forest too)."
    )
    explain_top_k: int = Field(3, ge=1, le=30, description="Reasons per explanation: the features that raised it most.")
    explain_exact_budget_ms: float = Field(
        8.0,
        ge=0,
        le=60_000,
        description="Time for exact TreeSHAP per scorer batch or API call (~4 ms a row for 100 trees); the rows "
        "beyond it get the path approximation (Saabas, ~0.01 ms a row). Each explanation names its method.",
    )

    # ---- MLflow and the model gate -------------------------------------------------------------------------
    mlflow_tracking_uri: str | None = Field(
        None, description="Tracking URI. Unset: MLFLOW_TRACKING_URI, else a SQLite file in the state folder."
    )
    mlflow_artifact_location: str | None = Field(
        None, description="Artifact root for a new experiment. Unset with a local store: <state_dir>/mlartifacts."
    )
    mlflow_experiment: str = Field("fraudstream", min_length=1, description="MLflow experiment of training runs.")
    model_name: str = Field(
        "fraudstream-rf", min_length=1, pattern=r"^[A-Za-z0-9._-]+$", description="Registered model name."
    )
    model_alias: str = Field(
        "production", min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$", description="Registry alias that serves."
    )
    model_challenger_alias: str = Field(
        "challenger",
        min_length=1,
        pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$",
        description="Registry alias of the version scored in production's shadow (see FRAUD_MONITOR_CHALLENGER): "
        "`fraudstream train --as-challenger` sets it, `fraudstream model promote` moves the serving alias to it.",
    )
    min_f1: float = Field(0.91, ge=0.0, le=1.0, description="Gate: a model registers only when test F1 >= this.")
    gate_rule: Literal["point", "ci_low"] = Field(
        "point",
        description="What must reach min_f1: point (the holdout F1) or ci_low (the lower bound of its 95% interval).",
    )
    min_holdout_frauds: int = Field(
        30,
        ge=1,
        description="Fewest frauds a holdout (or the rows shared with production) must hold for the trainer to "
        "decide on it; below it training stops, or the comparison with production is refused.",
    )

    # ---- data ----------------------------------------------------------------------------------------------
    data_path: Path = Field(Path("data") / "creditcard.csv", description="The ULB creditcard.csv, when present.")

    # ---- API and alert store -------------------------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="Interface the API listens on (0.0.0.0 for all).")
    api_port: Port = Field(8000, description="Port of the API.")
    api_key: SecretStr | None = Field(None, description="When set, every route but health needs this key.")
    api_max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body accepted.")
    api_body_timeout_s: PositiveSeconds = Field(
        10.0, description="Longest wait for a whole request body to arrive; answered 408 after it."
    )
    api_max_batch: int = Field(1000, ge=1, le=100_000, description="Most transactions in one /predict/batch call.")
    api_run_sink: bool = Field(True, description="Run the fraud-alerts sink inside the API process.")
    sink_group_id: GroupId = Field("fraudstream-alert-sink", description="Consumer group of the alert sink(s).")
    sink_instance_id: str | None = Field(
        None,
        min_length=1,
        max_length=249,
        description="group.instance.id of this sink (static membership, e.g. the pod name; unique per replica): "
        "a restarted sink gets its partitions back at once. Unset: dynamic membership.",
    )
    sink_session_timeout_ms: int = Field(
        10_000,
        ge=1000,
        le=3_600_000,
        description="How long the sink group waits for a silent sink before its partitions move to the others.",
    )
    sink_batch_size: int = Field(500, ge=1, le=100_000, description="Most alerts the sink stores in one write.")
    sink_batch_timeout_s: PositiveSeconds = Field(0.5, description="Longest wait of the sink to fill a batch.")
    api_ready_max_sink_lag: int | None = Field(
        None, ge=0, description="/readyz fails when the in-process sink lags more alerts than this. Unset: no limit."
    )
    feedback_publish_timeout_s: PositiveSeconds = Field(
        5.0,
        description="How long POST /alerts/{id}/feedback waits for fraud-feedback to take the verdict; a verdict "
        "stored but not yet produced is retried in the background.",
    )
    alert_store_url: str | None = Field(
        None, description="SQLAlchemy URL of the alert store. Unset: a SQLite file in the state folder."
    )

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        servers = [part.strip() for part in value.split(",") if part.strip()]
        for server in servers:
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"expected host:port[,host:port...], got {server!r}")
        return ",".join(servers)

    def model_post_init(self, context: Any, /) -> None:
        """Fix the derived locations now (absolute paths), so later changes of cwd or environment cannot move them."""
        state = self.state_dir.resolve()
        tracking = (
            self.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{state / 'mlflow.db'}"
        )
        artifacts = self.mlflow_artifact_location
        if artifacts is None and tracking.startswith(("sqlite:", "file:", "/")):
            artifacts = (state / "mlartifacts").as_uri()
        self._derived = {
            "tracking_uri": tracking,
            "artifact_location": artifacts,
            "alert_store": self.alert_store_url or f"sqlite:///{state / 'alerts.db'}",
        }

    @model_validator(mode="after")
    def _local_cluster_fits(self) -> Settings:
        last = self.kafka_local_port + self.kafka_local_nodes - 1
        if last > 65535:
            raise ValueError(
                f"FRAUD_KAFKA_LOCAL_NODES={self.kafka_local_nodes} nodes from FRAUD_KAFKA_LOCAL_PORT="
                f"{self.kafka_local_port} need ports up to {last}, beyond 65535"
            )
        if self.topic_replication_factor is None and self.uses_local_broker:
            self.topic_replication_factor = min(self.kafka_local_nodes, 3)
        return self

    @model_validator(mode="after")
    def _sasl_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "SASL needs FRAUD_KAFKA_SASL_MECHANISM, FRAUD_KAFKA_SASL_USERNAME and FRAUD_KAFKA_SASL_PASSWORD"
            )
        return self

    # ---- derived values ------------------------------------------------------------------------------------
    @property
    def uses_local_broker(self) -> bool:
        """True when no cluster was named, so the local launcher's broker is the one to use."""
        return self.kafka_bootstrap is None

    @property
    def replay_transaction_id(self) -> str:
        """FRAUD_REPLAY_TRANSACTIONAL_ID, else ``fraudstream-replay@<host>:<transactions topic>``: one replay per
        host and topic (a second one fences the first)."""
        return self.replay_transactional_id or f"fraudstream-replay@{socket.gethostname()}:{self.topic_transactions}"

    @property
    def kafka_local_ports(self) -> list[int]:
        """The client ports of the local Kafka's nodes: FRAUD_KAFKA_LOCAL_PORT and the next ones."""
        return [self.kafka_local_port + i for i in range(self.kafka_local_nodes)]

    @property
    def bootstrap_servers(self) -> str:
        """FRAUD_KAFKA_BOOTSTRAP, else every node of the local Kafka (so a client survives any one of them down)."""
        return self.kafka_bootstrap or ",".join(f"127.0.0.1:{port}" for port in self.kafka_local_ports)

    def kafka(self) -> KafkaConnection:
        """The typed connection options every Kafka client of this process is built from."""
        return KafkaConnection(
            bootstrap_servers=self.bootstrap_servers,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_ca_location=self.kafka_ssl_ca_location,
            extra=self.kafka_options,
        )

    @property
    def tracking_uri(self) -> str:
        """FRAUD_MLFLOW_TRACKING_URI, else MLflow's own MLFLOW_TRACKING_URI, else SQLite in the state folder.

        Resolved once, when the settings are built: MLflow exports MLFLOW_TRACKING_URI whenever a process calls
        ``mlflow.set_tracking_uri``, so reading the environment later could silently follow another store.
        """
        return self._derived["tracking_uri"]  # type: ignore[return-value]

    @property
    def artifact_location(self) -> str | None:
        """Where a new experiment keeps its artifacts; None lets a tracking server decide."""
        return self._derived["artifact_location"]

    @property
    def alert_store(self) -> str:
        return self._derived["alert_store"]  # type: ignore[return-value]

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@{self.model_alias}"

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict safe to log: secrets stay masked by SecretStr, option values too."""
        values = self.model_dump()
        values["kafka_options"] = {key: "**********" for key in self.kafka_options}
        return values


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; raise ConfigurationError naming each variable at fault."""
    try:
        return Settings(**overrides)
    except SettingsError as exc:  # a value the source could not even parse, e.g. malformed JSON
        match = re.search(r'field "(\w+)"', str(exc))
        where = env_name(match.group(1)) if match else "settings"
        raise ConfigurationError(
            f"invalid configuration:\n  {where}: cannot parse the value ({exc.__cause__})"
        ) from exc
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) if error["loc"] else ""
            where = env_name(field.split(".")[0]) if field else "settings"
            problems.append(f"{where}: {error['msg']}")
        raise ConfigurationError("invalid configuration:\n  " + "\n  ".join(problems)) from exc
