"""Errors of the trainer component."""

from __future__ import annotations

from fraudstream.exceptions import FraudstreamError


class TrainingError(FraudstreamError):
    """Training cannot go on (too few frauds, an export that does not reproduce the model, ...)."""
