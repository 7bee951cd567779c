"""AlertRepository on a real SQLite file: idempotent upserts, keyset pages, stats, errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from api.exceptions import StoreError
from api.store.alerts import AlertFilter, AlertRepository
from api.store.cursor import Cursor
from api.store.sql import upsert_statement
from fraudstream.schemas import SEED_EXAMPLE, Alert, Explanation, Reason, TransactionFeatures

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path: Path) -> AlertRepository:
    repository = AlertRepository.from_url(f"sqlite:///{tmp_path / 'nested' / 'alerts.db'}")
    repository.create_schema()
    repository.create_schema()  # idempotent
    return repository


def test_upsert_is_idempotent_and_keeps_the_first_stored_time(
    store: AlertRepository, alert: Callable[..., Alert]
) -> None:
    first = alert(1)
    assert store.upsert_many([first, alert(2)], now=T0) == 2
    assert store.upsert_many([first], now=T0 + timedelta(hours=1)) == 1
    rescored = alert(1, score=0.99, model_version="2")
    store.upsert_many([rescored], now=T0 + timedelta(hours=2))

    assert store.count() == 2
    found = store.get("tx-00001")
    assert found is not None
    assert found.score == 0.99
    assert found.model_version == "2"
    assert found.stored_at == T0


def test_one_id_twice_in_a_batch_keeps_the_last(store: AlertRepository, alert: Callable[..., Alert]) -> None:
    assert store.upsert_many([alert(1, score=0.6), alert(1, score=0.8)]) == 1
    found = store.get("tx-00001")
    assert found is not None
    assert found.score == 0.8


def test_times_come_back_aware_and_equal_whatever_zone_they_were_sent_in(
    store: AlertRepository, alert: Callable[..., Alert]
) -> None:
    paris = timezone(timedelta(hours=2))
    sent = alert(1, event_time=T0.astimezone(paris), scored_at=(T0 + timedelta(seconds=3)).astimezone(paris))
    store.upsert_many([sent])

    found = store.get("tx-00001")
    assert found is not None
    assert found.event_time == T0
    assert found.event_time.tzinfo is not None
    assert Alert.model_validate(found.model_dump(exclude={"stored_at", "verdict"})) == sent


def test_page_with_a_cursor_and_filters(store: AlertRepository, alert: Callable[..., Alert]) -> None:
    store.upsert_many([alert(i, T0 + timedelta(minutes=i // 2), score=0.5 + i / 100) for i in range(10)])

    first = store.page(AlertFilter(min_score=0.52), limit=3)
    assert [a.transaction_id for a in first.alerts] == ["tx-00009", "tx-00008", "tx-00007"]
    assert first.next_cursor == Cursor(T0 + timedelta(minutes=3), "tx-00007")
    rest = store.page(AlertFilter(min_score=0.52), limit=100, after=first.next_cursor)
    assert [a.transaction_id for a in rest.alerts] == [f"tx-{i:05d}" for i in range(6, 1, -1)]
    assert rest.next_cursor is None
    assert store.count(AlertFilter(since=T0 + timedelta(minutes=4))) == 2


def test_stats(store: AlertRepository, alert: Callable[..., Alert]) -> None:
    store.upsert_many([alert(i, T0 + timedelta(minutes=25 * i), model_version=str(i % 2)) for i in range(5)])

    stats = store.stats()

    assert stats.total == 5
    assert stats.by_model_version == {"0": 3, "1": 2}
    assert stats.by_hour == {T0: 3, T0 + timedelta(hours=1): 2}


def test_the_upsert_is_insert_on_conflict_in_both_dialects() -> None:
    for dialect, module in (("sqlite", sqlite), ("postgresql", postgresql)):
        sql = str(upsert_statement(dialect).compile(dialect=module.dialect()))
        assert "ON CONFLICT (transaction_id) DO UPDATE" in sql
        assert "stored_at = excluded.stored_at" not in sql.replace('"', "")
    assert upsert_statement("mysql") is None


def test_an_unreachable_store_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    repository = AlertRepository.from_url(f"sqlite:///{blocker / 'alerts.db'}")

    with pytest.raises(StoreError) as raised:
        repository.ping()
    assert raised.value.transient


def test_a_bad_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="FRAUD_ALERT_STORE_URL"):
        AlertRepository.from_url("nosuchdb://x")


def test_the_password_is_masked_in_describe() -> None:
    pytest.importorskip("psycopg", reason="the optional postgres extra is not installed")
    pg = AlertRepository.from_url("postgresql+psycopg://fraud:s3cret@db:5432/fraud")
    assert "s3cret" not in pg.describe()


def test_reasons_and_features_round_trip_and_an_older_table_gets_the_new_columns(
    tmp_path: Path, alert: Callable[..., Alert]
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = sa.create_engine(url)
    with old.begin() as conn:  # the table as the first release created it, with one alert in it
        conn.execute(
            sa.text(
                "CREATE TABLE alerts (transaction_id VARCHAR PRIMARY KEY, score FLOAT NOT NULL, threshold FLOAT NOT "
                "NULL, model_name VARCHAR NOT NULL, model_version VARCHAR NOT NULL, event_time DATETIME NOT NULL, "
                'scored_at DATETIME NOT NULL, partition INTEGER NOT NULL, "offset" BIGINT NOT NULL, amount FLOAT NOT '
                "NULL, label SMALLINT, stored_at DATETIME NOT NULL)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO alerts VALUES ('old-1', 0.9, 0.5, 'm', '1', '2024-05-01 12:00:00.000000', "
                "'2024-05-01 12:00:01.000000', 0, 1, 10.0, 1, '2024-05-01 12:00:02.000000')"
            )
        )
    old.dispose()
    store = AlertRepository.from_url(url)
    store.create_schema()

    legacy = store.get("old-1")
    assert legacy is not None
    assert (legacy.explanation, legacy.features, legacy.verdict) == (None, None, None)
    explanation = Explanation(
        method="saabas",
        base_value=0.05,
        reasons=[Reason(feature="V14", value=-9.8, contribution=0.31, quantile=0.001)],
    )
    features = TransactionFeatures(**SEED_EXAMPLE)
    store.upsert_many([alert(1, explanation=explanation, features=features)])
    found = store.get("tx-00001")
    assert found is not None
    assert (found.explanation, found.features) == (explanation, features)
