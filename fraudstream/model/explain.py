"""Reason codes: why the registered forest gave a transaction its fraud probability, for the scorer and the API alike.

The serving engine is ONNX, which scores but cannot explain. The same registered version also holds the fitted
sklearn forest (the MLflow model's skops file); shap's TreeExplainer attributes its probability to the inputs:

* exact TreeSHAP (``treeshap``, path-dependent Shapley values): milliseconds a row, whatever the row (the
  algorithm walks every node of every tree), so a whole scorer batch cannot have it;
* the Saabas path attribution (``saabas``, shap's ``approximate=True``): hundreds of times cheaper in batches, but
  it credits only the splits on the row's own path and overweights those near the leaves.

(The costs on our machine: benchmarks/README.md, "Figures behind the code".)

Both are additive: ``base_value`` plus the contributions of all 30 features is the forest's probability, which ONNX
reproduces within 1e-6. Exact rows are bounded per call (one scorer batch, one API request) by a time budget,
``ExplainPolicy.exact_budget_s``: the rows beyond it get the approximation, and each explanation names its method.
The budget is spent on the first rows of the call, from a running estimate of the exact cost of a row; the first
row is always exact unless the budget is 0.

Loading costs seconds of imports (sklearn, imblearn, skops, shap), so :class:`ExplainerLoader` parses the forest in
a background thread while the model already scores; the first explanation waits for it (at most ``load_wait_s``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from fraudstream.schemas import FEATURES, Explanation, ExplanationMethod, Reason

if TYPE_CHECKING:
    from fraudstream.model.explain_process import ExplainerProcess
    from fraudstream.settings import Settings

log = logging.getLogger(__name__)

METHOD_EXACT: ExplanationMethod = "treeshap"
METHOD_APPROXIMATE: ExplanationMethod = "saabas"
FRAUD_OUTPUT = 1
"""Column of the fraud class in the forest's outputs (and in shap's last axis)."""

SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    "imblearn.over_sampling._smote.base.SMOTE",
    "imblearn.pipeline.Pipeline",
    "sklearn.tree._tree.Tree",
)
"""The types beyond skops' own safe list that a registered pipeline holds (the trainer checks it at save time)."""

_COST_MEMORY = 0.3
"""Weight of the newest measurement in the running estimate of an exact row's cost."""


@dataclass(frozen=True)
class ExplainPolicy:
    """How many reasons, how much exact TreeSHAP per call, and how long the first call waits for the forest."""

    top_k: int = 3
    exact_budget_s: float = 0.008
    load_wait_s: float = 60.0
    process: bool = False
    """Explain in a worker process of its own (:mod:`fraudstream.model.explain_process`), off the caller's GIL."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ExplainPolicy:
        return cls(top_k=settings.explain_top_k, exact_budget_s=settings.explain_exact_budget_ms / 1000)


class QuantileSource(Protocol):
    """Where a value sits among the training rows (the model's reference profile satisfies it)."""

    def quantile_of(self, feature: str, values: np.ndarray) -> np.ndarray: ...


class ForestExplainer:
    """Reason codes of a fitted sklearn forest (or a pipeline ending in one) through shap's TreeExplainer."""

    def __init__(
        self,
        forest: Any,
        policy: ExplainPolicy,
        profile: QuantileSource | None = None,
        encode: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        """``encode`` turns the 30 transaction fields into what the forest reads (e.g. its Time encoding); the
        reasons still show each field as the transaction sent it."""
        import shap

        if hasattr(forest, "steps"):  # the registered imblearn Pipeline: SMOTE acts in fit only, the forest scores
            forest = forest.steps[-1][1]
        self.policy = policy
        self.profile = profile
        self.encode = encode
        self._tree = shap.TreeExplainer(forest, feature_perturbation="tree_path_dependent")
        self.base_value = float(np.atleast_1d(self._tree.expected_value)[FRAUD_OUTPUT])
        self.exact_row_s = self._calibrate()

    def contributions(self, matrix: np.ndarray, *, exact: bool = True) -> np.ndarray:
        """Each feature's contribution to the fraud probability of each row of transaction fields: (n, 30), float64."""
        inputs = matrix if self.encode is None else self.encode(matrix)
        values = np.asarray(self._tree.shap_values(inputs, approximate=not exact, check_additivity=False))
        return values[..., FRAUD_OUTPUT] if values.ndim == 3 else values

    def exact_capacity(self) -> int:
        """Rows the exact method may take in one call, from the budget and the running cost estimate: at least
        one while the budget is above 0 (so a single /predict answer is always exact), none at 0."""
        if self.policy.exact_budget_s <= 0:
            return 0
        return max(1, int(self.policy.exact_budget_s / self.exact_row_s))

    def explain(self, features: np.ndarray) -> list[Explanation]:
        """One explanation per row of an (n, 30) matrix in FEATURES order: exact while the budget lasts."""
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        rows = len(matrix)
        if rows == 0:
            return []
        exact = min(rows, self.exact_capacity())
        parts = []
        if exact:
            started = time.perf_counter()
            parts.append(self.contributions(matrix[:exact], exact=True))
            measured = (time.perf_counter() - started) / exact
            self.exact_row_s = (1 - _COST_MEMORY) * self.exact_row_s + _COST_MEMORY * measured
        if exact < rows:
            parts.append(self.contributions(matrix[exact:], exact=False))
        methods = [METHOD_EXACT] * exact + [METHOD_APPROXIMATE] * (rows - exact)
        return self._explanations(matrix, np.concatenate(parts), methods)

    def _explanations(
        self, matrix: np.ndarray, contributions: np.ndarray, methods: list[ExplanationMethod]
    ) -> list[Explanation]:
        # Built without validation (model_construct, ~5x cheaper in a burst): every field comes from here, in range:
        # FEATURES names, finite float32 values (the schema refused the rest), finite contributions, quantiles
        # clipped to [0, 1].
        top = np.argsort(-contributions, axis=1, kind="stable")[:, : self.policy.top_k]
        quantiles = self._quantiles(matrix)
        explanations = []
        for row, method in enumerate(methods):
            reasons = [
                Reason.model_construct(
                    feature=FEATURES[column],
                    value=float(str(matrix[row, column])),  # the float32 the model saw, in its shortest form
                    contribution=float(contributions[row, column]),
                    quantile=None if quantiles is None else float(quantiles[row, column]),
                )
                for column in top[row].tolist()
                if contributions[row, column] > 0
            ]
            explanations.append(Explanation.model_construct(method=method, base_value=self.base_value, reasons=reasons))
        return explanations

    def _quantiles(self, matrix: np.ndarray) -> np.ndarray | None:
        if self.profile is None:
            return None
        out = np.empty(matrix.shape, dtype=np.float64)
        for column, name in enumerate(FEATURES):
            out[:, column] = self.profile.quantile_of(name, matrix[:, column].astype(np.float64))
        return np.clip(out, 0.0, 1.0)

    def _calibrate(self) -> float:
        """Seconds an exact row costs, measured once on two rows (the cost barely depends on the values)."""
        sample = np.zeros((2, len(FEATURES)), dtype=np.float32)
        started = time.perf_counter()
        self.contributions(sample, exact=True)
        return max((time.perf_counter() - started) / 2, 1e-6)


class ExplainerLoader:
    """A ForestExplainer built in a background thread; ``explain()`` waits for it, then delegates.

    When building fails (an unreadable file, an untrusted type), the error is logged once and every explanation is
    None: alerts and answers still go out, without reasons.
    """

    def __init__(self, build: Callable[[], ForestExplainer], *, label: str, wait_s: float = 60.0) -> None:
        self.label = label
        self.wait_s = wait_s
        self.error: str | None = None
        self.load_seconds: float | None = None
        self._explainer: ForestExplainer | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._build, args=(build,), name=f"explainer-{label}", daemon=True)
        self._thread.start()

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def loaded(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the build to end (quietly); True once it has, whether it failed or not."""
        return self._done.wait(timeout)

    def wait(self, timeout: float | None = None) -> ForestExplainer | None:
        """The explainer once built (None when it failed or is not built within the timeout)."""
        if not self._done.wait(self.wait_s if timeout is None else timeout):
            log.warning("the explainer of %s is not loaded after %.0f s: no reasons for now", self.label, self.wait_s)
            return None
        return self._explainer

    def explain(self, features: np.ndarray) -> list[Explanation | None]:
        explainer = self.wait() if len(features) else None
        if explainer is None:
            return [None] * len(features)
        return list(explainer.explain(features))

    def _build(self, build: Callable[[], ForestExplainer]) -> None:
        started = time.perf_counter()
        try:
            self._explainer = build()
        except Exception as exc:  # skops, sklearn and shap raise many kinds; the model still scores without reasons
            self.error = f"{exc.__class__.__name__}: {exc}"
            log.error("cannot load the explainer of %s, alerts go out without reasons: %s", self.label, self.error)
        else:
            self.load_seconds = time.perf_counter() - started
            log.info(
                "explainer loaded",
                extra={
                    "model": self.label,
                    "seconds": round(self.load_seconds, 2),
                    "exact_row_ms": round(self._explainer.exact_row_s * 1000, 2),
                },
            )
        finally:
            self._done.set()


def forest_from_skops(data: bytes) -> Any:
    """The pipeline of a skops file, trusting only the reviewed types (skops refuses anything else)."""
    import skops.io

    return skops.io.loads(data, trusted=list(SKOPS_TRUSTED_TYPES))


def load_explainer(
    model_dir: Path,
    flavors: Mapping[str, Any],
    policy: ExplainPolicy,
    *,
    label: str,
    profile: QuantileSource | None = None,
    encode: Callable[[np.ndarray], np.ndarray] | None = None,
) -> ExplainerLoader | ExplainerProcess | None:
    """Read the forest of a downloaded MLflow sklearn model now and build its explainer in the background (in a
    worker process with ``policy.process``: ``encode`` and ``profile`` must then pickle).

    None (logged) when the version holds no skops forest: a pickled model is never loaded, since unpickling can
    run arbitrary code.
    """
    sklearn = flavors.get("sklearn") or {}
    if sklearn.get("serialization_format") != "skops" or not sklearn.get("pickled_model"):
        log.warning("%s holds no skops forest (format %s): no reasons", label, sklearn.get("serialization_format"))
        return None
    path = model_dir / str(sklearn["pickled_model"])
    try:
        data = path.read_bytes()  # now: the download folder is gone once the registry returns
    except OSError as exc:
        log.error("cannot read the forest of %s (%s): no reasons", label, exc)
        return None
    if policy.process:
        from fraudstream.model.explain_process import ExplainerProcess

        return ExplainerProcess(data, policy, profile, encode, label=label)
    return ExplainerLoader(
        lambda: ForestExplainer(forest_from_skops(data), policy, profile, encode),
        label=label,
        wait_s=policy.load_wait_s,
    )


def describe(reason: Reason) -> str:
    """The reason in plain words: ``V14 = -9.8, lower than 99.9% of training rows, raised the score by 0.31``."""
    parts = [f"{reason.feature} = {_number(reason.value)}"]
    if reason.quantile is not None:
        parts.append(_position(reason.quantile))
    amount = f"{reason.contribution:.2f}" if reason.contribution >= 0.01 else f"{reason.contribution:.1g}"
    return ", ".join(parts) + f", raised the score by {amount}"


def _number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def _position(quantile: float) -> str:
    if quantile >= 1.0:
        return "higher than every training row"
    if quantile <= 0.0:
        return "lower than every training row"
    if quantile >= 0.5:
        return f"higher than {_percent(quantile)} of training rows"
    return f"lower than {_percent(1.0 - quantile)} of training rows"


def _percent(share: float) -> str:
    """Rounded down to 0.1%, so that "99.9%" is never said of 99.86%."""
    text = f"{math.floor(share * 1000) / 10:.1f}".removesuffix(".0")
    return f"{text}%"
