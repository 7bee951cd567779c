"""Fixtures of the unit tests: one small real forest (sklearn, its ONNX twin and its explainer), fitted once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudstream.model.engine import OnnxEngine, forest_to_onnx
from fraudstream.model.explain import ExplainerLoader, ExplainPolicy, ForestExplainer
from fraudstream.schemas import FEATURES


@dataclass(frozen=True)
class SmallForest:
    """A RandomForest fitted on synthetic rows, compiled to ONNX the way the trainer does."""

    pipeline: Any  # sklearn Pipeline([("forest", RandomForestClassifier)])
    engine: OnnxEngine
    frame: pd.DataFrame  # the rows it was fitted on (Class included)

    @property
    def forest(self) -> Any:
        return self.pipeline.steps[-1][1]

    def matrix(self, frauds: bool | None = None) -> np.ndarray:
        rows = self.frame if frauds is None else self.frame[self.frame["Class"] == int(frauds)]
        return rows[list(FEATURES)].to_numpy(dtype=np.float32)

    def explainer(self, policy: ExplainPolicy | None = None, profile: Any = None) -> ForestExplainer:
        return ForestExplainer(self.pipeline, policy or ExplainPolicy(exact_budget_s=60.0), profile)

    def loader(self, policy: ExplainPolicy | None = None, profile: Any = None) -> ExplainerLoader:
        return ExplainerLoader(lambda: self.explainer(policy, profile), label="small forest")


@pytest.fixture(scope="session")
def small_forest() -> SmallForest:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    from fraudstream.data.synth import generate

    frame = generate(4000, seed=1, fraud_rate=0.05)
    forest = RandomForestClassifier(n_estimators=8, max_depth=5, n_jobs=1, random_state=1)
    forest.fit(frame[list(FEATURES)].to_numpy(dtype=np.float32), frame["Class"].to_numpy())
    pipeline = Pipeline([("forest", forest)])
    return SmallForest(pipeline=pipeline, engine=OnnxEngine(forest_to_onnx(pipeline)), frame=frame)  # type: ignore[arg-type]
