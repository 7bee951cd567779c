"""What the forest reads: the 30 transaction fields, with ``Time`` encoded the way the version was trained.

The API and the stream keep accepting the same 30 fields whatever the encoding: the transform happens here,
in one place used by the trainer (before fitting), by :class:`~fraudstream.model.serving.FraudModel` (the
scorer and ``/predict``) and by the MLflow pyfunc. The ONNX model's input stays 30 columns wide.

* ``raw``: ``Time`` as sent, seconds since the data set's first row. In a live stream (or a replay with
  ``--loop``) it soon passes anything the forest saw, and a forest trained on earlier rows reads "late" as a
  signal; versions logged before the encoding existed use it.
* ``time_of_day``: ``Time mod 86,400``, the second of the day, which a live stream repeats every day.
* ``none``: ``Time`` set to 0 for every row, so the forest cannot split on it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from fraudstream.schemas import FEATURES

TimeEncoding = Literal["raw", "time_of_day", "none"]
TIME_ENCODINGS: tuple[TimeEncoding, ...] = ("raw", "time_of_day", "none")
TIME_COLUMN = FEATURES.index("Time")
SECONDS_PER_DAY = 86_400


def model_input(features: np.ndarray, encoding: TimeEncoding) -> np.ndarray:
    """The forest's input for an (n, 30) matrix in FEATURES order; the caller's matrix is never modified."""
    if encoding == "raw":
        return features
    encoded = np.array(features, copy=True)
    if encoding == "time_of_day":
        encoded[:, TIME_COLUMN] = np.mod(encoded[:, TIME_COLUMN], SECONDS_PER_DAY)
    elif encoding == "none":
        encoded[:, TIME_COLUMN] = 0
    else:
        raise ValueError(f"unknown Time encoding {encoding!r}; expected one of {TIME_ENCODINGS}")
    return encoded
