"""Scoring on the three-node cluster (replication 3, min.insync.replicas 2) through the faults an operator meets:
``kill -9`` of the node that leads the most ``transactions`` partitions (then its return), ``kill -9`` of the
transaction coordinator of the scorer's ``transactional.id``, a rolling restart of all three nodes, and ``kill -9``
of one of two scorer replicas. Each runs real `fraudstream score` processes on the real MLflow store, with a paced
transactional replay flowing (an idempotent one alone can write a row twice while a leader changes: librdkafka
#4953, issue #9), and shows: every replayed row on the input exactly once (read_committed), every expected alert
exactly once (read_committed), every replayed row delivered (committed), the scorer group's committed offsets at
the input's end offsets (which count the replay's commit markers too), and no partition of the stream waiting
more than 15 s between two committed transactions (measured on the group's committed offsets, see
:mod:`tests.integration.progress_support`).

The four share the session's cluster (``cluster3`` restores every node and waits for the replicas to catch up
before each) and one file of 12,000 rows, replayed until a few seconds after the fault; each test has its own
topics, group and transactional ids.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from confluent_kafka import KafkaException, Producer

from fraudstream.exceptions import BrokerError
from fraudstream.kafka.clients import heartbeat_interval_ms, producer_config
from fraudstream.kafka.connection import KafkaConnection
from fraudstream.kafka.local.processes import free_port
from fraudstream.kafka.topics import admin_client, delete_topics, ensure_topics, standard_topics
from fraudstream.settings import Settings, load_settings
from producer.bootstrap import replay
from producer.pacing import Pace
from producer.replay import ReplayOptions, ReplayStats

from .cluster_support import (
    TRANSACTION_STATE,
    busiest_leader,
    leader_counts,
    partition_leaders,
    transaction_coordinator,
    transaction_state_partition,
)
from .fault_support import readyz, wait_for
from .progress_support import CommitProgress, Stall
from .stream_support import (
    STREAM_FILE,
    ScorerProcess,
    offline_flags,
    read_alerts,
    read_topic,
    scorer_process,
    stream_csv,
    tally,
    wait_committed_to_the_end,
)

if TYPE_CHECKING:
    from fraudstream.kafka.local.cluster import LocalCluster
    from tests.conftest import TrainedModel

ROWS = 12_000
FRAUDS = 250
RATE = 40
"""Rows a second: the file would last 300 s, far longer than any fault here (a rolling restart took 150 s at load
20); the replay is stopped TAIL_S after the fault, so a test sends only what its fault needs."""
TAIL_S = 5.0
STALL_BOUND_S = 15.0
"""The acceptance: on the cluster, scoring never stops for more than 15 s, whatever the fault."""
FAULT_AFTER = 300
"""Committed transactions before the fault: it lands early in the stream, with most of it still to come."""
OFFSETS = "__consumer_offsets"


@pytest.fixture(scope="module")
def cluster_stream(trained_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """The module's stream (3,000 shuffled rows, 150 frauds) and the alerts the served model gives it offline."""
    csv = stream_csv(trained_model.data_csv, tmp_path_factory.mktemp("cluster-stream"), rows=ROWS, frauds=FRAUDS)
    settings = load_settings(**trained_model.overrides, state_dir=tmp_path_factory.mktemp("cluster-offline"))
    return csv, offline_flags(settings, trained_model.version, csv)


@pytest.fixture
def cluster_settings(cluster3: LocalCluster, trained_model: TrainedModel, tmp_path: Path) -> Iterator[Settings]:
    """Settings of one pipeline on the cluster: topics of its own (3 partitions, 3 replicas), deleted after."""
    suffix = uuid.uuid4().hex[:10]
    settings = load_settings(
        **trained_model.overrides,
        kafka_bootstrap=cluster3.bootstrap,
        topic_transactions=f"transactions-{suffix}",
        topic_alerts=f"fraud-alerts-{suffix}",
        topic_dlq=f"transactions.dlq-{suffix}",
        topic_sink_dlq=f"fraud-alerts.dlq-{suffix}",
        topic_monitoring=f"fraud-monitoring-{suffix}",
        topic_partitions=3,
        topic_replication_factor=3,
        scorer_group_id=f"scorer-{suffix}",
        scorer_batch_size=100,
        scorer_batch_timeout_s=0.1,
        scorer_metrics_port=0,
        replay_transactional=True,
        state_dir=tmp_path / "state",
    )
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    conn = settings.kafka()
    ensure_topics(conn, standard_topics(settings), replication_factor=3, timeout=60)
    for node in cluster3.nodes:  # a node restarted by an earlier test may not know the new topics yet
        wait_for(lambda n=node: knows_topics(n.bootstrap, standard_topics(settings)), f"node {node.node_id}", 60)
    yield settings
    with contextlib.suppress(BrokerError, TimeoutError):
        delete_topics(conn, list(standard_topics(settings)), timeout=30)


def knows_topics(bootstrap: str, topics: dict[str, int]) -> bool:
    """True when the node at ``bootstrap`` lists every topic, each partition with a leader."""
    try:
        metadata = admin_client(KafkaConnection(bootstrap_servers=bootstrap)).list_topics(timeout=5)
    except KafkaException:
        return False
    return all(
        name in metadata.topics
        and len(metadata.topics[name].partitions) == count
        and all(part.leader >= 0 for part in metadata.topics[name].partitions.values())
        for name, count in topics.items()
    )


# ---- one scored stream with a fault in the middle ---------------------------------------------------------------
@dataclass
class Replica:
    """A `fraudstream score` process and its readiness endpoint."""

    name: str
    transactional_id: str
    port: int
    process: ScorerProcess | None = None

    @property
    def ready_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/readyz"

    def partitions(self) -> int:
        answer = readyz(self.ready_url)
        return int(answer[1].get("partitions") or 0) if answer else 0


@dataclass
class Run:
    """What a test's fault can reach while the stream flows, and what it measured."""

    settings: Settings
    cluster: LocalCluster
    replicas: list[Replica]
    progress: CommitProgress
    fault_at: float = float("nan")
    measured: dict[str, Any] = field(default_factory=dict)

    def mark(self, name: str, moment: float | None = None) -> float:
        """Note a moment (seconds since the fault) under ``name``; the fault's own moment is ``fault_at``."""
        moment = time.monotonic() if moment is None else moment
        self.measured[name] = round(moment - self.fault_at, 1)
        return moment


@dataclass
class Outcome:
    alerts: list[Any]
    inputs: list[str]
    """transaction_ids of the input topic's records, read_committed."""
    expected: set[str]
    stats: ReplayStats
    stall: Stall
    run: Run
    logs: dict[str, str]


def committed_everywhere_since(progress: CommitProgress, moment: float) -> bool:
    """True once every partition has committed after ``moment``."""
    return all(any(when > moment for when, _ in points) for points in progress.advances.values())


def resumed_after(progress: CommitProgress, moment: float) -> float:
    """Seconds from ``moment`` until every partition had committed again."""
    firsts = []
    for points in progress.advances.values():
        later = [when for when, _ in points if when > moment]
        assert later, f"a partition never committed after the moment measured: {progress.advances}"
        firsts.append(later[0])
    return max(firsts) - moment


class StoppableReplay:
    """The replay (the code of `fraudstream replay`, transactional as the settings say) in a thread, paced, until
    :meth:`finish` stops it."""

    def __init__(self, settings: Settings, csv: Path, rate: float) -> None:
        self.stop = threading.Event()
        self.stats: ReplayStats | None = None
        self.error: BaseException | None = None
        options = ReplayOptions(data=csv, pace=Pace(rate=rate), flush_timeout_s=60.0)
        self._thread = threading.Thread(target=self._run, args=(settings, options), name="replay", daemon=True)

    def _run(self, settings: Settings, options: ReplayOptions) -> None:
        try:
            self.stats = replay(settings, options, stop=self.stop)
        except BaseException as exc:  # surfaced by finish()
            self.error = exc

    def __enter__(self) -> StoppableReplay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(timeout=90)

    def finish(self) -> ReplayStats:
        """Stop sending; return once everything sent is committed (or was given up)."""
        self.stop.set()
        self._thread.join(timeout=90)
        if self.error is not None:
            raise self.error
        assert self.stats is not None, "the replay did not finish within 90 s of its stop"
        return self.stats


def scored_stream(
    settings: Settings,
    cluster: LocalCluster,
    stream: Path,
    tmp_path: Path,
    *,
    flagged: set[str],
    fault: Callable[[Run], None],
    rate: float = RATE,
    replicas: int = 1,
    txn_ids: list[str] | None = None,
    **scorer_overrides: Any,
) -> Outcome:
    """Start the scorer replicas, replay ``stream`` at ``rate`` rows a second, run ``fault`` once the stream is
    flowing on every partition, stop the replay TAIL_S after it, then wait for everything sent to be committed
    and read the alerts. ``flagged``: the alerts of the whole file (those of the rows sent are expected)."""
    ids = txn_ids or [f"{settings.scorer_group_id}-{i}" for i in range(replicas)]
    members = [Replica(f"scorer-{i}", txn_id, free_port()) for i, txn_id in enumerate(ids)]
    with contextlib.ExitStack() as stack:
        for member in members:
            member.process = stack.enter_context(
                scorer_process(
                    settings,
                    tmp_path / f"{member.name}.log",
                    scorer_transactional_id=member.transactional_id,
                    scorer_metrics_port=member.port,
                    topic_sink_dlq=settings.topic_sink_dlq,
                    topic_monitoring=settings.topic_monitoring,
                    # Reason codes are not what these tests look at, and the forest they need loads at the first
                    # batch (45 s on a busy 2-core machine): the stream would start far behind the fault.
                    explain_enabled=False,
                    **scorer_overrides,
                )
            )
        for member in members:
            wait_for(lambda m=member: (readyz(m.ready_url) or (0,))[0] == 200, f"{member.name} to be ready", 120)
        progress = stack.enter_context(CommitProgress(settings))
        run = Run(settings, cluster, members, progress)
        replay = stack.enter_context(StoppableReplay(settings, stream, rate))
        wait_for(
            lambda: progress.committed() > FAULT_AFTER and progress.every_partition_moved(),
            "the stream to be committed on every partition",
            timeout=120,
        )
        run.measured["committed_at_fault"] = progress.committed()
        run.fault_at = time.monotonic()
        fault(run)
        run.mark("fault_over_s")
        time.sleep(TAIL_S)  # the stream goes on a while after the fault
        stats = replay.finish()
        assert stats.sent < ROWS, f"the stream ran out before the fault was over: {run.measured}"
        expected = {tid for tid in flagged if int(tid.rpartition(":")[2]) < stats.sent}
        # The input's end offsets count the replay's commit markers besides its rows: the scorer has consumed
        # everything once its committed offsets are there (a read_committed consumer's position passes the markers).
        final = dict(enumerate(wait_committed_to_the_end(settings, timeout=120)))
        inputs = [m.key().decode() for m in read_topic(settings, settings.topic_transactions, at_least=stats.sent)]
        alerts = read_alerts(settings, at_least=len(expected))
        for member in members:
            assert member.process is not None
            if member.process.process.poll() is None:
                assert member.process.terminate(timeout=60) == 0, member.process.output()[-3000:]
        time.sleep(progress.interval_s * 2)
    stall = progress.longest_stall(final)
    run.measured.update(
        max_stall_s=round(stall.seconds, 1),
        stall_partition=stall.partition,
        stall_from_s=round(stall.started - run.fault_at, 1),
        probe_samples=progress.samples,
        probe_unanswered=progress.unanswered,
    )
    logs = {path.stem: path.read_text(errors="replace") for path in tmp_path.glob("scorer-*.log")}
    return Outcome(alerts, inputs, expected, stats, stall, run, logs)


def report(what: str, outcome: Outcome) -> tuple[set[str], set[str], set[str], set[str]]:
    """Print the tally; returns the alerts lost and duplicated, then the input rows lost and duplicated."""
    stats = outcome.stats
    sent = {f"{STREAM_FILE}:{row}" for row in range(stats.sent)}
    input_lost, input_duplicated = tally(
        f"{what}: input", sent=stats.sent, expected=sent, got=outcome.inputs, unit="records"
    )
    lost, duplicated = tally(
        what,
        sent=stats.sent,
        expected=outcome.expected,
        got=[alert.transaction_id for alert in outcome.alerts],
        delivered=stats.delivered,
        failed=stats.failed,
        undelivered=stats.undelivered,
        replay_transactions=stats.transactions,
        replay_aborted=stats.aborted,
        replay_replaced=stats.replaced,
        resent_uncertain=stats.resent_uncertain,
        **outcome.run.measured,
    )
    return lost, duplicated, input_lost, input_duplicated


def assert_exactly_once_without_long_stalls(what: str, outcome: Outcome, bound_s: float = STALL_BOUND_S) -> None:
    lost, duplicated, input_lost, input_duplicated = report(what, outcome)
    assert not input_lost
    assert not input_duplicated
    assert len(outcome.inputs) == outcome.stats.sent
    assert not lost
    assert not duplicated
    assert {alert.transaction_id for alert in outcome.alerts} == outcome.expected
    assert outcome.stats.delivered == outcome.stats.sent  # the replay never reports an undelivered transaction
    assert outcome.stats.failed == outcome.stats.undelivered == 0
    assert outcome.stall.seconds <= bound_s, f"partition {outcome.stall.partition} stalled: {outcome.run}"


def coordinator_of_group(conn: Any, group_id: str) -> int:
    """The node coordinating a consumer group: the leader of its ``__consumer_offsets`` partition."""
    leaders = partition_leaders(conn, OFFSETS)
    return leaders[transaction_state_partition(group_id, len(leaders))]  # the same hash picks the partition


def txn_id_coordinated_elsewhere(conn: Any, prefix: str, avoid: int) -> str:
    """A transactional.id whose coordinator is not node ``avoid``, so a fault aimed at one hits only that one."""
    if TRANSACTION_STATE not in admin_client(conn).list_topics(timeout=10).topics:
        # a cluster no transactional producer used yet: the first init_transactions creates the topic
        Producer(producer_config(conn, client_id="txn-state", transactional_id=f"{prefix}-init")).init_transactions(60)
    for attempt in range(100):
        candidate = f"{prefix}-{attempt}"
        if transaction_coordinator(conn, candidate) != avoid:
            return candidate
    raise AssertionError(f"every candidate transactional.id is coordinated by node {avoid}")


# ---- the faults -------------------------------------------------------------------------------------------------
def test_kill_9_of_the_busiest_leader_mid_stream_then_its_return_loses_and_duplicates_nothing(
    cluster3: LocalCluster, cluster_settings: Settings, cluster_stream: tuple[Path, set[str]], tmp_path: Path
) -> None:
    stream, flagged = cluster_stream
    conn = cluster_settings.kafka()
    topic = cluster_settings.topic_transactions
    victim_id = busiest_leader(conn, topic)
    # the leader is aimed at alone: the scorer's transaction coordinator is another node
    txn_id = txn_id_coordinated_elsewhere(conn, f"{cluster_settings.scorer_group_id}-leader", avoid=victim_id)

    def kill_the_leader_then_bring_it_back(run: Run) -> None:
        victim = run.cluster.node(victim_id)
        run.measured.update(
            killed_node=victim_id,
            led=leader_counts(conn, topic)[victim_id],
            group_coordinator=coordinator_of_group(conn, cluster_settings.scorer_group_id),
        )
        assert victim.kill() is not None
        wait_for(lambda: victim_id not in partition_leaders(conn, topic).values(), "new leaders", timeout=60)
        run.mark("new_leaders_s")
        wait_for(lambda: committed_everywhere_since(run.progress, run.fault_at), "scoring on 2 nodes", timeout=60)
        run.measured["resumed_s"] = round(resumed_after(run.progress, run.fault_at), 1)
        victim.up(timeout=180)
        back = run.mark("back_s")
        wait_for(lambda: committed_everywhere_since(run.progress, back), "scoring after the return", timeout=60)
        run.measured["resumed_after_return_s"] = round(resumed_after(run.progress, back), 1)

    outcome = scored_stream(
        cluster_settings,
        cluster3,
        stream,
        tmp_path,
        flagged=flagged,
        fault=kill_the_leader_then_bring_it_back,
        txn_ids=[txn_id],
    )
    assert_exactly_once_without_long_stalls("cluster: kill -9 of the busiest leader, then back", outcome)


def test_kill_9_of_the_scorers_transaction_coordinator_mid_stream_loses_and_duplicates_nothing(
    cluster3: LocalCluster, cluster_settings: Settings, cluster_stream: tuple[Path, set[str]], tmp_path: Path
) -> None:
    stream, flagged = cluster_stream
    conn = cluster_settings.kafka()
    # the coordinator is aimed at alone: not the node leading the most transactions partitions
    busiest = busiest_leader(conn, cluster_settings.topic_transactions)
    txn_id = txn_id_coordinated_elsewhere(conn, f"{cluster_settings.scorer_group_id}-coord", avoid=busiest)

    def kill_the_coordinator(run: Run) -> None:
        coordinator = transaction_coordinator(conn, txn_id)
        run.measured.update(
            killed_node=coordinator,
            busiest_leader=busiest,
            led=leader_counts(conn, cluster_settings.topic_transactions)[coordinator],
            group_coordinator=coordinator_of_group(conn, cluster_settings.scorer_group_id),
        )
        assert run.cluster.node(coordinator).kill() is not None
        wait_for(lambda: transaction_coordinator(conn, txn_id) not in (coordinator, -1), "a new coordinator", 60)
        run.mark("new_coordinator_s")
        run.measured["new_coordinator"] = transaction_coordinator(conn, txn_id)
        wait_for(lambda: committed_everywhere_since(run.progress, run.fault_at), "scoring to resume", timeout=60)
        run.measured["resumed_s"] = round(resumed_after(run.progress, run.fault_at), 1)

    outcome = scored_stream(
        cluster_settings, cluster3, stream, tmp_path, flagged=flagged, fault=kill_the_coordinator, txn_ids=[txn_id]
    )
    assert_exactly_once_without_long_stalls("cluster: kill -9 of the transaction coordinator", outcome)


def test_a_rolling_restart_of_all_three_nodes_mid_stream_loses_and_duplicates_nothing(
    cluster3: LocalCluster, cluster_settings: Settings, cluster_stream: tuple[Path, set[str]], tmp_path: Path
) -> None:
    stream, flagged = cluster_stream
    pids_before = [node.status().pid for node in cluster3.nodes]

    def restart_every_node(run: Run) -> None:
        run.cluster.rolling_restart(timeout=120)
        run.mark("rolling_restart_s")

    outcome = scored_stream(cluster_settings, cluster3, stream, tmp_path, flagged=flagged, fault=restart_every_node)
    pids_after = [node.status().pid for node in cluster3.nodes]
    assert_exactly_once_without_long_stalls("cluster: rolling restart of all three nodes", outcome)
    assert all(after is not None and after != before for before, after in zip(pids_before, pids_after, strict=True))


def test_kill_9_of_one_of_two_scorer_replicas_on_the_cluster_the_survivor_takes_over(
    cluster3: LocalCluster, cluster_settings: Settings, cluster_stream: tuple[Path, set[str]], tmp_path: Path
) -> None:
    stream, flagged = cluster_stream
    session_s = 6  # the broker's group.min.session.timeout.ms
    takeover_bound_s = session_s + heartbeat_interval_ms(session_s * 1000) / 1000 + 2

    def kill_a_replica(run: Run) -> None:
        doomed, survivor = run.replicas
        wait_for(lambda: 0 < survivor.partitions() < 3, "the two replicas to share the partitions", timeout=60)
        assert doomed.process is not None
        doomed.process.kill()
        killed = run.mark("killed_s")
        wait_for(lambda: survivor.partitions() == 3, "the survivor to take every partition", timeout=60)
        run.measured["takeover_s"] = round(time.monotonic() - killed, 1)
        wait_for(lambda: committed_everywhere_since(run.progress, killed), "scoring to resume", timeout=60)
        run.measured["resumed_s"] = round(resumed_after(run.progress, killed), 1)

    outcome = scored_stream(
        cluster_settings,
        cluster3,
        stream,
        tmp_path,
        flagged=flagged,
        fault=kill_a_replica,
        replicas=2,
        scorer_session_timeout_ms=session_s * 1000,
    )
    # Not the 15 s: the survivor scores the dead replica's partitions only once Kafka has aborted its open
    # transaction (until then their committed offsets are unstable, KIP-447): the transaction timeout, then Kafka's
    # sweep of timed-out transactions (10 s). Both shorter made a scorer that lived through a 60 s single-broker
    # outage stop scoring (test_stream_outage.py), so the defaults stay and this fault's bound says what they cost.
    timed_out_s = cluster_settings.scorer_transaction_timeout_ms / 1000 + 10
    assert_exactly_once_without_long_stalls(
        "cluster: kill -9 of one of two scorer replicas", outcome, bound_s=timed_out_s + STALL_BOUND_S / 3
    )
    assert outcome.run.measured["takeover_s"] <= takeover_bound_s, outcome.run.measured
