"""Everything the trainer writes to MLflow: the run (params, datasets, metrics, figures, model) and the registry."""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudstream.model.explain import SKOPS_TRUSTED_TYPES
from fraudstream.schemas import FEATURES, LABEL_COLUMN
from fraudstream.settings import Settings
from trainer import model_dir, plots
from trainer.champion import HoldoutRecord
from trainer.exceptions import TrainingError
from trainer.pipeline import MODEL_PARAMS
from trainer.split import CONTENT_SCHEME

if TYPE_CHECKING:
    from imblearn.pipeline import Pipeline
    from matplotlib.figure import Figure
    from mlflow import MlflowClient

    from fraudstream.model.features import TimeEncoding
    from fraudstream.model.profile import ReferenceProfile
    from trainer.config import TrainConfig
    from trainer.split import Splits
    from trainer.stages import Data, Fitted

MODEL_ARTIFACT = "model"
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


def log_datasets(frames: dict[str, pd.DataFrame], source: str, sha256: str, label: str, variant: str = "") -> None:
    """The run's inputs as MLflow datasets (the run page's "Datasets"): one per context (training, holdout),
    named by the file and digested by its SHA-256 (and ``variant``: the labels analysts' verdicts changed), so
    runs on the same rows with the same labels show the same dataset."""
    import mlflow

    for context, frame in frames.items():
        with warnings.catch_warnings():  # "integer columns cannot hold missing values": Class never misses one
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(
                frame,
                source=source,
                targets=label,
                name=f"creditcard-{context}",
                digest=f"{sha256[:12]}{variant}-{context}",
            )
            mlflow.log_input(dataset, context=context)


def log_figures(figures: dict[str, Figure]) -> None:
    import mlflow

    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}.png")


def log_json(payload: dict[str, Any], artifact_file: str) -> None:
    import mlflow

    mlflow.log_dict(json.loads(json.dumps(payload, default=str)), artifact_file)


def log_test_predictions(rows: np.ndarray, labels: np.ndarray, scores: np.ndarray, threshold: float) -> None:
    """The holdout rows' scores and decisions, so anyone can check a loaded model reproduces them."""
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
    subprocess and costs seconds a run). The pyfunc's loader is fraudstream's own kernel, which must be installed
    where the model is loaded (it is not on PyPI under that name)."""
    packages = ("scikit-learn", "imbalanced-learn", "skops", "numpy", "scipy", "pandas", "pydantic", "onnxruntime")
    return [f"{package}=={installed_version(package)}" for package in packages]


@dataclass(frozen=True)
class ServingFacts:
    """What the serving spec records beside the files: the threshold, the parity measured, the Time encoding."""

    threshold: float
    onnx_max_abs_diff: float
    time_encoding: TimeEncoding


def log_model(
    pipeline: Pipeline, facts: ServingFacts, onnx_bytes: bytes, profile: ReferenceProfile, example: pd.DataFrame
) -> str:
    """Log the model directory (pyfunc over ONNX, serving spec, profile, sklearn pipeline); return its URI."""
    from mlflow.models import Model

    check_trusted_types(pipeline)
    info = Model.log(
        None,  # artifact_path: deprecated in favour of name, still positional
        name=MODEL_ARTIFACT,
        flavor=model_dir,
        pipeline=pipeline,
        threshold=facts.threshold,
        onnx_max_abs_diff=facts.onnx_max_abs_diff,
        time_encoding=facts.time_encoding,
        onnx_bytes=onnx_bytes,
        profile=profile,
        input_example=example,
        pip_requirements=model_requirements(),
    )
    return info.model_uri


def run_params(config: TrainConfig, data: Data, splits: Splits) -> dict[str, object]:
    """The parameters that applied to this run, and only those."""
    record = HoldoutRecord(
        kind=splits.kind,
        share=splits.share,
        data_sha256=data.summary.sha256,
        scheme=CONTENT_SCHEME if splits.kind == "content" else None,
    )
    values = config.model_dump(mode="json")
    params: dict[str, object] = {**record.params(), "folds": config.folds}
    params |= {name: values[name] for name in MODEL_PARAMS}
    params |= {"n_jobs": config.n_jobs, "bootstrap_rounds": config.bootstrap_rounds, "feedback": config.feedback}
    if data.choice.synthetic and config.data is None:
        params["synthetic_rows"] = config.synthetic_rows
    return params


def relabelled_variant(data: Data) -> str:
    """A digest suffix naming the labels the verdicts changed ("" when none did)."""
    relabelling = data.relabelling
    if relabelling is None or not relabelling.changed:
        return ""
    labels = data.frame[LABEL_COLUMN].to_numpy()[relabelling.changed_rows].tolist()
    changes = json.dumps([relabelling.changed_rows, labels]).encode()
    return f"-fb{hashlib.sha256(changes).hexdigest()[:8]}"


def log_feedback(data: Data, splits: Splits) -> None:
    """How many labels the analysts' verdicts changed (metrics, tags, and the rows themselves as an artifact)."""
    import mlflow

    relabelling = data.relabelling
    if relabelling is None:
        return
    changed = np.asarray(relabelling.changed_rows, dtype=np.int64)
    in_holdout = int(np.isin(changed, splits.test.rows).sum())
    mlflow.log_metrics(
        {
            "feedback_verdicts": relabelling.verdicts,
            "feedback_rows_matched": relabelling.matched,
            "feedback_labels_changed": relabelling.changed,
            "feedback_labels_changed_holdout": in_holdout,
        }
    )
    mlflow.set_tags(
        {
            "feedback.topic": data.feedback_topic or "",
            "feedback.labels_changed": str(relabelling.changed),
        }
    )
    labels = data.frame[LABEL_COLUMN].to_numpy()
    log_json(
        {
            "summary": relabelling.describe(),
            "changed": [{"row": int(row), "label": int(labels[row])} for row in changed],
            "other_files": relabelling.other_files,
            "out_of_range": relabelling.out_of_range,
        },
        "feedback/relabelled_rows.json",
    )


def log_run(config: TrainConfig, data: Data, splits: Splits, candidate: Fitted, seconds: dict[str, float]) -> str:
    """The MLflow logging block: parameters, datasets, metrics, figures, predictions and the model."""
    import mlflow

    g, summary, evaluation, threshold = candidate.gate, data.summary, candidate.evaluation, candidate.threshold
    mlflow.log_params({**run_params(config, data, splits), "min_f1": g.min_f1, "gate_rule": g.rule})
    mlflow.set_tags(
        {
            "data.path": str(data.choice.path),
            "data.synthetic": str(data.choice.synthetic).lower(),
            "data.sha256": summary.sha256,
        }
    )
    columns = [*FEATURES, LABEL_COLUMN]
    log_datasets(
        {
            "training": data.frame.iloc[splits.train.rows][columns],
            "holdout": data.frame.iloc[splits.test.rows][columns],
        },
        source=str(data.choice.path),
        sha256=summary.sha256,
        label=LABEL_COLUMN,
        variant=relabelled_variant(data),
    )
    log_feedback(data, splits)
    log_json(
        {
            "path": str(data.choice.path),
            "synthetic": data.choice.synthetic,
            "rows": summary.rows,
            "frauds": summary.frauds,
            "sha256": summary.sha256,
            "splits": splits.sizes(),
        },
        "dataset_summary.json",
    )
    mlflow.log_metrics(
        {
            **evaluation.metrics(),
            "gate_p_f1_at_least_min": g.p_at_least_min,
            "threshold": threshold.threshold,
            "oof_f1": threshold.f1,
            "oof_precision": threshold.precision,
            "oof_recall": threshold.recall,
            "oof_pr_auc": threshold.pr_auc,
            "onnx_max_abs_diff": candidate.onnx_diff,
            "oof_seconds": seconds["oof"],
            "fit_seconds": seconds["fit"],
            "dataset_rows": summary.rows,
            "dataset_frauds": summary.frauds,
        }
    )
    log_figures(
        {
            "pr_curve": plots.pr_curve(splits.test.y, candidate.test_scores, evaluation),
            "confusion_matrix": plots.confusion_matrix(evaluation),
            "feature_importances": plots.feature_importances(
                FEATURES, candidate.pipeline.steps[-1][1].feature_importances_
            ),
        }
    )
    log_test_predictions(splits.test.rows, splits.test.y, candidate.test_scores, threshold.threshold)
    return log_model(
        candidate.pipeline,
        ServingFacts(threshold.threshold, candidate.onnx_diff, config.time_encoding),
        candidate.onnx_bytes,
        candidate.profile,
        splits.test.X.head(5).reset_index(drop=True),
    )


def register(
    client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, str], description: str
) -> str:
    """A new version of ``name`` from the logged model; returns its version number."""
    import mlflow

    version = mlflow.register_model(model_uri, name, tags=tags)
    client.update_model_version(name, version.version, description=description)
    return str(version.version)
