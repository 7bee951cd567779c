"""The alert console and the API docs in a real headless Chromium, against `fraudstream serve`, a real broker and a
real scorer: nothing the pages load leaves the machine, replayed alerts appear in the queue without a reload, an
alert shows its reasons, a click on "Fraud" stores the verdict, and with an API key the pages ask for it once.

Screenshots land in build/screenshots/ (git-ignored) for a developer to look at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.store.alerts import AlertRepository
from fraudstream.kafka.local.processes import free_port
from fraudstream.schemas import SEED_EXAMPLE, Alert, Explanation, Reason, TransactionFeatures
from fraudstream.settings import Settings

from .api_support import Service, process_env, wait_ready
from .browser_support import Page, chromium, new_page
from .stream_support import ScorerThread, read_alerts, replay_rows, stream_csv

KEY = "console-test-key"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as found:
        yield found


def _api(settings: Settings, services: Callable[..., Service], log: Path, **env: str) -> str:
    base_url = f"http://127.0.0.1:{settings.api_port}"
    wait_ready(base_url, services(["serve"], process_env(settings, **env), log))
    return base_url


def _docs_render(page: Page, base_url: str) -> None:
    page.page.wait_for_selector(".opblock")
    operations = page.page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/predict", "/alerts", "/alerts/{transaction_id}/feedback"} <= set(operations)


def test_the_console_shows_replayed_alerts_live_with_their_reasons_and_stores_a_verdict(
    browser: Any,
    trained_model: Any,
    settings_factory: Callable[..., Settings],
    services: Callable[..., Service],
    tmp_path: Path,
) -> None:
    settings = settings_factory(
        **trained_model.overrides,
        alert_store_url=f"sqlite:///{tmp_path / 'alerts.db'}",
        api_port=free_port(),
        sink_batch_timeout_s=0.2,
        scorer_batch_size=200,
    )
    base_url = _api(settings, services, tmp_path / "serve.log")
    page = new_page(browser)
    page.page.goto(f"{base_url}/console/")
    page.page.wait_for_selector("#queue-empty", state="visible")  # loaded, and nothing to show yet
    page.page.evaluate("window.loadedOnce = 'yes'")  # gone if the page reloads

    with ScorerThread(settings) as scorer:
        replay_rows(settings, stream_csv(trained_model.data_csv, tmp_path, rows=300, frauds=12))
        alerts = read_alerts(settings, at_least=1)
        assert scorer.error is None
    newest = max(alerts, key=lambda alert: (alert.event_time, alert.transaction_id))
    row = page.page.locator(f'#alert-rows tr[data-id="{newest.transaction_id}"]')
    row.wait_for(timeout=60_000)
    assert page.page.evaluate("window.loadedOnce") == "yes"  # it arrived without a reload
    page.page.wait_for_timeout(500)
    page.screenshot("console.png")

    row.click()
    page.page.wait_for_selector("#d-reasons li")
    shown = page.page.locator("#d-reasons li:not(.base)").all_inner_texts()
    served = httpx.get(f"{base_url}/alerts/{newest.transaction_id}").json()
    assert shown == [reason["text"] for reason in served["explanation"]["reasons"]]
    assert len(shown) >= 1
    assert page.page.locator("#d-chart svg rect").count() == len(shown)  # one bar per reason
    assert page.page.locator("#d-title").inner_text() == newest.transaction_id

    page.page.fill("#v-analyst", "ana")
    page.page.fill("#v-note", "card reported stolen")
    page.page.click("#v-fraud")
    page.page.wait_for_selector("#v-message:has-text('Saved as fraud')")
    verdict = httpx.get(f"{base_url}/alerts/{newest.transaction_id}").json()["verdict"]
    assert (verdict["verdict"], verdict["analyst"], verdict["note"]) == ("fraud", "ana", "card reported stolen")
    page.page.wait_for_selector("#d-history li")
    page.screenshot("console-detail.png")

    docs = new_page(browser, width=1400)
    docs.page.goto(f"{base_url}/docs")
    _docs_render(docs, base_url)
    docs.screenshot("docs.png")
    assert page.foreign(base_url) == []  # every request the console made stayed on this machine
    assert docs.foreign(base_url) == []


def test_with_an_api_key_the_console_and_the_docs_ask_for_it_once_and_work_after(
    browser: Any,
    trained_model: Any,
    settings_factory: Callable[..., Settings],
    services: Callable[..., Service],
    tmp_path: Path,
) -> None:
    settings = settings_factory(
        **trained_model.overrides, alert_store_url=f"sqlite:///{tmp_path / 'alerts.db'}", api_port=free_port()
    )
    store = AlertRepository.from_url(settings.alert_store)
    store.create_schema()
    store.upsert_many([_explained_alert(i) for i in range(5)])
    base_url = _api(settings, services, tmp_path / "serve.log", FRAUD_API_KEY=KEY, FRAUD_API_RUN_SINK="false")
    assert httpx.get(f"{base_url}/alerts").status_code == 401

    page = new_page(browser)
    page.page.goto(f"{base_url}/console/")
    page.page.wait_for_selector("#key-dialog[open]")
    page.page.fill("#key-input", "a wrong guess")
    page.page.click("#key-submit")
    page.page.wait_for_selector("#key-error", state="visible")  # asked again, saying the key was refused
    page.page.fill("#key-input", KEY)
    page.page.click("#key-submit")
    row = page.page.locator('#alert-rows tr[data-id="creditcard.csv:4"]')
    row.wait_for()
    # A click held across a poll of the queue (every 2 s) still lands: the poll keeps the rows it already shows
    # (when it replaced them all, a press and its release fell on two different rows and no click happened).
    box = row.bounding_box()
    assert box is not None
    page.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.page.mouse.down()
    page.page.wait_for_timeout(2500)
    page.page.mouse.up()
    page.page.wait_for_selector("#d-reasons li:has-text('V14 = -9.8')", timeout=5000)

    calls = [(url, headers) for url, headers in page.requests if "/console/" not in url]
    answered = [(url, headers) for url, headers in calls if headers.get("x-api-key") == KEY]
    assert len(answered) >= 3  # the queue, the stats, the alert...
    assert all(headers.get("x-api-key") in (None, "a wrong guess", KEY) for _, headers in calls)
    page.page.reload()  # same tab: the key is remembered, not asked again
    page.page.wait_for_selector('#alert-rows tr[data-id="creditcard.csv:4"]')
    assert page.page.locator("#key-dialog[open]").count() == 0

    docs = new_page(browser, width=1400)
    docs.page.goto(f"{base_url}/docs")
    docs.page.wait_for_selector("#key-dialog[open]")
    docs.page.fill("#key-input", KEY)
    docs.page.click("#key-submit")
    _docs_render(docs, base_url)
    schema_calls = [headers for url, headers in docs.requests if url.endswith("/openapi.json")]
    assert schema_calls[-1].get("x-api-key") == KEY
    assert page.foreign(base_url) == []
    assert docs.foreign(base_url) == []


def _explained_alert(index: int) -> Alert:
    event_time = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc) + timedelta(minutes=index)
    return Alert(
        transaction_id=f"creditcard.csv:{index}",
        score=0.9,
        threshold=0.5,
        model_name="fraudstream-rf",
        model_version="1",
        event_time=event_time,
        scored_at=event_time + timedelta(seconds=1),
        partition=0,
        offset=index,
        amount=12.5,
        features=TransactionFeatures(**SEED_EXAMPLE),
        explanation=Explanation(
            method="treeshap",
            base_value=0.05,
            reasons=[Reason(feature="V14", value=-9.8, contribution=0.31, quantile=0.0004)],
        ),
    )
