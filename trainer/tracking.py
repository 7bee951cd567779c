"""Everything the trainer writes to MLflow: the run (params, dataset, metrics, figures, model) and the registry."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudstream.model.serving import ServingSpec
from fraudstream.settings import Settings
from trainer.exceptions import TrainingError
from trainer.pipeline import SKOPS_TRUSTED_TYPES

if TYPE_CHECKING:
    from imblearn.pipeline import Pipeline
    from matplotlib.figure import Figure
    from mlflow import MlflowClient

MODEL_ARTIFACT = "model"
ONNX_FILE = "model.onnx"
PREDICTIONS_ARTIFACT = "evaluation/test_predictions.csv"


def use_store(settings: Settings) -> None:
    """Point MLflow's fluent API at the configured store (MLflow also exports it as MLFLOW_TRACKING_URI)."""
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)


def ensure_experiment(settings: Settings) -> str:
    """The experiment's id, created with the configured artifact location on first use."""
    import mlflow

    found = mlflow.get_experiment_by_name(settings.mlflow_experiment)
    if found is not None:
        return found.experiment_id
    return mlflow.create_experiment(settings.mlflow_experiment, artifact_location=settings.artifact_location)


def log_figures(figures: dict[str, Figure]) -> None:
    import mlflow

    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}.png")


def log_json(payload: dict[str, Any], artifact_file: str) -> None:
    import mlflow

    mlflow.log_dict(json.loads(json.dumps(payload, default=str)), artifact_file)


def log_test_predictions(rows: np.ndarray, labels: np.ndarray, scores: np.ndarray, threshold: float) -> None:
    """The test rows' scores and decisions, so anyone can check a loaded model reproduces them."""
    import mlflow

    frame = pd.DataFrame({"row": rows, "label": labels, "score": scores, "flagged": (scores >= threshold).astype(int)})
    mlflow.log_text(frame.to_csv(index=False, float_format="%.9g"), PREDICTIONS_ARTIFACT)


def check_trusted_types(pipeline: Pipeline) -> None:
    """Fail before logging if skops would need to trust a type we have not reviewed."""
    import skops.io

    needed = set(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))
    unexpected = needed - set(SKOPS_TRUSTED_TYPES)
    if unexpected:
        raise TrainingError(f"the pipeline holds types not reviewed for skops loading: {sorted(unexpected)}")


def model_requirements() -> list[str]:
    """Pinned requirements of the logged model, stated rather than inferred (inference reloads the model in a
    subprocess and costs ~5 s a run)."""
    from importlib.metadata import version

    packages = ("scikit-learn", "imbalanced-learn", "skops", "numpy", "scipy", "onnxruntime")
    return [f"{package}=={version(package)}" for package in packages]


def log_model(
    pipeline: Pipeline, spec_threshold: float, onnx_bytes: bytes, onnx_diff: float, example: pd.DataFrame
) -> str:
    """Log the sklearn pipeline (skops, with its ONNX twin and serving metadata); return its model URI."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    check_trusted_types(pipeline)
    spec = ServingSpec(threshold=spec_threshold, onnx_path=f"extra_files/{ONNX_FILE}", onnx_max_abs_diff=onnx_diff)
    signature = infer_signature(example, pipeline.predict_proba(example))
    with tempfile.TemporaryDirectory(prefix="fraudstream-onnx-") as tmp:
        onnx_path = Path(tmp) / ONNX_FILE
        onnx_path.write_bytes(onnx_bytes)
        info = mlflow.sklearn.log_model(
            pipeline,
            name=MODEL_ARTIFACT,
            # skops, not pickle: loading cannot run arbitrary code; the few types it does not know are listed.
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
            skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
            signature=signature,
            input_example=example,
            pyfunc_predict_fn="predict_proba",
            metadata=spec.as_metadata(),
            extra_files=[str(onnx_path)],
            pip_requirements=model_requirements(),
        )
    return info.model_uri


def register(
    client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, str], description: str
) -> str:
    """A new version of ``name`` from the logged model; returns its version number."""
    import mlflow

    version = mlflow.register_model(model_uri, name, tags=tags)
    client.update_model_version(name, version.version, description=description)
    return str(version.version)
