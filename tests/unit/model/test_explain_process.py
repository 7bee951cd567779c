"""Reason codes in a worker process (FRAUD_SCORER_EXPLAIN_PROCESS): the same explanations as in-process, collected
later; a forest that cannot load, or a worker that dies, gives alerts without reasons, never a crash."""

from __future__ import annotations

import functools
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from fraudstream.model.explain import ExplainPolicy, load_explainer
from fraudstream.model.explain_process import ExplainerProcess
from fraudstream.model.features import model_input
from fraudstream.model.serving import FraudModel
from fraudstream.schemas import FEATURES

from ..conftest import SmallForest

SKOPS_FLAVOR = {"sklearn": {"serialization_format": "skops", "pickled_model": "model.skops"}}


@pytest.fixture(scope="module")
def forest_dir(small_forest: SmallForest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skops.io

    folder = tmp_path_factory.mktemp("forest")
    skops.io.dump(small_forest.pipeline, folder / "model.skops")
    return folder


@pytest.fixture(scope="module")
def remote(forest_dir: Path) -> ExplainerProcess:
    policy = ExplainPolicy(exact_budget_s=60.0, process=True)
    encode = functools.partial(model_input, encoding="time_of_day")  # what serving passes: it must pickle
    explainer = load_explainer(forest_dir, SKOPS_FLAVOR, policy, label="m v1", encode=encode)
    assert isinstance(explainer, ExplainerProcess)
    assert explainer.loaded(120)
    yield explainer
    explainer.close()


def test_the_worker_explains_exactly_as_in_process(
    small_forest: SmallForest, forest_dir: Path, remote: ExplainerProcess
) -> None:
    encode = functools.partial(model_input, encoding="time_of_day")
    local = load_explainer(forest_dir, SKOPS_FLAVOR, ExplainPolicy(exact_budget_s=60.0), label="m v1", encode=encode)
    assert local is not None
    rows = small_forest.matrix(frauds=True)[:6]
    later = remote.submit(rows)  # returns at once; the rows are being explained meanwhile
    assert later() == local.explain(rows)
    assert remote.error is None
    assert remote.load_seconds is not None
    assert remote.wait(1) is remote


def test_a_model_explains_later_only_with_a_worker(small_forest: SmallForest, remote: ExplainerProcess) -> None:
    rows = small_forest.matrix(frauds=True)[:2]
    model = FraudModel(name="m", version="1", threshold=0.5, engine=small_forest.engine)
    assert not model.explains_elsewhere
    assert model.explain_later(rows)() == [None, None]
    object.__setattr__(model, "explainer", remote)
    assert model.explains_elsewhere
    assert [e.method for e in model.explain_later(rows)() if e is not None] == ["treeshap", "treeshap"]


def test_a_forest_that_cannot_load_gives_no_reasons_and_no_crash(tmp_path: Path) -> None:
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    skops.io.dump(FunctionTransformer(math.sqrt), tmp_path / "model.skops")  # skops trusts no math.sqrt
    explainer = load_explainer(tmp_path, SKOPS_FLAVOR, ExplainPolicy(process=True), label="m v1")
    assert isinstance(explainer, ExplainerProcess)
    try:
        assert explainer.loaded(120)
        assert explainer.explain(np.zeros((2, len(FEATURES)), dtype=np.float32)) == [None, None]
        assert explainer.error is not None
        assert "Untrusted" in explainer.error
        assert explainer.wait(1) is None
    finally:
        explainer.close()


def test_a_worker_that_dies_costs_one_batch_its_reasons_then_comes_back(
    small_forest: SmallForest, forest_dir: Path
) -> None:
    explainer = load_explainer(forest_dir, SKOPS_FLAVOR, ExplainPolicy(exact_budget_s=60.0, process=True), label="m")
    assert isinstance(explainer, ExplainerProcess)
    try:
        assert explainer.loaded(120)
        rows = small_forest.matrix(frauds=True)[:2]
        assert None not in explainer.explain(rows)
        pool = explainer._pool
        assert pool is not None
        for pid in list(pool._processes):  # the worker, killed as the OOM killer would
            os.kill(pid, signal.SIGKILL)
        assert explainer.explain(rows) == [None, None]  # this batch: no reasons, no crash
        assert explainer.loaded(120)
        assert None not in explainer.explain(rows)  # a new worker
    finally:
        explainer.close()


OWNER = """
import sys
from pathlib import Path
from fraudstream.model.explain import ExplainPolicy, load_explainer

def main():
    flavor = {"sklearn": {"serialization_format": "skops", "pickled_model": "model.skops"}}
    explainer = load_explainer(Path(sys.argv[1]), flavor, ExplainPolicy(process=True), label="m")
    assert explainer.loaded(120)
    print(*explainer._pool._processes, flush=True)
    sys.stdin.readline()

if __name__ == "__main__":
    main()
"""


def test_a_worker_whose_owner_is_killed_with_kill_9_exits(forest_dir: Path, tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from fraudstream.kafka.local.processes import process_alive

    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen(
        [sys.executable, str(script), str(forest_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        (worker,) = (int(pid) for pid in owner.stdout.readline().split())
        assert process_alive(worker)
        owner.kill()
        owner.wait(10)
        deadline = time.monotonic() + 15
        while process_alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process_alive(worker), "the explainer's worker outlived its scorer"
    finally:
        if owner.poll() is None:
            owner.kill()
