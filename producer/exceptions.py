"""Errors of the producer component."""

from __future__ import annotations

from fraudstream.exceptions import FraudstreamError


class ReplayError(FraudstreamError):
    """A replay cannot start or go on (bad options, a producer Kafka refuses)."""
