"""Errors of the API component. Each is a FraudstreamError; api/errors.py alone turns them into HTTP answers."""

from __future__ import annotations

from fraudstream.exceptions import FraudstreamError


class ApiError(FraudstreamError):
    """Base of the API component's deliberate errors."""


class ModelUnavailableError(ApiError):
    """No model is loaded yet, so nothing can be scored."""


class AlertNotFoundError(ApiError):
    """No stored alert has this transaction id."""

    def __init__(self, transaction_id: str) -> None:
        self.transaction_id = transaction_id
        super().__init__(f"no alert for transaction {transaction_id!r}")


class InvalidInputError(ApiError):
    """An input is well typed but unusable (an unreadable cursor, a batch over the limit...): answered 422."""

    def __init__(self, field: str, message: str, *, location: str = "query") -> None:
        self.field = field
        self.message = message
        self.location = location
        super().__init__(f"{field}: {message}")


class StoreError(FraudstreamError):
    """The alert store cannot be reached or refused a statement.

    ``transient`` is True when trying again may work (connection lost, database locked), False when the data
    itself was refused (a constraint), so the sink knows whether to retry the batch or set a row aside.
    """

    def __init__(self, message: str, *, transient: bool = True) -> None:
        self.transient = transient
        super().__init__(message)


class SinkError(FraudstreamError):
    """The alert sink cannot go on (a fatal Kafka error)."""
