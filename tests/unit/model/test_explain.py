"""Reason codes from the kernel's one explanation path: additive, ordered, bounded in exact work, loaded safely."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from fraudstream.model.explain import (
    METHOD_APPROXIMATE,
    METHOD_EXACT,
    ExplainerLoader,
    ExplainPolicy,
    ForestExplainer,
    describe,
    load_explainer,
)
from fraudstream.model.serving import FraudModel
from fraudstream.schemas import FEATURES, Explanation, Reason

from ..conftest import SmallForest

SKOPS_FLAVOR = {"sklearn": {"serialization_format": "skops", "pickled_model": "model.skops"}}


class RankProfile:
    """A stand-in reference profile: the quantile of a value is its rank among the training rows."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.sorted = {name: np.sort(matrix[:, i].astype(np.float64)) for i, name in enumerate(FEATURES)}

    def quantile_of(self, feature: str, values: np.ndarray) -> np.ndarray:
        column = self.sorted[feature]
        return np.searchsorted(column, values, side="left") / len(column)


@pytest.fixture(scope="module")
def explainer(small_forest: SmallForest) -> ForestExplainer:
    return small_forest.explainer()


@pytest.mark.parametrize("exact", [True, False], ids=["treeshap", "saabas"])
def test_contributions_plus_the_base_value_are_the_model_score(
    small_forest: SmallForest, explainer: ForestExplainer, exact: bool
) -> None:
    rows = small_forest.matrix()[:300]
    contributions = explainer.contributions(rows, exact=exact)
    assert contributions.shape == (300, len(FEATURES))
    total = contributions.sum(axis=1) + explainer.base_value
    sklearn_score = small_forest.pipeline.predict_proba(rows)[:, 1]
    assert np.max(np.abs(total - sklearn_score)) < 1e-9
    onnx_score = small_forest.engine.fraud_probability(rows)  # what the scorer and /predict answer
    assert np.max(np.abs(total - onnx_score)) < 1e-6


def test_reasons_are_the_top_k_positive_contributions_largest_first(
    small_forest: SmallForest, explainer: ForestExplainer
) -> None:
    rows = small_forest.matrix(frauds=True)[:20]
    explanations = ForestExplainer(small_forest.pipeline, ExplainPolicy(top_k=4, exact_budget_s=60.0)).explain(rows)
    contributions = explainer.contributions(rows, exact=True)
    for row, explanation in enumerate(explanations):
        assert explanation.method == METHOD_EXACT
        assert explanation.base_value == explainer.base_value
        expected = [i for i in np.argsort(-contributions[row], kind="stable")[:4] if contributions[row, i] > 0]
        assert [reason.feature for reason in explanation.reasons] == [FEATURES[i] for i in expected]
        assert [reason.contribution for reason in explanation.reasons] == [contributions[row, i] for i in expected]
        # the value the model saw (float32), written in its shortest form: -5.9532886, not -5.953288555145264
        assert [np.float32(reason.value) for reason in explanation.reasons] == [rows[row, i] for i in expected]
        assert all(len(repr(reason.value)) <= 12 for reason in explanation.reasons)
        assert all(reason.quantile is None for reason in explanation.reasons)  # no profile given


def test_a_row_gets_the_same_reasons_alone_or_in_a_batch(small_forest: SmallForest, explainer: ForestExplainer) -> None:
    rows = small_forest.matrix(frauds=True)[:12]
    together = explainer.explain(rows)
    alone = [explainer.explain(rows[i : i + 1])[0] for i in range(len(rows))]
    assert together == alone


def test_exact_work_is_bounded_per_call_and_the_rest_is_approximated(small_forest: SmallForest) -> None:
    rows = small_forest.matrix(frauds=True)[:10]
    bounded = ForestExplainer(small_forest.pipeline, ExplainPolicy(exact_budget_s=2.5))
    bounded.exact_row_s = 1.0  # as if a row cost a second: the budget holds two rows
    explanations = bounded.explain(rows)
    assert [e.method for e in explanations] == [METHOD_EXACT] * 2 + [METHOD_APPROXIMATE] * 8
    assert bounded.exact_row_s < 1.0  # the estimate follows what the two rows really cost

    bounded.exact_row_s = 1.0
    bounded.policy = ExplainPolicy(exact_budget_s=0.001)  # less than a row: the first row is still exact
    assert [e.method for e in bounded.explain(rows[:3])] == [METHOD_EXACT, METHOD_APPROXIMATE, METHOD_APPROXIMATE]

    never = ForestExplainer(small_forest.pipeline, ExplainPolicy(exact_budget_s=0.0)).explain(rows)
    assert {e.method for e in never} == {METHOD_APPROXIMATE}
    approximate = ForestExplainer(small_forest.pipeline, ExplainPolicy()).contributions(rows, exact=False)
    assert [r.contribution for r in never[5].reasons] == sorted(approximate[5][approximate[5] > 0], reverse=True)[:3]


def test_quantiles_come_from_the_profile(small_forest: SmallForest) -> None:
    profile = RankProfile(small_forest.matrix())
    rows = small_forest.matrix(frauds=True)[:5]
    for row, explanation in zip(rows, small_forest.explainer(profile=profile).explain(rows), strict=True):
        for reason in explanation.reasons:
            column = FEATURES.index(reason.feature)
            assert reason.quantile == pytest.approx(profile.quantile_of(reason.feature, row[column : column + 1])[0])


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (
            Reason(feature="V14", value=-9.8, contribution=0.3141, quantile=0.0004),
            "V14 = -9.8, lower than 99.9% of training rows, raised the score by 0.31",
        ),
        (
            Reason(feature="Amount", value=2125.87, contribution=0.02, quantile=0.97),
            "Amount = 2126, higher than 97% of training rows, raised the score by 0.02",
        ),
        (Reason(feature="V4", value=11.5, contribution=0.004, quantile=1.0), "V4 = 11.5, higher than every training "),
        (Reason(feature="V3", value=-1.25, contribution=0.12, quantile=None), "V3 = -1.25, raised the score by 0.12"),
    ],
)
def test_a_reason_reads_as_plain_words(reason: Reason, text: str) -> None:
    assert describe(reason).startswith(text)


def test_the_loader_builds_in_the_background_and_waits_on_first_use(small_forest: SmallForest) -> None:
    loader = small_forest.loader()
    rows = small_forest.matrix(frauds=True)[:3]
    explanations = loader.explain(rows)
    assert loader.ready
    assert loader.error is None
    assert loader.load_seconds is not None
    assert explanations == small_forest.explainer().explain(rows)


def test_a_model_without_an_explainer_answers_none_for_each_row(small_forest: SmallForest) -> None:
    model = FraudModel(name="m", version="1", threshold=0.5, engine=small_forest.engine)
    assert model.explain(small_forest.matrix()[:2]) == [None, None]
    with_reasons = FraudModel(name="m", version="1", threshold=0.5, engine=small_forest.engine)
    object.__setattr__(with_reasons, "explainer", small_forest.loader())
    assert all(isinstance(e, Explanation) for e in with_reasons.explain(small_forest.matrix()[:2]))


def test_the_registered_skops_forest_loads_and_explains_like_the_fitted_one(
    small_forest: SmallForest, tmp_path: Path
) -> None:
    import skops.io

    skops.io.dump(small_forest.pipeline, tmp_path / "model.skops")
    loader = load_explainer(tmp_path, SKOPS_FLAVOR, ExplainPolicy(exact_budget_s=60.0), label="m v1")
    assert loader is not None
    rows = small_forest.matrix(frauds=True)[:5]
    assert loader.explain(rows) == small_forest.explainer().explain(rows)


def test_a_pickled_model_is_never_loaded(small_forest: SmallForest, tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(small_forest.pipeline))
    flavors = {"sklearn": {"serialization_format": "cloudpickle", "pickled_model": "model.pkl"}}
    assert load_explainer(tmp_path, flavors, ExplainPolicy(), label="m v1") is None


def test_a_forest_with_untrusted_types_gives_no_reasons_but_no_crash(tmp_path: Path) -> None:
    import math

    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    skops.io.dump(FunctionTransformer(math.sqrt), tmp_path / "model.skops")  # skops trusts no math.sqrt
    loader = load_explainer(tmp_path, SKOPS_FLAVOR, ExplainPolicy(), label="m v1")
    assert isinstance(loader, ExplainerLoader)
    assert loader.explain(np.zeros((2, len(FEATURES)), dtype=np.float32)) == [None, None]
    assert loader.error is not None
    assert "Untrusted" in loader.error


def test_the_forest_reads_its_encoded_input_and_the_reasons_show_the_fields_as_sent(small_forest: SmallForest) -> None:
    def without_time(matrix: np.ndarray) -> np.ndarray:
        encoded = np.array(matrix, copy=True)
        encoded[:, 0] = 0.0
        return encoded

    rows = small_forest.matrix(frauds=True)[:10]
    explainer = ForestExplainer(small_forest.pipeline, ExplainPolicy(exact_budget_s=60.0), encode=without_time)
    contributions = explainer.contributions(rows)
    total = contributions.sum(axis=1) + explainer.base_value
    assert np.max(np.abs(total - small_forest.pipeline.predict_proba(without_time(rows))[:, 1])) < 1e-9
    for row, explanation in zip(rows, explainer.explain(rows), strict=True):
        for reason in explanation.reasons:
            assert np.float32(reason.value) == row[FEATURES.index(reason.feature)]  # the value as sent
