"""The alert store on a real PostgreSQL server (started here with initdb/pg_ctl; skipped when PostgreSQL or the
optional ``postgres`` extra is not installed): the same upserts, pages and stats as on SQLite."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from monitoring_records import monitoring_record

from api.app import create_app
from api.store.alerts import AlertFilter, AlertRepository
from fraudstream.kafka.local.processes import free_port
from fraudstream.schemas import SEED_EXAMPLE, Alert, Explanation, Reason, TransactionFeatures
from fraudstream.settings import load_settings

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def _pg_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on a free port; PostgreSQL refuses to run as root, so root runs it as the
    ``postgres`` user."""
    pytest.importorskip("psycopg", reason="the optional postgres extra (psycopg) is not installed")
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    prefix: list[str] = []
    home = Path(tempfile.mkdtemp(prefix="fraudstream-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no postgres user to run PostgreSQL as")
        os.chown(home, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = home / "data", free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    try:
        subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "fraud", "--no-sync"], **run)
        options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(home / "pg.log"), "-w", "start"], **run
        )
        yield f"postgresql+psycopg://fraud@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], **run)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def store(postgres_url: str) -> Iterator[AlertRepository]:
    # A session zone 5:30 off UTC: hour buckets and returned times must still be UTC.
    engine = sa.create_engine(postgres_url, connect_args={"options": "-c TimeZone=Asia/Kolkata"})
    repository = AlertRepository(engine)
    repository.create_schema()
    yield repository
    with repository.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alerts, feedback, leases, monitoring_windows")
    repository.engine.dispose()


def _alert(index: int, event_time: datetime, **fields: object) -> Alert:
    values: dict[str, object] = {
        "transaction_id": f"tx-{index:05d}",
        "score": 0.9,
        "threshold": 0.5,
        "model_name": "fraud-pg",
        "model_version": "1",
        "event_time": event_time,
        "scored_at": event_time + timedelta(seconds=1),
        "partition": 0,
        "offset": index,
        "amount": 1.5,
        "label": None,
    }
    return Alert(**{**values, **fields})


def test_upserts_pages_and_stats_on_postgresql(store: AlertRepository) -> None:
    paris = timezone(timedelta(hours=2))
    alerts = [_alert(i, (T0 + timedelta(minutes=20 * (i % 6))).astimezone(paris)) for i in range(24)]
    assert store.upsert_many(alerts, now=T0) == 24
    assert store.upsert_many([*alerts[:5], _alert(3, alerts[3].event_time, score=0.99)], now=T0 + timedelta(1)) == 5

    assert store.count() == 24
    found = store.get("tx-00003")
    assert found is not None
    assert (found.score, found.stored_at, found.event_time) == (0.99, T0, alerts[3].event_time)

    seen, after = [], None
    while True:
        page = store.page(limit=5, after=after)
        seen += [a.transaction_id for a in page.alerts]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert sorted(seen) == sorted(a.transaction_id for a in alerts)
    assert len(seen) == len(set(seen))

    stats = store.stats()
    assert stats.by_model_version == {"1": 24}
    assert stats.by_hour == {T0: 12, T0 + timedelta(hours=1): 12}  # UTC hours, whatever the session zone
    assert store.count(AlertFilter(since=T0 + timedelta(hours=1), min_score=0.95)) == 1  # tx-00003 at 13:00


def test_monitoring_windows_are_numbered_paged_and_marked_on_postgresql(store: AlertRepository) -> None:
    records = [monitoring_record(i, version=str(1 + i % 2)) for i in range(5)]
    assert store.monitoring.upsert_many(records) == 5
    assert store.monitoring.upsert_many(records[:2]) == 0  # redelivered: stored once, numbers kept
    latest = store.monitoring.latest()
    assert [(w.record.model_version, w.window) for w in latest] == [("1", 3), ("2", 2)]
    assert latest[0].record == records[4]  # every field, times in UTC whatever the session's zone
    first = store.monitoring.page(limit=3)
    rest = store.monitoring.page(limit=3, after=first.next_cursor)
    assert [w.record for w in first.windows + rest.windows] == records[::-1]
    assert rest.next_cursor is None
    assert [w.window for w in store.monitoring.page(since=records[3].window_end, model_version="2").windows] == [2]
    store.monitoring.mark_mlflow([(w.seq, None) for w in store.monitoring.pending_mlflow()[:4]])
    assert [w.record for w in store.monitoring.pending_mlflow()] == [records[4]]


def test_the_api_pages_alerts_from_postgresql(postgres_url: str, store: AlertRepository, tmp_path: Path) -> None:
    store.upsert_many([_alert(i, T0 + timedelta(seconds=i // 3)) for i in range(12)])
    settings = load_settings(state_dir=tmp_path, alert_store_url=postgres_url, api_run_sink=False)

    class NoModel:
        def serving_version(self) -> None:
            return None

        def load(self, version: str) -> None:
            raise AssertionError("no model to load")

    with TestClient(create_app(settings, registry=NoModel(), store=store, run_feedback=False)) as client:
        first = client.get("/alerts", params={"limit": 5}).json()
        second = client.get("/alerts", params={"limit": 50, "cursor": first["next_cursor"]}).json()
        assert client.get("/readyz").json()["store"] == {"ok": True, "detail": "postgresql answers"}

    ids = [a["transaction_id"] for a in first["data"] + second["data"]]
    assert ids == [f"tx-{i:05d}" for i in range(11, -1, -1)]


def test_reasons_verdicts_stats_and_an_older_table_on_postgresql(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url, connect_args={"options": "-c TimeZone=Asia/Kolkata"})
    with engine.begin() as conn:  # the alerts table as the first release created it
        conn.exec_driver_sql("DROP TABLE IF EXISTS alerts, feedback, leases, monitoring_windows")
        conn.exec_driver_sql(
            "CREATE TABLE alerts (transaction_id VARCHAR PRIMARY KEY, score FLOAT NOT NULL, threshold FLOAT NOT NULL, "
            "model_name VARCHAR NOT NULL, model_version VARCHAR NOT NULL, event_time TIMESTAMPTZ NOT NULL, "
            'scored_at TIMESTAMPTZ NOT NULL, partition INTEGER NOT NULL, "offset" BIGINT NOT NULL, '
            "amount FLOAT NOT NULL, label SMALLINT, stored_at TIMESTAMPTZ NOT NULL)"
        )
    store = AlertRepository(engine)
    try:
        store.create_schema()
        explanation = Explanation(
            method="treeshap", base_value=0.05, reasons=[Reason(feature="V14", value=-9.8, contribution=0.3)]
        )
        now = datetime.now(timezone.utc)
        alerts = [
            _alert(i, T0, score=0.5 + i / 20, model_version=str(1 + i % 2), scored_at=now, explanation=explanation)
            for i in range(10)
        ]
        store.upsert_many(
            [*alerts[:-1], _alert(9, T0, score=0.95, features=TransactionFeatures(**SEED_EXAMPLE), scored_at=now)]
        )
        for index, verdict in ((0, "fraud"), (1, "legitimate"), (2, "fraud"), (2, "legitimate")):
            assert store.feedback.record(f"tx-{index:05d}", verdict, "ana", None) is not None
        assert store.feedback.acquire_lease("publisher", "a", 10)
        assert not store.feedback.acquire_lease("publisher", "b", 10)

        found = store.get("tx-00000")
        assert found is not None
        assert found.explanation == explanation
        assert found.verdict is not None
        assert found.verdict.verdict == "fraud"
        assert store.get("tx-00009").features == TransactionFeatures(**SEED_EXAMPLE)  # type: ignore[union-attr]
        assert store.count(AlertFilter(verdict="none")) == 7
        assert store.count(AlertFilter(verdict="legitimate")) == 2
        stats = store.stats()
        assert stats.reviews["1"].reviewed == 2  # tx-0 and tx-2, even versions
        assert stats.reviews["1"].fraud == 1
        assert stats.reviews["2"].reviewed == 1
        assert stats.score_histogram == [0] * 10 + [1] * 10  # 0.50, 0.55, ... 0.95: one a bin
        assert sum(stats.by_minute.values()) == 10
        assert [f.verdict for f in store.feedback.history("tx-00002")] == ["fraud", "legitimate"]
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alerts, feedback, leases, monitoring_windows")
        engine.dispose()
