"""What a registered model version carries for serving, and the loaded model every scorer and API uses.

Contract with the trainer: the version is an MLflow model directory whose MLmodel ``metadata`` holds a
``fraudstream`` entry (:class:`ServingSpec`: threshold, feature order, Time encoding, where the ONNX file and
the reference profile are) beside those files. One model, one threshold, one scoring path for the stream, the
API and the MLflow pyfunc: :func:`open_model_dir` builds the :class:`FraudModel` all of them use.

Versions logged before spec 2 (an sklearn flavour with ``extra_files/model.onnx``, raw Time, no profile)
still load.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fraudstream.exceptions import ModelLoadError
from fraudstream.model.engine import OnnxEngine
from fraudstream.model.features import TimeEncoding, model_input
from fraudstream.model.profile import ReferenceProfile
from fraudstream.schemas import FEATURES

if TYPE_CHECKING:
    from collections.abc import Callable

    from fraudstream.model.explain import ExplainerLoader, ExplainPolicy
    from fraudstream.model.explain_process import ExplainerProcess
    from fraudstream.schemas import Explanation

METADATA_KEY = "fraudstream"
SPEC_VERSION = 2
"""2: ``time_encoding`` and ``profile_path``. A reader refuses a newer spec rather than misread it."""


class ServingSpec(BaseModel):
    """Serving facts written by the trainer into the model's MLmodel metadata."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    spec_version: int = SPEC_VERSION
    threshold: float = Field(ge=0.0, le=1.0)
    features: tuple[str, ...] = FEATURES
    onnx_path: str = Field(description="Path of the ONNX file inside the model directory.")
    onnx_max_abs_diff: float | None = Field(None, description="Largest |ONNX - sklearn| probability measured.")
    time_encoding: TimeEncoding = Field("raw", description="How Time is fed to the forest (model/features.py).")
    profile_path: str | None = Field(None, description="Path of reference_profile.json inside the model directory.")

    def as_metadata(self) -> dict[str, Any]:
        return {METADATA_KEY: self.model_dump(mode="json")}

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any] | None, where: str) -> ServingSpec:
        if not metadata or METADATA_KEY not in metadata:
            raise ModelLoadError(f"{where} was not logged by the fraudstream trainer (no serving metadata)")
        spec = cls.model_validate(metadata[METADATA_KEY])
        if spec.spec_version > SPEC_VERSION:
            raise ModelLoadError(
                f"{where} was logged by a newer fraudstream (serving spec {spec.spec_version} > {SPEC_VERSION})"
            )
        return spec


@dataclass(frozen=True)
class FraudModel:
    """A loaded model version: scores a feature matrix and flags scores at or above its threshold."""

    name: str
    version: str
    threshold: float
    engine: OnnxEngine
    run_id: str | None = None
    time_encoding: TimeEncoding = "raw"
    profile: ReferenceProfile | None = None
    """The training rows' profile (None for versions logged before it existed)."""
    explainer: ExplainerLoader | ExplainerProcess | None = None
    """Reason codes from the same version's forest; None when explanations are off or the version has no forest."""

    def score(self, features: np.ndarray) -> np.ndarray:
        """Fraud probabilities for an (n, 30) matrix of the transaction fields in FEATURES order."""
        return self.engine.fraud_probability(model_input(features, self.time_encoding))

    def flags(self, scores: np.ndarray) -> np.ndarray:
        return scores >= self.threshold

    def explain(self, features: np.ndarray) -> list[Explanation | None]:
        """Reason codes of rows of an (n, 30) matrix (callers pass the flagged ones); None each without an explainer."""
        if self.explainer is None:
            return [None] * len(features)
        return self.explainer.explain(features)

    def explain_later(self, features: np.ndarray) -> Callable[[], list[Explanation | None]]:
        """:meth:`explain`, collected later: an explainer in a worker process starts on the rows now and the
        result waits for it; any other explains now."""
        if self.explains_elsewhere:
            later: Callable[[], list[Explanation | None]] = self.explainer.submit(features)  # type: ignore[union-attr]
            return later
        explanations = self.explain(features)
        return lambda: explanations

    def close(self) -> None:
        """Release what the model holds outside this process (an explainer's worker: it finishes the rows sent)."""
        close = getattr(self.explainer, "close", None)
        if close is not None:
            close(wait=False)

    @property
    def explains_elsewhere(self) -> bool:
        """True when the reason codes are computed in a worker process (:meth:`explain_later` returns at once)."""
        return hasattr(self.explainer, "submit")

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


def open_model_dir(
    root: Path,
    *,
    name: str,
    version: str,
    run_id: str | None = None,
    explain_policy: ExplainPolicy | None = None,
) -> FraudModel:
    """The scoring model of a local model directory (its MLmodel, ONNX file and profile), with reason codes from
    its forest when ``explain_policy`` is given (the forest is read now: a download folder may go away after)."""
    from mlflow.models import Model

    from fraudstream.model.explain import load_explainer

    where = f"{name} v{version}"
    try:
        mlmodel = Model.load(str(root / "MLmodel"))
    except Exception as exc:  # MLflow raises many kinds here (file system, YAML)
        raise ModelLoadError(f"cannot read the MLmodel file of {where}: {exc}") from exc
    spec = ServingSpec.from_metadata(mlmodel.metadata, where)
    engine = OnnxEngine.from_path(root / spec.onnx_path)
    profile = ReferenceProfile.read(root / spec.profile_path) if spec.profile_path else None
    time_encoding = spec.time_encoding
    explainer = None
    if explain_policy is not None:
        explainer = load_explainer(
            root,
            mlmodel.flavors,
            explain_policy,
            label=where,
            profile=profile,
            encode=functools.partial(model_input, encoding=time_encoding),  # picklable, for a worker process
        )
    return FraudModel(
        name=name,
        version=version,
        threshold=spec.threshold,
        engine=engine,
        run_id=run_id,
        time_encoding=spec.time_encoding,
        profile=profile,
        explainer=explainer,
    )
