"""The registered model as a plain MLflow pyfunc: ``mlflow.pyfunc.load_model(...).predict(frame)``.

The model directory's ``python_function`` flavour names this module as its loader, so MLflow builds the same
:class:`~fraudstream.model.serving.FraudModel` the scorer and the API use (ONNX engine, Time encoding,
threshold): one scoring path. It needs fraudstream installed where the model is loaded (e.g.
``mlflow models serve --env-manager local``); nothing is unpickled.

Input: a frame holding the 30 transaction fields (``pd.read_csv`` of creditcard.csv works as is: extra columns
such as ``Class`` are ignored, an integer ``Time`` is fine). Output: one row per transaction with ``score`` (the
fraud probability), ``fraudulent`` (score >= threshold) and ``threshold``, as ``POST /predict`` answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudstream.model.serving import FraudModel, open_model_dir
from fraudstream.schemas import FEATURES, FLOAT32_MAX

NON_NEGATIVE = ("Time", "Amount")
OUTPUT_COLUMNS = ("score", "fraudulent", "threshold")


class BadInputError(ValueError):
    """A frame the model cannot score; the message names the column and the row."""


def feature_matrix_of(frame: pd.DataFrame) -> np.ndarray:
    """The (n, 30) float matrix in FEATURES order, checked as the API checks one transaction."""
    missing = [name for name in FEATURES if name not in frame.columns]
    if missing:
        raise BadInputError(f"missing column(s) {', '.join(missing)}: the model needs {', '.join(FEATURES)}")
    columns = []
    for name in FEATURES:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX)
        if name in NON_NEGATIVE:
            bad |= values < 0
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = frame[name].iloc[row]
            value = value.item() if isinstance(value, np.generic) else value
            need = "a finite number >= 0" if name in NON_NEGATIVE else "a finite number"
            raise BadInputError(f"column {name!r}, row {row}: {value!r} is not {need}")
        columns.append(values)
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


class FraudPyfunc:
    """What ``mlflow.pyfunc.load_model`` returns the ``predict`` of."""

    def __init__(self, model: FraudModel) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        try:
            matrix = feature_matrix_of(frame)
        except BadInputError as exc:
            from mlflow.exceptions import MlflowException
            from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        scores = self.model.score(matrix)
        return pd.DataFrame(
            {
                "score": scores,
                "fraudulent": self.model.flags(scores),
                "threshold": np.full(len(scores), self.model.threshold),
            },
            index=frame.index,
        )


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> FraudPyfunc:
    """MLflow's loader hook: ``data_path`` is the model directory's ``artifacts`` folder."""
    root = Path(data_path).parent
    return FraudPyfunc(open_model_dir(root, name=root.name or "model", version="pyfunc"))
