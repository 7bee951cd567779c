"""The environment of each worker of `fraudstream score --workers N`."""

from __future__ import annotations

import pytest

from fraudstream.settings import load_settings
from scorer.replicas import worker_environment


def test_each_worker_has_its_own_transactional_id_and_metrics_port_and_scores_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(
        scorer_workers=2, scorer_transactional_id="scorer", scorer_metrics_port=9500, scorer_batch_size=321
    )
    envs = [worker_environment(settings, index, {"PATH": "/bin"}) for index in range(2)]
    assert [env["FRAUD_SCORER_TRANSACTIONAL_ID"] for env in envs] == ["scorer-0", "scorer-1"]
    assert [env["FRAUD_SCORER_METRICS_PORT"] for env in envs] == ["9500", "9501"]
    assert {env["FRAUD_SCORER_WORKERS"] for env in envs} == {"1"}  # a worker scores, it does not supervise
    assert {env["FRAUD_SCORER_BATCH_SIZE"] for env in envs} == {"321"}  # a command-line option reaches each
    assert {env["PATH"] for env in envs} == {"/bin"}
    for index, env in enumerate(envs):  # and each worker reads back the settings meant for it
        with monkeypatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            seen = load_settings()
        assert (seen.scorer_workers, seen.scorer_transactional_id) == (1, f"scorer-{index}")
        assert (seen.scorer_metrics_port, seen.scorer_batch_size) == (9500 + index, 321)
        assert seen.scorer_group_id == settings.scorer_group_id


def test_without_a_transactional_id_or_metrics_port_each_worker_derives_its_own_and_serves_none() -> None:
    settings = load_settings(scorer_workers=3, scorer_metrics_port=0)
    env = worker_environment(settings, 2, {"FRAUD_SCORER_TRANSACTIONAL_ID": ""})
    assert "FRAUD_SCORER_TRANSACTIONAL_ID" not in env  # from its own process id, as a lone scorer does
    assert env["FRAUD_SCORER_METRICS_PORT"] == "0"
