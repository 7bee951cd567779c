"""The registered model's directory, as an MLflow flavour module (``Model.log(flavor=model_dir, ...)``).

One directory, three ways in, one scoring path:

* ``python_function``: loader ``fraudstream.model.pyfunc``, so ``mlflow.pyfunc.load_model(...).predict(frame)``
  and ``mlflow models serve`` answer the fraud probability and the decision at the model's threshold, through
  the same ONNX engine and Time encoding as the scorer and the API;
* the kernel's serving contract: :class:`~fraudstream.model.serving.ServingSpec` in the MLmodel metadata, with
  ``artifacts/model.onnx`` and ``artifacts/reference_profile.json`` beside it (``ModelRegistry.load``);
* ``sklearn``: the fitted imblearn pipeline (skops, not pickle), for people who want the forest itself
  (``mlflow.sklearn.load_model``). It reads the encoded Time (``fraudstream.model.features.model_input``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from fraudstream.model.explain import SKOPS_TRUSTED_TYPES
from fraudstream.model.features import TimeEncoding
from fraudstream.model.profile import PROFILE_FILE, ReferenceProfile
from fraudstream.model.serving import ServingSpec
from fraudstream.schemas import FEATURES

if TYPE_CHECKING:
    from imblearn.pipeline import Pipeline
    from mlflow.models import Model, ModelSignature

ARTIFACTS_DIR = "artifacts"
ONNX_FILE = "model.onnx"
PYFUNC_LOADER = "fraudstream.model.pyfunc"


def signature() -> ModelSignature:
    """The 30 transaction fields in, score / fraudulent / threshold out.

    ``Time`` is typed Any: creditcard.csv writes it as an integer and the API's JSON as a float, and MLflow
    refuses to turn an int64 column into a double one; the pyfunc checks every value itself (finite numbers,
    Time and Amount >= 0), as the API does.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    inputs = Schema([ColSpec(AnyType() if name == "Time" else "double", name) for name in FEATURES])
    outputs = Schema([ColSpec("double", "score"), ColSpec("boolean", "fraudulent"), ColSpec("double", "threshold")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def save_model(
    path: str,
    mlflow_model: Model,
    *,
    pipeline: Pipeline,
    threshold: float,
    onnx_max_abs_diff: float,
    time_encoding: TimeEncoding,
    onnx_bytes: bytes,
    profile: ReferenceProfile,
    input_example: pd.DataFrame,
    pip_requirements: list[str],
) -> None:
    """Write the model directory at ``path`` (called by MLflow's ``Model.log``)."""
    import mlflow.sklearn
    from mlflow.pyfunc import FLAVOR_NAME

    spec = ServingSpec(
        threshold=threshold,
        onnx_path=f"{ARTIFACTS_DIR}/{ONNX_FILE}",
        onnx_max_abs_diff=onnx_max_abs_diff,
        time_encoding=time_encoding,
        profile_path=f"{ARTIFACTS_DIR}/{PROFILE_FILE}",
    )
    mlflow.sklearn.save_model(
        pipeline,
        path,
        mlflow_model=mlflow_model,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
        signature=signature(),
        input_example=input_example,
        pip_requirements=pip_requirements,
        metadata={**(mlflow_model.metadata or {}), **spec.as_metadata()},
    )
    root = Path(path)
    (root / ARTIFACTS_DIR).mkdir(exist_ok=True)
    (root / spec.onnx_path).write_bytes(onnx_bytes)
    profile.write(root / str(spec.profile_path))
    pyfunc = mlflow_model.flavors[FLAVOR_NAME]
    for sklearn_only in ("model_path", "predict_fn"):
        pyfunc.pop(sklearn_only, None)
    pyfunc.update({"loader_module": PYFUNC_LOADER, "data": ARTIFACTS_DIR})
    mlflow_model.save(str(root / "MLmodel"))
