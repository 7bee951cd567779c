"""docker-compose.yml cannot run here (no Docker engine): check it agrees with the Settings it configures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fraudstream.settings import ENV_PREFIX, Settings, env_name

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("topics", "trainer", "producer", "scorer", "api")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in service.get("environment", {}).items()}


def test_the_whole_system_is_there(compose: dict[str, Any]) -> None:
    assert {"kafka", "mlflow", *APP_SERVICES} <= set(compose["services"])
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert compose["services"]["trainer"]["command"] == ["train"]  # a one-shot job


def test_every_fraud_variable_is_a_setting_and_validates(compose: dict[str, Any]) -> None:
    fields = {env_name(name) for name in Settings.model_fields}
    for name in APP_SERVICES:
        env = _env(compose["services"][name])
        unknown = {key for key in env if key.startswith(ENV_PREFIX)} - fields
        assert not unknown, f"{name}: {unknown} are not Settings fields"
        overrides = {key.removeprefix(ENV_PREFIX).lower(): value for key, value in env.items()}
        Settings(**overrides)  # raises if any value is invalid


def test_app_reaches_kafka_on_a_listener_the_broker_advertises(compose: dict[str, Any]) -> None:
    kafka_env = _env(compose["services"]["kafka"])
    advertised = kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    for name in APP_SERVICES:
        bootstrap = _env(compose["services"][name])["FRAUD_KAFKA_BOOTSTRAP"]
        assert any(listener.endswith(f"//{bootstrap}") for listener in advertised), (name, bootstrap)


def test_tracking_uri_points_at_the_mlflow_service_port(compose: dict[str, Any]) -> None:
    mlflow = compose["services"]["mlflow"]
    port = mlflow["ports"][0].split(":")[-1]
    assert f"--port {port}" in mlflow["command"]
    for name in APP_SERVICES:
        assert _env(compose["services"][name])["FRAUD_MLFLOW_TRACKING_URI"] == f"http://mlflow:{port}"


def test_published_ports_match_the_settings(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    api_port = int(_env(api).get("FRAUD_API_PORT", Settings.model_fields["api_port"].default))
    assert f"{api_port}:{api_port}" in api["ports"]
    assert str(api_port) in api["command"]
    scorer = compose["services"]["scorer"]
    metrics_port = int(_env(scorer)["FRAUD_SCORER_METRICS_PORT"])
    assert f"{metrics_port}:{metrics_port}" in scorer["ports"]


def test_services_run_the_cli_commands_that_exist(compose: dict[str, Any]) -> None:
    from typer.main import get_command

    from fraudstream.cli import main

    main._register()
    root = get_command(main.app)
    for name in APP_SERVICES:
        words = compose["services"][name]["command"]
        command = root.commands[words[0]]  # type: ignore[attr-defined]
        if len(words) > 1 and not words[1].startswith("-"):
            assert words[1] in command.commands, f"{name}: {words}"  # type: ignore[attr-defined]
