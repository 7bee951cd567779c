"""One batch: valid messages scored in one call, alerts built for the flagged ones, bad ones to the DLQ."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import numpy as np
import orjson
from confluent_kafka import KafkaError

from fraudstream.model.serving import FraudModel
from fraudstream.schemas import FEATURES, Alert
from scorer.batch import KIND_HEADER, REASON_HEADER, ChunkedScoring, score_batch

from ..conftest import SmallForest
from .fakes import AmountEngine, FakeMessage, fake_model, transaction_bytes

SCORED_AT = datetime(2024, 5, 1, 12, 5, tzinfo=timezone.utc)


def test_valid_messages_are_scored_in_one_call_and_the_flagged_ones_become_alerts() -> None:
    engine = AmountEngine()
    model = fake_model(version="7", threshold=0.5, engine=engine)
    messages = [FakeMessage(transaction_bytes(i, 100.0), _offset=i, _partition=1) for i in range(10)]
    messages[3] = FakeMessage(transaction_bytes(3, 900.0, label=1), _offset=3, _partition=1)
    messages[6] = FakeMessage(transaction_bytes(6, 500.0, label=None), _offset=6, _partition=1)  # == threshold

    batch = score_batch(messages, model, scored_at=SCORED_AT)

    assert engine.calls == [10]
    assert (batch.consumed, batch.scored, len(batch.dead_letters)) == (10, 10, 0)
    alerts = [Alert.model_validate_json(record.value) for record in batch.alerts]  # type: ignore[arg-type]
    assert [alert.transaction_id for alert in alerts] == ["creditcard.csv:3", "creditcard.csv:6"]
    assert [record.key for record in batch.alerts] == [b"creditcard.csv:3", b"creditcard.csv:6"]
    first = alerts[0]
    assert (first.score, first.threshold, first.model_name, first.model_version) == (0.9, 0.5, "fraud-rf", "7")
    assert (first.partition, first.offset, first.amount, first.label) == (1, 3, 900.0, 1)
    assert first.scored_at == SCORED_AT
    assert first.event_time == datetime(2024, 5, 1, 12, 0, 3, tzinfo=timezone.utc)
    assert alerts[1].label is None
    assert batch.alert_event_times == [first.event_time, alerts[1].event_time]


def test_invalid_messages_become_dead_letters_with_their_original_bytes_and_reason() -> None:
    engine = AmountEngine()
    good = FakeMessage(transaction_bytes(0, 10.0), _offset=0)
    bad = FakeMessage(b'{"Time": "soon"}', _offset=1, _partition=2, _key=b"k1", _headers=[("trace-id", b"t-1")])
    empty = FakeMessage(None, _offset=2, _partition=2)

    batch = score_batch([good, bad, empty], fake_model(engine=engine), scored_at=SCORED_AT)

    assert (batch.consumed, batch.scored, batch.alerts) == (3, 1, [])
    assert engine.calls == [1]
    assert [record.value for record in batch.dead_letters] == [b'{"Time": "soon"}', None]
    assert batch.dead_letters[0].key == b"k1"
    assert (batch.dead_letters[0].headers or [])[0] == ("trace-id", b"t-1")  # the original headers come first
    headers = dict(batch.dead_letters[0].headers or [])
    assert headers["original_size"] == b"16"
    assert headers[REASON_HEADER].startswith(b"field 'Time': Input should be a valid number")
    assert headers[KIND_HEADER] == b"wrong_type"
    assert (headers["source_topic"], headers["source_partition"], headers["source_offset"]) == (
        b"transactions",
        b"2",
        b"1",
    )
    assert batch.dead_letter_kinds == ["wrong_type", "empty"]


def test_a_batch_of_only_bad_messages_does_not_call_the_model() -> None:
    engine = AmountEngine()
    batch = score_batch([FakeMessage(b"nope")], fake_model(engine=engine))
    assert engine.calls == []
    assert (batch.consumed, batch.scored, len(batch.dead_letters)) == (1, 0, 1)


def test_kafka_errors_are_collected_not_counted_as_messages() -> None:
    error = KafkaError(KafkaError._TRANSPORT, "broker down")
    batch = score_batch([FakeMessage(None, _error=error)], fake_model())
    assert batch.errors == [error]
    assert (batch.consumed, batch.scored, batch.alerts, batch.dead_letters) == (0, 0, [], [])


def test_flagged_rows_carry_their_features_and_the_kernels_reasons_and_only_they_are_explained(
    small_forest: SmallForest,
) -> None:
    loader = small_forest.loader()
    model = FraudModel(name="fraud-rf", version="3", threshold=0.5, engine=small_forest.engine, explainer=loader)
    frame = small_forest.frame.head(400)
    messages = [
        FakeMessage(_row_bytes(index, row), _offset=index) for index, row in enumerate(frame.to_dict("records"))
    ]
    explained: list[int] = []
    explainer = loader.wait()
    assert explainer is not None
    original = explainer.explain
    object.__setattr__(explainer, "explain", lambda rows: explained.append(len(rows)) or original(rows))

    batch = score_batch(messages, model, scored_at=SCORED_AT)

    matrix = frame[list(FEATURES)].to_numpy(dtype=np.float32)
    flagged = np.flatnonzero(small_forest.engine.fraud_probability(matrix) >= 0.5)
    assert len(flagged) > 3
    assert explained == [len(flagged)]  # one call for the batch's flagged rows, none for the others
    alerts = [Alert.model_validate_json(record.value) for record in batch.alerts]  # type: ignore[arg-type]
    assert [alert.offset for alert in alerts] == flagged.tolist()
    assert [alert.explanation for alert in alerts] == small_forest.explainer().explain(matrix[flagged])
    first = frame.iloc[flagged[0]]
    assert alerts[0].features is not None
    assert alerts[0].features.as_row() == [float(first[name]) for name in FEATURES]


def test_without_an_explainer_alerts_carry_no_reasons() -> None:
    batch = score_batch([FakeMessage(transaction_bytes(0, 900.0))], fake_model(), scored_at=SCORED_AT)
    (alert,) = [Alert.model_validate_json(record.value) for record in batch.alerts]  # type: ignore[arg-type]
    assert alert.explanation is None
    assert alert.features is not None
    assert alert.features.Amount == 900.0


def _row_bytes(index: int, row: dict[str, float]) -> bytes:
    body = {name: float(row[name]) for name in FEATURES}
    body |= {"transaction_id": f"creditcard.csv:{index}", "event_time": "2024-05-01T12:00:00Z"}
    return orjson.dumps(body)


def test_a_batch_scored_chunk_by_chunk_is_the_batch_scored_in_one_piece(small_forest: SmallForest) -> None:
    """Chunks of 64 rows scored in the model thread while the next is decoded: the same alerts, dead letters and
    scored rows, in the same order, as one ONNX call for the batch (bad messages on and across chunk edges)."""
    model = FraudModel(name="fraud-rf", version="3", threshold=0.5, engine=small_forest.engine)
    frame = small_forest.frame.head(300)
    values = [_row_bytes(index, row) for index, row in enumerate(frame.to_dict("records"))]
    for index in (0, 63, 64, 65, 200, 299):
        values[index] = b'{"Time": "soon"}'
    values[128] = b""
    messages = [FakeMessage(value or None, _offset=index) for index, value in enumerate(values)]
    chunked = ChunkedScoring(64)
    try:
        pieces = score_batch(messages, model, scored_at=SCORED_AT, scoring=chunked)
    finally:
        chunked.close()
    whole = score_batch(messages, model, scored_at=SCORED_AT)

    assert len(whole.alerts) > 3
    assert (pieces.consumed, pieces.scored) == (whole.consumed, whole.scored) == (300, 293)
    assert [record.value for record in pieces.alerts] == [record.value for record in whole.alerts]
    assert [(r.value, r.headers) for r in pieces.dead_letters] == [(r.value, r.headers) for r in whole.dead_letters]
    assert pieces.rows is not None
    assert whole.rows is not None
    assert np.array_equal(pieces.rows.matrix, whole.rows.matrix)
    assert np.array_equal(pieces.rows.scores, whole.rows.scores)
    assert np.array_equal(pieces.rows.labels, whole.rows.labels)


def test_chunks_are_scored_in_the_model_thread_while_the_loop_thread_decodes() -> None:
    """Each chunk's model call runs in the scorer-model thread; a batch under two chunks stays in the caller's."""
    threads: list[str] = []

    class RecordingEngine(AmountEngine):
        def fraud_probability(self, features: np.ndarray) -> np.ndarray:
            threads.append(threading.current_thread().name)
            return super().fraud_probability(features)

    engine = RecordingEngine()
    model = fake_model(engine=engine)
    chunked = ChunkedScoring(10)
    try:
        batch = score_batch([FakeMessage(transaction_bytes(i, 900.0)) for i in range(35)], model, scoring=chunked)
        assert engine.calls == [10, 10, 10, 5]
        assert len(batch.alerts) == 35
        assert all(name.startswith("scorer-model") for name in threads)
        threads.clear()
        score_batch([FakeMessage(transaction_bytes(i, 1.0)) for i in range(15)], model, scoring=chunked)
        assert threads == [threading.current_thread().name]
    finally:
        chunked.close()
