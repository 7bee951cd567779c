"""A consumer group seen from outside, as an operator sees it: which partitions its members hold, and its lag
(the end of each partition minus the group's committed offset), through clients opened once, not one per look.

The services measure their own lag from librdkafka's statistics (:mod:`fraudstream.kafka.health`); this is for
a watcher that is not a member (the demo waiting for the scorer, a monitoring command): it never joins the group.
"""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from fraudstream.kafka.clients import admin_config, consumer_config
from fraudstream.settings import Settings

REQUEST_TIMEOUT_S = 10.0


class GroupView:
    """``group_id`` on ``topic``, read with an admin client and an offsets-only consumer (never subscribed)."""

    def __init__(self, settings: Settings, group_id: str, topic: str, *, client_id: str = "fraudstream-watch") -> None:
        self._settings = settings
        self.group_id = group_id
        self.topic = topic
        self._client_id = client_id
        self._admin: AdminClient | None = None
        self._offsets: Consumer | None = None

    def assigned(self) -> set[int]:
        """The partitions of ``topic`` the group's members hold now."""
        if self._admin is None:
            self._admin = AdminClient(admin_config(self._settings.kafka(), client_id=f"{self._client_id}-admin"))
        (future,) = self._admin.describe_consumer_groups([self.group_id], request_timeout=REQUEST_TIMEOUT_S).values()
        return {
            tp.partition
            for member in future.result().members
            for tp in (member.assignment.topic_partitions if member.assignment else [])
            if tp.topic == self.topic
        }

    def lag(self) -> int:
        """Records of ``topic`` the group has not committed yet: each partition's high watermark minus the group's
        committed offset (a partition it never committed counts from 0)."""
        if self._offsets is None:  # it never subscribes: it reads the group's offsets without joining the group
            self._offsets = Consumer(
                consumer_config(self._settings.kafka(), group_id=self.group_id, client_id=f"{self._client_id}-lag")
            )
        consumer, topic = self._offsets, self.topic
        partitions = [
            TopicPartition(topic, p)
            for p in consumer.list_topics(topic, timeout=REQUEST_TIMEOUT_S).topics[topic].partitions
        ]
        lag = 0
        for committed in consumer.committed(partitions, timeout=REQUEST_TIMEOUT_S):
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, committed.partition), timeout=REQUEST_TIMEOUT_S
            )
            lag += high - max(committed.offset, 0)
        return lag

    def close(self) -> None:
        if self._offsets is not None:
            self._offsets.close()
            self._offsets = None
        self._admin = None
