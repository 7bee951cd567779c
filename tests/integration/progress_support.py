"""How far the scorer group's committed offsets got, and when: the stall bound of the cluster fault tests.

:class:`CommitProgress` asks the group coordinator for the committed offset of each partition of the transactions
topic a few times a second, in a thread, and keeps the moments each one moved forward. A partition's stall is the
longest time between two of its advances before it reached its final offset: the time during which none of its
transactions was committed although more were to come (the replay feeds every partition all along). The offsets
are read as Kafka has them (read_uncommitted, so a dead scorer's pending transaction does not hide them), never
from a scorer's own counters; a sample the coordinator does not answer (it may be the killed node) is skipped, so
a blind spot of the probe can only lengthen a measured stall, never shorten it.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, TopicPartition

from fraudstream.kafka.clients import consumer_config
from fraudstream.settings import Settings

SAMPLE_EVERY_S = 0.2
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Stall:
    """The longest wait of one partition between two commits, ``started``/``ended`` on time.monotonic()."""

    partition: int
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class CommitProgress:
    """Samples the committed offsets of ``settings.scorer_group_id`` on ``settings.topic_transactions``."""

    settings: Settings
    interval_s: float = SAMPLE_EVERY_S
    advances: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    """partition -> (when, offset) each time its committed offset was seen higher than before."""
    samples: int = 0
    unanswered: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> CommitProgress:
        self.advances = {p: [] for p in range(self.settings.topic_partitions)}
        self._thread = threading.Thread(target=self._run, name="commit-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def committed(self) -> int:
        """Transactions committed so far (the latest offsets seen)."""
        return sum(points[-1][1] for points in self.advances.values() if points)

    def every_partition_moved(self) -> bool:
        return all(self.advances.values())

    def longest_stall(self, final: dict[int, int], after: float = float("-inf")) -> Stall:
        """The longest stall of any partition before it reached its ``final`` offset, among the stalls that end
        after ``after`` (e.g. the moment of a fault)."""
        stalls = [
            stall for p, offset in final.items() if (stall := self._partition_stall(p, offset, after)) is not None
        ]
        assert stalls, f"no partition advanced after the fault: {self.advances}"
        return max(stalls, key=lambda stall: stall.seconds)

    def _partition_stall(self, partition: int, final: int, after: float) -> Stall | None:
        points = self.advances[partition]
        longest: Stall | None = None
        for (previous, _), (when, offset) in itertools.pairwise(points):
            if when > after and (longest is None or when - previous > longest.seconds):
                longest = Stall(partition, previous, when)
            if offset >= final:
                break
        return longest

    def _run(self) -> None:
        config = consumer_config(
            self.settings.kafka(),
            group_id=self.settings.scorer_group_id,
            client_id="stall-probe",
            read_committed=False,
            log_level=3,  # the probe's own errors while a node is down say nothing the test needs
        )
        consumer = Consumer(config)
        partitions = [TopicPartition(self.settings.topic_transactions, p) for p in self.advances]
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    offsets = consumer.committed(partitions, timeout=PROBE_TIMEOUT_S)
                except KafkaException:
                    self.unanswered += 1
                    continue
                now = time.monotonic()
                self.samples += 1
                for tp in offsets:
                    points = self.advances[tp.partition]
                    if tp.offset > (points[-1][1] if points else 0):
                        points.append((now, tp.offset))
        finally:
            consumer.close()
