"""The model: an imbalanced-learn Pipeline(SMOTE, RandomForest). imblearn applies samplers in fit only, so
synthetic frauds are made from the rows the pipeline is fitted on and never reach the rows it is scored on."""

from __future__ import annotations

from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn.ensemble import RandomForestClassifier

from trainer.config import TrainConfig

MODEL_PARAMS: tuple[str, ...] = (
    "n_estimators",
    "max_depth",
    "min_samples_leaf",
    "max_features",
    "class_weight",
    "max_samples",
    "smote_ratio",
    "smote_k_neighbors",
    "time_encoding",
    "seed",
)
"""The TrainConfig fields that shape the fitted model (logged as MLflow parameters)."""


def build_pipeline(config: TrainConfig) -> Pipeline:
    smote = SMOTE(
        sampling_strategy=config.smote_ratio,
        k_neighbors=config.smote_k_neighbors,
        random_state=config.seed,
    )
    forest = RandomForestClassifier(
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        min_samples_leaf=config.min_samples_leaf,
        max_features=config.max_features,
        class_weight=config.class_weight,
        max_samples=config.max_samples,
        n_jobs=config.n_jobs,
        random_state=config.seed,
    )
    return Pipeline([("smote", smote), ("forest", forest)])
