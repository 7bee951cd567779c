"""Helpers of the API integration tests: `fraudstream serve` / `sink` as processes, and reading GET /alerts."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.schemas import AlertPublic
from fraudstream.schemas import Alert
from fraudstream.settings import Settings

from .child_env import child_env, fields_of

FRAUDSTREAM = Path(sys.executable).with_name("fraudstream")
PAGE = 7  # small pages: a walk crosses many page boundaries


ALERTS_T0 = datetime(2013, 9, 1, tzinfo=timezone.utc)


def sample_alerts(count: int) -> list[Alert]:
    """``count`` valid alerts of creditcard.csv rows 0.. (two model versions), one second apart."""
    return [
        Alert(
            transaction_id=f"creditcard.csv:{i}",
            score=0.9,
            threshold=0.5,
            model_name="fraudstream-test",
            model_version=str(1 + i % 2),
            event_time=ALERTS_T0 + timedelta(seconds=i),
            scored_at=ALERTS_T0 + timedelta(seconds=i, milliseconds=5),
            partition=0,
            offset=i,
            amount=1.0,
        )
        for i in range(count)
    ]


# ---- helpers a replay -> scorer test reuses ------------------------------------------------------------------
def fetch_all_alerts(
    base_url: str, *, headers: dict[str, str] | None = None, limit: int = PAGE
) -> list[dict[str, Any]]:
    """Every alert GET /alerts serves, following next_cursor page by page."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        while True:
            params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            response = client.get("/alerts", params=params)
            response.raise_for_status()
            body = response.json()
            items.extend(body["data"])
            cursor = body["next_cursor"]
            if cursor is None:
                return items


def assert_api_serves_exactly(
    base_url: str, expected: Sequence[Alert], *, timeout: float = 60.0, headers: dict[str, str] | None = None
) -> None:
    """Wait until GET /alerts serves exactly ``expected`` (every field, each once), or fail showing the difference."""
    wanted = {alert.transaction_id: alert for alert in expected}
    deadline = time.monotonic() + timeout
    while True:
        items = fetch_all_alerts(base_url, headers=headers)
        got = {item["transaction_id"]: AlertPublic.model_validate(item).message() for item in items}
        if len(items) == len(got) and got == wanted:
            return
        if time.monotonic() > deadline or len(got) > len(wanted):
            missing = sorted(set(wanted) - set(got))
            unexpected = sorted(set(got) - set(wanted))
            changed = sorted(key for key in set(got) & set(wanted) if got[key] != wanted[key])
            pytest.fail(
                f"GET /alerts served {len(items)} items ({len(got)} distinct), expected {len(wanted)}: "
                f"missing {missing[:5]}, unexpected {unexpected[:5]}, changed {changed[:5]}"
            )
        time.sleep(0.5)


# ---- the API and the sink as processes ---------------------------------------------------------------------------
def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `fraudstream serve` or `sink` process with these settings."""
    names = (
        "kafka_bootstrap",
        "monitor_to_mlflow",
        "topic_alerts",
        "sink_group_id",
        "state_dir",
        "alert_store_url",
        "mlflow_tracking_uri",
        "mlflow_artifact_location",
        "model_name",
        "api_port",
        "sink_batch_timeout_s",
        "topic_feedback",
        "topic_partitions",
        "explain_exact_budget_ms",
        "feedback_publish_timeout_s",
        "sink_session_timeout_ms",
        "sink_instance_id",
        "topic_sink_dlq",
        "topic_monitoring",
    )
    return child_env(fields_of(settings, names), **extra)


class Service:
    """A `fraudstream ...` subprocess with its output in a file (shown when a check fails)."""

    def __init__(self, args: list[str], env: dict[str, str], log_file: Path) -> None:
        self.log_file = log_file
        self._log = log_file.open("wb")
        self.process = subprocess.Popen([str(FRAUDSTREAM), *args], env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no cleanup at all (the sink does not leave its group)."""
        self.process.kill()
        self.process.wait(30)
        self._log.close()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the clean stop; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code


def wait_ready(base_url: str, service: Service, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            pytest.fail(f"the API exited with {service.process.returncode}:\n{service.output()[-3000:]}")
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=2)
            if response.status_code == 200:
                return response.json()  # type: ignore[no-any-return]
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the API was not ready within {timeout} s:\n{service.output()[-3000:]}")
