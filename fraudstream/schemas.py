"""The messages every component exchanges: one schema for the CSV, the stream, the API and the model.

Numbers are strict (a string or a boolean is not a number) and finite (NaN and infinity are refused);
unknown fields and repeated keys are refused. The ground-truth ``label`` travels beside the features and is
never a model input. The value rules live in ``fraudstream.rules``; the stream's fast decoder
(``fraudstream.wire``) is derived from these models, so a rule is written once.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import starmap
from operator import attrgetter
from typing import Annotated, Literal, Protocol, TypeVar, get_args

import numpy as np
from pydantic import AfterValidator, AllowInfNan, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from fraudstream.json_keys import Path, find_repeated_key, repeated_key
from fraudstream.rules import FLOAT32_MAX, FiniteFloat, Label, NonNegativeFloat, Timestamp, TransactionId

__all__ = [
    "CSV_COLUMNS",
    "FEATURES",
    "FLOAT32_MAX",
    "LABEL_COLUMN",
    "SEED_EXAMPLE",
    "Alert",
    "AwareDatetime",
    "Explanation",
    "ExplanationMethod",
    "FeatureRow",
    "Feedback",
    "Reason",
    "Transaction",
    "TransactionFeatures",
    "Verdict",
    "duplicate_key_error",
    "feature_matrix",
    "parse_json",
]

FEATURES: tuple[str, ...] = ("Time", *(f"V{i}" for i in range(1, 29)), "Amount")
"""Model inputs, in the order the model sees them."""
_N_FEATURES = len(FEATURES)
LABEL_COLUMN = "Class"
CSV_COLUMNS: tuple[str, ...] = (*FEATURES, LABEL_COLUMN)
"""The 31 columns of the ULB creditcard.csv."""


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp needs a time zone (e.g. ...Z or +00:00)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
"""Any datetime with a time zone (the store's own timestamps); a message's times are ``rules.Timestamp``."""

SEED_EXAMPLE: dict[str, float] = {
    "Time": 0.0,
    "V1": -1.359807,
    "V2": -0.072781,
    "V3": 2.536347,
    "V4": 1.378155,
    "V5": -0.338321,
    "V6": 0.462388,
    "V7": 0.239599,
    "V8": 0.098698,
    "V9": 0.363787,
    "V10": 0.090794,
    "V11": -0.551600,
    "V12": -0.617801,
    "V13": -0.991390,
    "V14": -0.311169,
    "V15": 1.468177,
    "V16": -0.470401,
    "V17": 0.207971,
    "V18": 0.025791,
    "V19": 0.403993,
    "V20": 0.251412,
    "V21": -0.018307,
    "V22": 0.277838,
    "V23": -0.110474,
    "V24": 0.066928,
    "V25": 0.128539,
    "V26": -0.189115,
    "V27": 0.133558,
    "V28": -0.021053,
    "Amount": 149.62,
}
"""The first row of creditcard.csv (rounded to 6 decimals), a legitimate transaction: the seed's example."""


class TransactionFeatures(BaseModel):
    """One card transaction as the model sees it: ``Time``, the PCA components ``V1``..``V28``, ``Amount``."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [SEED_EXAMPLE]})

    Time: NonNegativeFloat = Field(description="Seconds since the first transaction of the data set.")
    V1: FiniteFloat
    V2: FiniteFloat
    V3: FiniteFloat
    V4: FiniteFloat
    V5: FiniteFloat
    V6: FiniteFloat
    V7: FiniteFloat
    V8: FiniteFloat
    V9: FiniteFloat
    V10: FiniteFloat
    V11: FiniteFloat
    V12: FiniteFloat
    V13: FiniteFloat
    V14: FiniteFloat
    V15: FiniteFloat
    V16: FiniteFloat
    V17: FiniteFloat
    V18: FiniteFloat
    V19: FiniteFloat
    V20: FiniteFloat
    V21: FiniteFloat
    V22: FiniteFloat
    V23: FiniteFloat
    V24: FiniteFloat
    V25: FiniteFloat
    V26: FiniteFloat
    V27: FiniteFloat
    V28: FiniteFloat
    Amount: NonNegativeFloat = Field(description="Transaction amount.")

    def as_row(self) -> list[float]:
        return [getattr(self, name) for name in FEATURES]


class Transaction(TransactionFeatures):
    """A transaction on the ``transactions`` topic."""

    transaction_id: TransactionId = Field(description="Stable id: file and row on replay.")
    event_time: Timestamp = Field(description="When the transaction happened in the replayed stream.")
    label: Label | None = Field(None, description="Ground truth (0 or 1) when known (replay); never a model input.")


ExplanationMethod = Literal["treeshap", "saabas"]
"""How reasons were computed: exact TreeSHAP (path-dependent), or the Saabas path attribution (an approximation)."""


class Reason(BaseModel):
    """One feature that pushed a transaction's fraud probability up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: Literal[FEATURES] = Field(description="Model input name (Time, V1..V28, Amount).")  # type: ignore[valid-type]
    value: Annotated[float, AllowInfNan(False)] = Field(description="The value the model saw (float32, shortest form).")
    contribution: Annotated[float, AllowInfNan(False)] = Field(description="Added to the fraud probability.")
    quantile: float | None = Field(
        None, ge=0.0, le=1.0, description="Share of training rows with a lower value; null without a profile."
    )


class Explanation(BaseModel):
    """Why the model scored a transaction as it did: the top reasons, by contribution, largest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: ExplanationMethod
    base_value: Annotated[float, AllowInfNan(False)] = Field(
        description="The explainer's expected fraud probability; base_value + all contributions = score."
    )
    reasons: list[Reason] = Field(max_length=len(FEATURES))


class Alert(BaseModel):
    """A flagged transaction on the ``fraud-alerts`` topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction_id: TransactionId
    score: float = Field(ge=0.0, le=1.0, description="Fraud probability from the model.")
    threshold: float = Field(ge=0.0, le=1.0, description="The model's decision threshold; score >= threshold.")
    model_name: str
    model_version: str
    event_time: Timestamp
    scored_at: Timestamp
    partition: int = Field(ge=0, description="Partition of the transaction on the transactions topic.")
    offset: int = Field(ge=0, description="Offset of the transaction on the transactions topic.")
    amount: Annotated[float, AllowInfNan(False)]
    label: Label | None = None
    features: TransactionFeatures | None = Field(None, description="The transaction's model inputs.")
    explanation: Explanation | None = Field(None, description="Reason codes; null when explanations are off.")


Verdict = Literal["fraud", "legitimate"]
"""An analyst's decision on an alert."""


class Feedback(BaseModel):
    """An analyst's verdict on an alert, on the compacted ``fraud-feedback`` topic keyed by transaction id.

    A later verdict on the same transaction replaces the earlier one (a higher ``feedback_id``); the labels it
    gives override the data set's ``Class`` when the trainer runs with ``--feedback``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    feedback_id: int = Field(ge=1, description="Increases with each verdict stored; the latest one counts.")
    transaction_id: TransactionId
    verdict: Verdict
    analyst: str = Field(min_length=1, max_length=200)
    note: str | None = Field(None, max_length=2000)
    decided_at: Timestamp
    model_name: str
    model_version: str = Field(description="The version that raised the alert.")


class FeatureRow(Protocol):
    """What feature_matrix reads: the 30 features as attributes (a kernel model or a wire-decoded struct)."""

    Time: float
    Amount: float


_features_of = attrgetter(*FEATURES)
_pack_row = struct.Struct(f"={len(FEATURES)}f").pack


def feature_matrix(transactions: Sequence[FeatureRow]) -> np.ndarray:
    """The model input for a batch: shape (n, 30), float32, columns in FEATURES order.

    Per transaction, one C-level ``attrgetter`` and one ``struct`` pack to float32: no Python code runs per field
    (a third cheaper than feeding ``np.fromiter`` the floats one by one: benchmarks/README.md, "decode"). The
    schema bounds every feature within float32, so no value overflows. This is on the scorer's and the API's hot
    path.
    """
    packed = bytearray().join(starmap(_pack_row, map(_features_of, transactions)))  # a writable buffer
    return np.frombuffer(packed, dtype=np.float32).reshape(len(transactions), _N_FEATURES)


Model = TypeVar("Model", bound=BaseModel)


def parse_json(
    model: type[Model], raw: bytes | str, *, tokens: Callable[[Model], tuple[int, int]] | None = None
) -> Model:
    """``model.model_validate_json(raw)``, and a repeated key refused as a ValidationError naming it.

    ``tokens(validated)`` says how many keys and string values the validated document holds (default: a flat
    model, its given fields the keys, its ``str`` and ``datetime`` fields the strings). A document that fails
    validation and also repeats a key gets the repeated key as its first error (the others follow).
    """
    try:
        validated = model.model_validate_json(raw)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise
        found = find_repeated_key(raw)
        if found is None:
            raise
        raise duplicate_key_error(model.__name__, found, also=exc) from None
    keys, strings = tokens(validated) if tokens else (len(validated.model_fields_set), _string_fields(model))
    where = repeated_key(raw, keys=keys, strings=strings)
    if where is not None:
        raise duplicate_key_error(model.__name__, where)
    return validated


def duplicate_key_error(title: str, where: Path, *, also: ValidationError | None = None) -> ValidationError:
    """The ValidationError of a repeated key: type ``duplicate_key``, located at the key (then ``also``'s)."""
    error = PydanticCustomError("duplicate_key", "Duplicate key: a field should be given once")
    details: list[InitErrorDetails] = [{"type": error, "loc": where, "input": where[-1]}]
    for other in also.errors() if also is not None else ():
        kind = other["type"] if other["type"] in _KNOWN_ERRORS else PydanticCustomError(other["type"], other["msg"])
        detail: InitErrorDetails = {"type": kind, "loc": other["loc"], "input": other["input"]}
        if "ctx" in other and isinstance(kind, str):
            detail["ctx"] = other["ctx"]
        details.append(detail)
    return ValidationError.from_exception_data(title, details)


_KNOWN_ERRORS = frozenset(get_args(ErrorType))


def _string_fields(model: type[BaseModel]) -> int:
    count = _STRING_FIELDS.get(model)
    if count is None:
        count = _STRING_FIELDS[model] = sum(
            1 for info in model.model_fields.values() if info.annotation in (str, datetime)
        )
    return count


_STRING_FIELDS: dict[type[BaseModel], int] = {}
