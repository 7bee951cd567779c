"""Errors of the scorer component."""

from __future__ import annotations

from fraudstream.exceptions import FraudstreamError


class ScorerError(FraudstreamError):
    """The scorer cannot go on."""


class FatalKafkaError(ScorerError):
    """Kafka reported an error no retry or abort can fix (e.g. this producer was fenced by a newer one)."""
