"""Per-message cost of decoding a batch of real transactions into the model's float32 matrix, in-process.

    python benchmarks/decode.py                 # 20 batches of 5,000 real rows, each decoder in turn
    python benchmarks/decode.py --batches 40 --batch-size 5000

The messages are real ULB rows of ../shared/data encoded exactly as `fraudstream replay` sends them
(producer.encode.encode_row). Each contender turns a batch of message values into the (n, 30) float32 matrix the
model reads, validating every message, with the garbage collector on and each batch alive until the next one
is decoded (as in the scorer). Figures are the median over the batches of (batch time / batch size).

* pydantic, as the scorer did before: ``Transaction.model_validate_json`` per message, then feature_matrix;
* pydantic with every rule (the API's and the DLQ reasons' path): ``parse_json`` (repeated keys refused too);
* wire decoder (what the scorer runs): ``scorer.decode.decode_batch``, msgspec structs derived from the same
  model, not tracked by the garbage collector, checks run over the whole batch, matrix by C-level attrgetter;
* the same wire decoder with structs tracked by the garbage collector (``gc=True``), to show what that costs;
* orjson.loads per message, no validation at all, and no matrix: a floor, not a contender.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

# This folder holds scripts named like the packages (scorer.py): keep it off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

from fraudstream.schemas import FEATURES, Transaction, feature_matrix, parse_json  # noqa: E402
from fraudstream.wire import WireDecoder  # noqa: E402
from producer.encode import encode_row  # noqa: E402
from scorer.decode import decode_batch  # noqa: E402

SHARED = Path(os.environ.get("FRAUD_SHARED_DATA", _HERE.parents[1] / "shared" / "data"))


def real_messages(count: int) -> tuple[list[bytes], str]:
    """``count`` message values: real rows (normal sample, frauds mixed in) when present, else synthetic."""
    normal, fraud = SHARED / "creditcard_normal_sample.csv", SHARED / "creditcard_fraud.csv"
    if normal.is_file() and fraud.is_file():
        frame = pd.concat([pd.read_csv(normal, nrows=count), pd.read_csv(fraud)]).sample(n=count, random_state=1)
        source = f"real ULB rows from {SHARED}"
    else:
        from fraudstream.data.synth import generate

        frame, source = generate(count, seed=1, fraud_rate=0.0017), "SYNTHETIC rows (real ones not found)"
    start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    rows = frame[[*FEATURES, "Class"]].to_numpy()
    values = [
        encode_row("creditcard.csv", i, [float(x) for x in row[:30]], int(row[30]), start + timedelta(seconds=row[0]))
        for i, row in enumerate(rows)
    ]
    return [value.value for value in values], source


def pydantic_before(values: Sequence[bytes]) -> np.ndarray:
    return feature_matrix([Transaction.model_validate_json(value) for value in values])


def pydantic_all_rules(values: Sequence[bytes]) -> np.ndarray:
    return feature_matrix([parse_json(Transaction, value) for value in values])


def wire(values: Sequence[bytes]) -> np.ndarray:
    return decode_batch(values).matrix


_TRACKED = WireDecoder(Transaction, gc=True)


def wire_tracked(values: Sequence[bytes]) -> np.ndarray:
    return feature_matrix(_TRACKED.decode_many(values).accepted)


_WIRE = WireDecoder(Transaction)


def wire_decode_only(values: Sequence[bytes]) -> list[Any]:
    decode = _WIRE._decode
    return [decode(value) for value in values]


def wire_without_matrix(values: Sequence[bytes]) -> Any:
    return _WIRE.decode_many(values)


def orjson_floor(values: Sequence[bytes]) -> list[Any]:
    return [orjson.loads(value) for value in values]


CONTENDERS: list[tuple[str, Callable[[Sequence[bytes]], Any]]] = [
    ("pydantic model_validate_json (before)", pydantic_before),
    ("pydantic + every rule (API, DLQ reasons)", pydantic_all_rules),
    ("wire decoder, gc=False (the scorer)", wire),
    ("wire decoder, gc=True", wire_tracked),
    ("orjson.loads, no validation (floor)", orjson_floor),
]


def measure(decode: Callable[[Sequence[bytes]], Any], batches: list[list[bytes]]) -> list[float]:
    """Microseconds per message of each batch; the previous batch's result stays alive meanwhile."""
    held: Any = None
    costs = []
    for batch in batches:
        started = time.perf_counter()
        result = decode(batch)
        costs.append((time.perf_counter() - started) / len(batch) * 1e6)
        held = result  # the scorer holds one decoded batch while it scores and produces it
    del held
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()
    values, source = real_messages(args.batch_size * 4)
    batches = [
        values[(i * args.batch_size) % len(values) :][: args.batch_size] or values[: args.batch_size]
        for i in range(args.batches)
    ]
    check = [np.array_equal(pydantic_before(batches[0]), wire(batches[0]))]
    print(f"decode + feature matrix, in-process: {args.batches} batches of {args.batch_size:,} messages")
    print(f"  data: {source}; mean message {np.mean([len(v) for v in values]):.0f} bytes")
    print(f"  machine: {os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  the wire decoder's matrix equals pydantic's, bit for bit: {check[0]}")
    print()
    print(f"{'contender':44} {'us/message':>11} {'p10':>7} {'p90':>7} {'vs before':>10}")
    medians: dict[str, float] = {}
    for name, decode in CONTENDERS:
        gc.collect()
        measure(decode, batches[:2])  # warm-up
        costs = sorted(measure(decode, batches))
        medians[name] = statistics.median(costs)
        p10, p90 = costs[len(costs) // 10], costs[(len(costs) * 9) // 10]
        ratio = medians[CONTENDERS[0][0]] / medians[name]
        print(f"{name:44} {medians[name]:11.2f} {p10:7.2f} {p90:7.2f} {ratio:9.2f}x")
    print()
    print("where the wire decoder's time goes (same batches):")
    phases = [("msgspec decode alone", wire_decode_only), ("+ repeated-key count, checks", wire_without_matrix)]
    for name, decode in phases:
        measure(decode, batches[:2])
        print(f"  {name:42} {statistics.median(measure(decode, batches)):11.2f}")
    print(f"  {'+ feature matrix (= the scorer)':42} {medians[CONTENDERS[2][0]]:11.2f}")
    print()
    print(f"after: load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
