"""`fraudstream train`: a thin command over trainer.service.train()."""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fraudstream.cli.common import console, example, settings_or_exit

if TYPE_CHECKING:
    from trainer.service import TrainResult


class SplitKind(str, enum.Enum):
    content = "content"
    time = "time"


class TimeEncodingChoice(str, enum.Enum):
    raw = "raw"
    time_of_day = "time_of_day"
    none = "none"


class GateRuleChoice(str, enum.Enum):
    point = "point"
    ci_low = "ci_low"


EXIT_CODES_HELP = (
    "Exit codes: 0 promoted to production; 3 registered but not promoted (worse than production on rows "
    "neither trained on, or no fair comparison possible); 4 refused by the gate (nothing registered); 5 registered "
    "as challenger (--as-challenger); 1 error; 2 bad configuration."
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
        console.print(f"  [dim]{escape(message)}[/dim]")


def render_result(result: TrainResult) -> Table:
    """The final table: the holdout metrics, the threshold, the gate and the comparison with production."""
    evaluation, threshold, decision = result.evaluation, result.threshold, result.decision
    judged = decision.candidate
    table = Table(title=f"Run {result.run_id} — holdout at its natural fraud rate", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    kind = result.split_sizes
    rows = [("data", f"{result.dataset.path} ({'SYNTHETIC' if result.dataset.synthetic else 'real'})")]
    if result.relabelling is not None:
        changed, named = result.relabelling.changed, result.relabelling.matched
        rows.append(("analysts' verdicts", f"{changed} labels changed ({named} rows named)"))
    rows += [
        ("training rows / frauds", f"{kind['train'][0]:,} / {kind['train'][1]}"),
        ("holdout rows / frauds", f"{evaluation.rows:,} / {evaluation.frauds}"),
        ("threshold (out of fold)", f"{threshold.threshold:.4f}  (out-of-fold F1 {threshold.f1:.4f})"),
        ("F1 (fraud)", f"{evaluation.f1:.4f}  (95% CI {evaluation.f1_ci_low:.3f} to {evaluation.f1_ci_high:.3f})"),
        (f"P(F1 >= {judged.min_f1:.2f})", f"{judged.p_at_least_min:.2f}  (bootstrap; gate rule {judged.rule})"),
        ("precision / recall", f"{evaluation.precision:.4f} / {evaluation.recall:.4f}"),
        ("PR-AUC / ROC-AUC", f"{evaluation.pr_auc:.4f} / {evaluation.roc_auc:.4f}"),
        ("confusion (tp fp fn tn)", f"{evaluation.tp} {evaluation.fp} {evaluation.fn} {evaluation.tn:,}"),
        ("fit time", f"{result.seconds.get('oof', 0):.1f} s out of fold + {result.seconds.get('fit', 0):.1f} s final"),
    ]
    champion = decision.champion
    if champion is not None and champion.comparison is not None:
        c = champion.comparison
        rows += [
            (f"vs production v{champion.version}", f"{c.challenger_f1:.4f} vs {c.production_f1:.4f} F1"),
            ("  on rows neither trained on", f"{c.rows:,} rows / {c.frauds} frauds"),
            (
                "  difference",
                f"{c.difference:+.4f}  (95% CI {c.difference_ci_low:+.3f} to {c.difference_ci_high:+.3f})",
            ),
            ("  P(at least as good)", f"{c.p_at_least_as_good:.2f}"),
        ]
    elif champion is not None:
        rows.append((f"vs production v{champion.version}", "no fair comparison (see below)"))
    rows.append(("decision", decision.outcome.name.lower() + (f" (v{result.version})" if result.version else "")))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _defaults() -> dict[str, Any]:
    """TrainConfig's defaults, the one source of what --help shows (the option's own default is the same value)."""
    from trainer.config import TrainConfig  # pydantic only, no model code

    defaults = {name: field.default for name, field in TrainConfig.model_fields.items()}
    defaults["max_depth"] = defaults["max_depth"] or 0  # 0: unlimited, as the option says
    return defaults


DEFAULTS = _defaults()


def train(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", dir_okay=False, help="creditcard.csv to train on (default: data/creditcard.csv, else synthetic)."
        ),
    ] = None,
    min_f1: Annotated[
        float | None,
        typer.Option(
            "--min-f1", min=0.0, max=1.0, help="Gate: register only at F1 >= this (default: FRAUD_MIN_F1, 0.91)."
        ),
    ] = None,
    gate_rule: Annotated[
        GateRuleChoice | None,
        typer.Option(
            "--gate-rule",
            help="What must reach --min-f1: point (the holdout F1) or ci_low (its 95% lower bound) "
            "(default: FRAUD_GATE_RULE, point).",
        ),
    ] = None,
    split: Annotated[
        SplitKind, typer.Option("--split", help="content (a hash of each row's values) or time (the latest rows).")
    ] = DEFAULTS["split"],
    test_size: Annotated[float, typer.Option("--test-size", help="Share of rows held out.")] = DEFAULTS["test_size"],
    folds: Annotated[int, typer.Option("--folds", help="Folds of the out-of-fold threshold choice.")] = DEFAULTS[
        "folds"
    ],
    seed: Annotated[int, typer.Option("--seed", help="Seed of SMOTE and the forest (not of the holdout).")] = DEFAULTS[
        "seed"
    ],
    n_estimators: Annotated[int, typer.Option("--n-estimators", help="Trees in the forest.")] = DEFAULTS[
        "n_estimators"
    ],
    max_depth: Annotated[int, typer.Option("--max-depth", help="Depth limit of each tree (0: unlimited).")] = DEFAULTS[
        "max_depth"
    ],
    min_samples_leaf: Annotated[int, typer.Option("--min-samples-leaf", help="Fewest rows in a leaf.")] = DEFAULTS[
        "min_samples_leaf"
    ],
    max_samples: Annotated[
        float, typer.Option("--max-samples", min=0.01, max=1.0, help="Share of the rows each tree draws.")
    ] = DEFAULTS["max_samples"],
    smote_ratio: Annotated[float, typer.Option("--smote-ratio", help="SMOTE frauds per normal row.")] = DEFAULTS[
        "smote_ratio"
    ],
    smote_k_neighbors: Annotated[int, typer.Option("--smote-k", help="Neighbours SMOTE mixes.")] = DEFAULTS[
        "smote_k_neighbors"
    ],
    time_encoding: Annotated[
        TimeEncodingChoice, typer.Option("--time-encoding", help="How the forest reads Time: raw, time_of_day or none.")
    ] = DEFAULTS["time_encoding"],
    n_jobs: Annotated[int, typer.Option("--n-jobs", help="Cores for fitting (-1: all).")] = DEFAULTS["n_jobs"],
    feedback: Annotated[
        bool,
        typer.Option(
            "--feedback/--no-feedback",
            help="Use analysts' verdicts (the fraud-feedback topic, FRAUD_TOPIC_FEEDBACK) as the labels of the rows "
            "they name, overriding the CSV's Class, before the holdout is chosen; logs how many labels changed.",
        ),
    ] = DEFAULTS["feedback"],
    as_challenger: Annotated[
        bool,
        typer.Option(
            "--as-challenger",
            help="Past the F1 gate, register it under the challenger alias (FRAUD_MODEL_CHALLENGER_ALIAS): the "
            "scorer scores it in production's shadow; `fraudstream model promote` makes it serve. Promoted if none "
            "serves.",
        ),
    ] = False,
) -> None:
    """Train SMOTE + RandomForest, track the run in MLflow, and register/promote it if it passes the gate."""
    from trainer.config import TrainConfig
    from trainer.gate import Outcome
    from trainer.service import train as run_training

    settings = settings_or_exit(gate_rule=gate_rule.value if gate_rule else None)
    config = TrainConfig(
        data=data,
        min_f1=min_f1,
        split=split.value,
        test_size=test_size,
        folds=folds,
        seed=seed,
        n_estimators=n_estimators,
        max_depth=max_depth or None,
        min_samples_leaf=min_samples_leaf,
        max_samples=max_samples,
        smote_ratio=smote_ratio,
        smote_k_neighbors=smote_k_neighbors,
        time_encoding=time_encoding.value,
        n_jobs=n_jobs,
        feedback=feedback,
        as_challenger=as_challenger,
    )
    console.print(f"MLflow store: [bold]{settings.tracking_uri}[/bold]  model: [bold]{settings.model_name}[/bold]")
    result = run_training(settings, config, RichReporter())
    console.print(render_result(result))
    style = {Outcome.PROMOTED: "green", Outcome.REGISTERED: "yellow", Outcome.REFUSED: "red"}.get(
        result.outcome, "cyan"
    )
    console.print(f"[{style}]{escape(result.decision.reason)}[/{style}]")
    if result.outcome is Outcome.REFUSED:
        console.print("  To accept a lower score, run again with e.g. [bold]--min-f1 0.80[/bold] (or FRAUD_MIN_F1).")
    raise typer.Exit(result.outcome.value)


def register(app: typer.Typer) -> None:
    app.command(
        "train",
        help="Train SMOTE + RandomForest on creditcard.csv, track it in MLflow, register and promote it "
        "only if it passes the F1 gate.\n\n" + EXIT_CODES_HELP,
        epilog=example(
            "fraudstream train",
            "fraudstream train --data data/creditcard.csv --min-f1 0.85 --n-estimators 200",
            "fraudstream train --split time --test-size 0.25",
            "fraudstream train --gate-rule ci_low --min-f1 0.85",
            "fraudstream train --feedback",
            "fraudstream train --as-challenger && fraudstream model status",
        ),
    )(train)
