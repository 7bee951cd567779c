"""The Quix Streams peer of benchmarks/scorer.py: the scorer's job written as a Python team would with Quix Streams.

    .venv-quix/bin/python benchmarks/peers/quix_peer.py --bootstrap HOST:PORT --topic T --alerts A --group G \
        --onnx model.onnx --threshold 0.42 --time-encoding raw --rows 100000

Idiomatic and with its documented defaults: ``Application(processing_guarantee="exactly-once")`` (Kafka
transactions, read_committed), a ``StreamingDataFrame`` that validates each message with a pydantic model holding
the same rules as fraudstream's ``Transaction`` (strict finite floats within float32, no unknown field, an id, an
RFC 3339 time, an optional 0/1 label), scores it with the same ONNX forest (ONNX Runtime, one thread, as ours),
keeps the flagged ones and writes an alert to a topic. It runs in its own virtualenv (it cannot share ours: see
benchmarks/README.md) and imports nothing of fraudstream. It prints one JSON line: rows, seconds from the first
message processed to the end of ``app.run()`` (the last checkpoint committed), alerts; and for ``--rows 0`` (run
until SIGTERM, as one replica of several in a group) the ``time.perf_counter()`` of its first and last message.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from typing import Annotated, Any

import numpy as np
import onnxruntime as ort
from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict
from quixstreams import Application

FLOAT32_MAX = float(np.finfo(np.float32).max)
Finite = Annotated[float, Strict(), AllowInfNan(False), Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
NonNegative = Annotated[float, Strict(), AllowInfNan(False), Field(ge=0, le=FLOAT32_MAX)]
FEATURES = ["Time", *(f"V{i}" for i in range(1, 29)), "Amount"]
SECONDS_PER_DAY = 86_400.0


class Transaction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    Time: NonNegative
    V1: Finite
    V2: Finite
    V3: Finite
    V4: Finite
    V5: Finite
    V6: Finite
    V7: Finite
    V8: Finite
    V9: Finite
    V10: Finite
    V11: Finite
    V12: Finite
    V13: Finite
    V14: Finite
    V15: Finite
    V16: Finite
    V17: Finite
    V18: Finite
    V19: Finite
    V20: Finite
    V21: Finite
    V22: Finite
    V23: Finite
    V24: Finite
    V25: Finite
    V26: Finite
    V27: Finite
    V28: Finite
    Amount: NonNegative
    transaction_id: Annotated[str, Strict(), Field(min_length=1, max_length=200)]
    event_time: datetime
    label: Annotated[int, Strict(), Field(ge=0, le=1)] | None = None


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("bootstrap", "topic", "alerts", "group", "onnx", "time-encoding"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--rows", type=int, required=True, help="stop after this many; 0: at SIGTERM")
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        loglevel="WARNING",
    )
    transactions = app.topic(args.topic, value_deserializer="bytes")
    alerts = app.topic(args.alerts, value_serializer="json")
    state: dict[str, Any] = {"done": 0, "alerts": 0, "first": None, "last": None}

    def score(value: bytes) -> dict[str, Any] | None:
        if state["first"] is None:
            state["first"] = time.perf_counter()
        tx = Transaction.model_validate_json(value)
        row = [getattr(tx, name) for name in FEATURES]
        if args.time_encoding == "time_of_day":
            row[0] = row[0] % SECONDS_PER_DAY
        elif args.time_encoding == "none":
            row[0] = 0.0
        (probabilities,) = session.run(["probabilities"], {input_name: np.array([row], dtype=np.float32)})
        probability = float(probabilities[0, 1])
        state["done"] += 1
        state["last"] = time.perf_counter()
        if state["done"] == args.rows:  # --rows 0: until SIGTERM (a replica of several)
            app.stop()  # ends after this message; the last checkpoint (transaction) is committed
        if probability < args.threshold:
            return None
        state["alerts"] += 1
        return {
            "transaction_id": tx.transaction_id,
            "score": probability,
            "threshold": args.threshold,
            "event_time": tx.event_time.isoformat(),
            "amount": tx.Amount,
            "label": tx.label,
        }

    sdf = app.dataframe(transactions).apply(score).filter(lambda alert: alert is not None)
    sdf.to_topic(alerts)
    app.run()
    elapsed = time.perf_counter() - (state["first"] or time.perf_counter())
    report = {"rows": state["done"], "seconds": elapsed, "alerts": state["alerts"]}
    report |= {"first": state["first"], "last": state["last"], "consumed": state["done"]}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
