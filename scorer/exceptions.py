"""Errors of the scorer component."""

from __future__ import annotations

from fraudstream.exceptions import FraudstreamError


class ScorerError(FraudstreamError):
    """The scorer cannot go on."""


class FatalKafkaError(ScorerError):
    """Kafka refuses the scorer's configuration (authorization, an invalid setting): only a change of settings or
    of the cluster's ACLs fixes it, so the scorer stops with this message."""


class ProducerUnusableError(ScorerError):
    """The transactional producer cannot go on (fatal, fenced, stuck, or failing in a way an abort cannot clear).
    The loop replaces it with a new one with the same transactional.id; this never reaches the user."""


class ConsumerUnusableError(ScorerError):
    """The group consumer cannot go on (a fatal error, e.g. FENCED_INSTANCE_ID, or a call that got stuck). The
    loop replaces it with a new one, which rejoins the group; this never reaches the user.

    ``abandoned``: a call of that consumer is still blocked in the watchdog's worker, so it must be left alone
    (not even closed) rather than used from a second thread."""

    def __init__(self, message: str, *, abandoned: bool = False) -> None:
        super().__init__(message)
        self.abandoned = abandoned
