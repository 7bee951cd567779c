"""The kernel's errors. Every error fraudstream raises on purpose is a FraudstreamError.

Components derive their own from these; only the API turns them into HTTP answers and only the CLI into
exit codes and messages.
"""

from __future__ import annotations


class FraudstreamError(Exception):
    """Base of every deliberate fraudstream error. Its message is written for the person who has to act."""


class ConfigurationError(FraudstreamError):
    """A setting is missing or invalid; the message names the FRAUD_* variable."""


class DataValidationError(FraudstreamError):
    """A CSV does not hold valid transactions; names the file and, where known, the line and the column."""

    def __init__(self, path: str, problem: str, *, line: int | None = None, column: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.line = line
        self.column = column
        where = path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {problem}")


class BrokerError(FraudstreamError):
    """The Kafka broker cannot be reached, started or stopped."""


class ToolMissingError(BrokerError):
    """A program the local broker needs (java, mvn) is not installed."""


class ModelNotFoundError(FraudstreamError):
    """No model version carries the serving alias yet: run the trainer."""


class ModelLoadError(FraudstreamError):
    """A registered model version exists but cannot be loaded for scoring."""
