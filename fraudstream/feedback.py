"""Analysts' verdicts as labels: read the compacted ``fraud-feedback`` topic, and relabel the rows they name.

A verdict names its transaction by id, ``<file name>:<0-based data row>`` (producer/encode.py), so it applies to
that row of a data set with that file name: ``fraud`` makes its ``Class`` 1, ``legitimate`` 0. The latest verdict
of a transaction (the highest ``feedback_id``) counts, as on the compacted topic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd
from pydantic import ValidationError

from fraudstream.exceptions import BrokerError
from fraudstream.kafka.clients import consumer_config
from fraudstream.schemas import LABEL_COLUMN, Feedback
from fraudstream.settings import Settings

log = logging.getLogger(__name__)

LABELS = {"fraud": 1, "legitimate": 0}


def latest_verdicts(records: Iterable[Feedback]) -> dict[str, Feedback]:
    """The latest verdict of each transaction."""
    latest: dict[str, Feedback] = {}
    for feedback in records:
        known = latest.get(feedback.transaction_id)
        if known is None or feedback.feedback_id > known.feedback_id:
            latest[feedback.transaction_id] = feedback
    return latest


def read_verdicts(settings: Settings, *, timeout_s: float = 30.0) -> dict[str, Feedback]:
    """Every transaction's latest verdict on the topic, read from its beginning to its current end."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    topic = settings.topic_feedback
    config = consumer_config(settings.kafka(), group_id="fraudstream-trainer-feedback", client_id="fraudstream-trainer")
    consumer = Consumer(config)
    records: list[Feedback] = []
    skipped = 0
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            log.warning("no %s topic on %s: no verdicts", topic, settings.bootstrap_servers)
            return {}
        starts, ends = {}, {}
        for partition in found.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            if high > low:
                starts[partition], ends[partition] = low, high
        consumer.assign([TopicPartition(topic, partition, offset) for partition, offset in starts.items()])
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise BrokerError(f"reading {topic} to its end took longer than {timeout_s:g} s")
            for message in consumer.consume(1000, 0.5):
                if message.error() is not None:
                    continue
                try:
                    records.append(Feedback.model_validate_json(message.value() or b""))
                except ValidationError:
                    skipped += 1
            for position in consumer.position([TopicPartition(topic, p) for p in ends]):
                if position.offset >= ends.get(position.partition, 0):
                    ends.pop(position.partition, None)
    except KafkaException as exc:
        raise BrokerError(f"cannot read {topic} on {settings.bootstrap_servers}: {exc}") from exc
    finally:
        consumer.close()
    if skipped:
        log.warning("%d records of %s are not verdicts: skipped", skipped, topic)
    return latest_verdicts(records)


@dataclass(frozen=True)
class Relabelling:
    """What the verdicts did to a data set's labels."""

    verdicts: int
    """Verdicts read (the latest of each transaction)."""
    matched: int
    """Of them, those naming a row of this file."""
    changed_rows: list[int] = field(default_factory=list)
    """0-based data rows whose Class the verdicts changed."""
    other_files: int = 0
    out_of_range: int = 0

    @property
    def changed(self) -> int:
        return len(self.changed_rows)

    def describe(self) -> str:
        return (
            f"{self.verdicts} analysts' verdicts, {self.matched} naming rows of this file: "
            f"{self.changed} labels changed ({self.other_files} name other files, {self.out_of_range} rows beyond it)"
        )


def relabel(frame: pd.DataFrame, file_name: str, verdicts: Mapping[str, Feedback]) -> tuple[pd.DataFrame, Relabelling]:
    """``frame`` (0-based data rows in file order) with ``Class`` set by the verdicts that name its rows."""
    labels = frame[LABEL_COLUMN].to_numpy(copy=True)
    matched = other = beyond = 0
    changed: list[int] = []
    for transaction_id, feedback in verdicts.items():
        name, _, row_text = transaction_id.rpartition(":")
        if name != file_name or not row_text.isdigit():
            other += 1
            continue
        row = int(row_text)
        if row >= len(labels):
            beyond += 1
            continue
        matched += 1
        label = LABELS[feedback.verdict]
        if labels[row] != label:
            labels[row] = label
            changed.append(row)
    relabelled = frame.copy()
    relabelled[LABEL_COLUMN] = labels
    report = Relabelling(len(verdicts), matched, sorted(changed), other_files=other, out_of_range=beyond)
    return relabelled, report
