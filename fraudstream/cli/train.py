"""`fraudstream train`: a thin command over trainer.service.train()."""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from fraudstream.cli.common import console, example, settings_or_exit

if TYPE_CHECKING:
    from trainer.service import TrainResult


class SplitKind(str, enum.Enum):
    stratified = "stratified"
    time = "time"


EXIT_CODES_HELP = (
    "Exit codes: 0 promoted to production; 3 registered but not promoted (worse than production); "
    "4 refused by the gate (nothing registered); 1 error; 2 bad configuration."
)


class RichReporter:
    """One status line per stage with its duration, for a person at a terminal."""

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        with console.status(f"{name} ..."):
            yield
        console.print(f"[green]✓[/green] {name} [dim]({time.perf_counter() - started:.1f} s)[/dim]")

    def note(self, message: str) -> None:
        console.print(f"  [dim]{message}[/dim]")


def render_result(result: TrainResult) -> Table:
    """The final table: the test metrics, the threshold and the gate's decision."""
    evaluation = result.evaluation
    table = Table(title=f"Run {result.run_id} — test split at its natural fraud rate", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    rows = [
        ("data", f"{result.dataset.path} ({'SYNTHETIC' if result.dataset.synthetic else 'real'})"),
        ("test rows / frauds", f"{evaluation.rows:,} / {evaluation.frauds}"),
        ("threshold (chosen on validation)", f"{evaluation.threshold:.4f}"),
        ("F1 (fraud)", f"{evaluation.f1:.4f}  [95% CI {evaluation.f1_ci_low:.3f} to {evaluation.f1_ci_high:.3f}]"),
        ("precision / recall", f"{evaluation.precision:.4f} / {evaluation.recall:.4f}"),
        ("PR-AUC / ROC-AUC", f"{evaluation.pr_auc:.4f} / {evaluation.roc_auc:.4f}"),
        ("accuracy", f"{evaluation.accuracy:.5f}"),
        ("confusion (tp fp fn tn)", f"{evaluation.tp} {evaluation.fp} {evaluation.fn} {evaluation.tn:,}"),
        ("fit time", f"{result.seconds.get('fit', 0):.1f} s"),
        ("decision", f"{result.decision.outcome.name.lower()}" + (f" (v{result.version})" if result.version else "")),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _default(field: str) -> object:
    from trainer.config import TrainConfig  # pydantic only: cheap, and keeps one source for every default

    return TrainConfig.model_fields[field].default


def train(
    data: Path | None = typer.Option(
        None,
        "--data",
        dir_okay=False,
        help="creditcard.csv to train on (default: data/creditcard.csv, else synthetic).",
    ),
    min_f1: float | None = typer.Option(
        None, "--min-f1", min=0.0, max=1.0, help="Gate: register only at test F1 >= this [default: FRAUD_MIN_F1, 0.91]."
    ),
    split: SplitKind = typer.Option(
        _default("split"), "--split", help="stratified (seeded) or time (earlier Time trains)."
    ),
    test_size: float = typer.Option(
        _default("test_size"), "--test-size", help="Share of rows kept for the final test."
    ),
    val_size: float = typer.Option(
        _default("val_size"), "--val-size", help="Share of training rows for the threshold."
    ),
    seed: int = typer.Option(_default("seed"), "--seed", help="Seed for the split, SMOTE and the forest."),
    n_estimators: int = typer.Option(_default("n_estimators"), "--n-estimators", help="Trees in the forest."),
    max_depth: int = typer.Option(
        _default("max_depth"), "--max-depth", help="Depth limit of each tree (0: unlimited)."
    ),
    min_samples_leaf: int = typer.Option(
        _default("min_samples_leaf"), "--min-samples-leaf", help="Fewest rows in a leaf."
    ),
    smote_ratio: float = typer.Option(_default("smote_ratio"), "--smote-ratio", help="SMOTE frauds per normal row."),
    smote_k_neighbors: int = typer.Option(_default("smote_k_neighbors"), "--smote-k", help="Neighbours SMOTE mixes."),
    n_jobs: int = typer.Option(_default("n_jobs"), "--n-jobs", help="Cores for fitting (-1: all)."),
) -> None:
    """Train SMOTE + RandomForest, track the run in MLflow, and register/promote it if it passes the gate."""
    from trainer.config import TrainConfig
    from trainer.service import train as run_training

    settings = settings_or_exit()
    config = TrainConfig(
        data=data,
        min_f1=min_f1,
        split=split.value,
        test_size=test_size,
        val_size=val_size,
        seed=seed,
        n_estimators=n_estimators,
        max_depth=max_depth or None,
        min_samples_leaf=min_samples_leaf,
        smote_ratio=smote_ratio,
        smote_k_neighbors=smote_k_neighbors,
        n_jobs=n_jobs,
    )
    console.print(f"MLflow store: [bold]{settings.tracking_uri}[/bold]  model: [bold]{settings.model_name}[/bold]")
    result = run_training(settings, config, RichReporter())
    console.print(render_result(result))
    style = {0: "green", 3: "yellow", 4: "red"}[result.exit_code]
    console.print(f"[{style}]{result.decision.reason}[/{style}]")
    if result.exit_code == 4:
        console.print("  To accept a lower score, run again with e.g. [bold]--min-f1 0.80[/bold] (or FRAUD_MIN_F1).")
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    app.command(
        "train",
        help="Train SMOTE + RandomForest on creditcard.csv, track it in MLflow, register and promote it "
        "only if it passes the F1 gate.\n\n" + EXIT_CODES_HELP,
        epilog=example(
            "fraudstream train",
            "fraudstream train --data data/creditcard.csv --min-f1 0.85 --n-estimators 200",
            "fraudstream train --split time --test-size 0.25",
        ),
    )(train)
