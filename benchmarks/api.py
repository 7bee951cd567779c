"""/predict latency and throughput over real HTTP, side by side with a naive baseline.

Ours: ``fraudstream serve`` (uvicorn, the kernel's FraudModel: the forest compiled to ONNX, one thread).
Baseline: the same endpoint shape served by a FastAPI app holding the model exactly as MLflow loads it
(``mlflow.sklearn.load_model``: the imblearn pipeline whose forest keeps its default ``n_jobs=-1``), scoring a
one-row DataFrame per request in a plain ``def`` endpoint, as a first version usually does.

Both servers get single transactions, one at a time, over one keep-alive HTTP connection (httpx), after a
warm-up; every request's wall time is measured at the client. The model is trained by the real trainer (real ULB
rows from ../shared/data when present, else synthetic) with a realistic forest: 100 trees of depth 12.

    .venv/bin/python benchmarks/api.py                  # ~2-3 minutes on 2 cores
    .venv/bin/python benchmarks/api.py --requests 20000 --baseline-requests 500

Targets (README): p99 <= 5 ms on 2 cores and >= 5x the baseline's requests per second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudstream.schemas import FEATURES, TransactionFeatures

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
REAL_FILES = ("creditcard_normal_sample.csv", "creditcard_fraud.csv")
MODEL_NAME = "fraudstream-bench"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---- the baseline server (run as a subprocess of this script) ------------------------------------------------
def baseline_server(port: int, tracking_uri: str, model_uri: str, threshold: float) -> None:
    """A FastAPI app answering POST /predict with the MLflow-loaded sklearn pipeline."""
    import mlflow.sklearn
    import uvicorn
    from fastapi import FastAPI

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    model = mlflow.sklearn.load_model(model_uri)
    app = FastAPI()

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/predict")
    def predict(transaction: TransactionFeatures) -> dict[str, Any]:
        frame = pd.DataFrame([transaction.model_dump()], columns=list(FEATURES))
        score = float(model.predict_proba(frame)[0, 1])
        return {"fraudulent": score >= threshold, "score": score, "threshold": threshold, "model_version": "1"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# ---- set-up ------------------------------------------------------------------------------------------------
def training_csv(work: Path, synthetic_rows: int) -> tuple[Path, bool]:
    """The real rows (normal sample + frauds, one CSV) when present, else a synthetic set."""
    if all((SHARED_DATA / name).is_file() for name in REAL_FILES):
        out = work / "creditcard.csv"
        frames = [pd.read_csv(SHARED_DATA / name) for name in REAL_FILES]
        pd.concat(frames).to_csv(out, index=False, float_format="%.15g")
        return out, True
    from fraudstream.data.synth import write_synthetic

    return write_synthetic(work / "creditcard_synthetic.csv", rows=synthetic_rows, seed=7), False


def train_model(state: Path, data: Path, trees: int, depth: int) -> tuple[str, str, float]:
    """Train and promote a model with the real trainer; returns (tracking URI, version, threshold)."""
    from fraudstream.settings import load_settings
    from trainer.config import TrainConfig
    from trainer.service import train

    settings = load_settings(state_dir=state, model_name=MODEL_NAME, min_f1=0.0)
    result = train(settings, TrainConfig(data=data, n_estimators=trees, max_depth=depth, bootstrap_rounds=100))
    if result.version is None:
        raise SystemExit(f"the benchmark model was not registered: {result.decision.reason}")
    return settings.tracking_uri, result.version, result.evaluation.threshold


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} was not ready in {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- measurement -------------------------------------------------------------------------------------------
def measure(url: str, bodies: list[bytes], requests: int, warmup: int) -> dict[str, Any]:
    """Sequential single-transaction requests on one keep-alive connection; client-side wall times."""
    import httpx

    headers = {"content-type": "application/json"}
    times = np.empty(requests)
    answers = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for i in range(warmup):
            client.post("/predict", content=bodies[i % len(bodies)]).raise_for_status()
        started = time.perf_counter()
        for i in range(requests):
            before = time.perf_counter()
            response = client.post("/predict", content=bodies[i % len(bodies)])
            times[i] = time.perf_counter() - before
            response.raise_for_status()
            if i < 200:
                answers.append(response.json())
        elapsed = time.perf_counter() - started
    return {
        "p50_ms": float(np.percentile(times, 50) * 1000),
        "p99_ms": float(np.percentile(times, 99) * 1000),
        "rps": requests / elapsed,
        "requests": requests,
        "answers": answers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000, help="Timed requests to fraudstream serve.")
    parser.add_argument("--baseline-requests", type=int, default=300, help="Timed requests to the baseline.")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--synthetic-rows", type=int, default=100_000)
    parser.add_argument(
        "--baseline-server", nargs=4, metavar=("PORT", "TRACKING_URI", "MODEL_URI", "THRESHOLD"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.baseline_server:
        port, tracking_uri, model_uri, threshold = args.baseline_server
        baseline_server(int(port), tracking_uri, model_uri, float(threshold))
        return

    import logging

    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="fraudstream-bench-api-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        data, real = training_csv(work, args.synthetic_rows)
        kind = "real" if real else "SYNTHETIC"
        print(f"training {args.trees} trees of depth {args.depth} on {kind} rows ({data.name})", flush=True)
        started = time.perf_counter()
        tracking_uri, version, threshold = train_model(work / "state", data, args.trees, args.depth)
        print(
            f"  model v{version}, threshold {threshold:.4f}, trained in {time.perf_counter() - started:.0f} s\n",
            flush=True,
        )
        rows = pd.read_csv(data, nrows=2000)
        bodies = [row.to_json().encode() for _, row in rows[list(FEATURES)].iterrows()]

        ours_port, base_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUD_", "MLFLOW_"))}
        env.update(
            FRAUD_STATE_DIR=str(work / "state"),
            FRAUD_MODEL_NAME=MODEL_NAME,
            FRAUD_API_PORT=str(ours_port),
            FRAUD_API_RUN_SINK="false",
            FRAUD_LOG_LEVEL="WARNING",
        )
        fraudstream = str(Path(sys.executable).with_name("fraudstream"))
        ours = start([fraudstream, "serve"], env, work / "serve.log")
        processes.append(ours)
        baseline = start(
            [
                sys.executable,
                __file__,
                "--baseline-server",
                str(base_port),
                tracking_uri,
                f"models:/{MODEL_NAME}/{version}",
                str(threshold),
            ],
            env,
            work / "baseline.log",
        )
        processes.append(baseline)
        wait_ready(f"http://127.0.0.1:{ours_port}", ours, work / "serve.log")
        wait_ready(f"http://127.0.0.1:{base_port}", baseline, work / "baseline.log")

        results = {
            "fraudstream serve (ONNX)": measure(f"http://127.0.0.1:{ours_port}", bodies, args.requests, args.warmup),
            "baseline (mlflow.sklearn, n_jobs=-1)": measure(
                f"http://127.0.0.1:{base_port}", bodies, args.baseline_requests, min(args.warmup, 30)
            ),
        }
        report(results, os.cpu_count() or 0)
    finally:
        for process in processes:
            stop(process)
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, dict[str, Any]], cores: int) -> None:
    (ours_name, ours), (base_name, base) = results.items()
    diff = max(abs(a["score"] - b["score"]) for a, b in zip(ours["answers"], base["answers"], strict=False))
    same = all(a["fraudulent"] == b["fraudulent"] for a, b in zip(ours["answers"], base["answers"], strict=False))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"POST /predict, one transaction per request, sequential, keep-alive HTTP, {cores} cores (load {load})")
    print(f"{'server':<40} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for name, result in results.items():
        print(
            f"{name:<40} {result['requests']:>8} {result['p50_ms']:>8.2f} {result['p99_ms']:>8.2f} "
            f"{result['rps']:>8.0f}"
        )
    speedup = ours["rps"] / base["rps"]
    print(f"\nthroughput: {speedup:.1f}x the baseline (target >= 5x): {'OK' if speedup >= 5 else 'MISSED'}")
    print(f"p99: {ours['p99_ms']:.2f} ms (target <= 5 ms): {'OK' if ours['p99_ms'] <= 5 else 'MISSED'}")
    print(
        f"same decisions on the first 200 rows: {same}; largest score difference {diff:.1e} "
        f"({ours_name} vs {base_name})"
    )


if __name__ == "__main__":
    main()
