"""`fraudstream data ...`: check a creditcard.csv, generate a synthetic one, fetch the real one from Kaggle."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.markup import escape

from fraudstream.cli.common import ExitCode, console, err_console, example, settings_or_exit
from fraudstream.exceptions import FraudstreamError

if TYPE_CHECKING:
    from fraudstream.data.check import DatasetSummary
    from fraudstream.settings import Settings

app = typer.Typer(
    help="Check, generate or fetch the creditcard.csv data set.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

SYNTHETIC_BANNER = (
    "[bold black on yellow] SYNTHETIC DATA [/] These rows are generated, not real card transactions: "
    "a model trained on them says nothing about real fraud."
)


@app.command(
    "check",
    epilog=example("fraudstream data check data/creditcard.csv", "fraudstream data check  # FRAUD_DATA_PATH"),
)
def check(
    path: Annotated[
        Path | None, typer.Argument(help="CSV to check. Default: FRAUD_DATA_PATH (data/creditcard.csv).")
    ] = None,
) -> None:
    """Validate a creditcard.csv (31 columns, finite numbers, Class 0/1) and print its size, frauds and sha256."""
    settings = settings_or_exit()
    from fraudstream.data.check import validate_csv

    target = path or settings.data_path
    try:
        with console.status(f"checking {escape(str(target))} ..."):
            summary = validate_csv(target)
    except FraudstreamError as exc:
        from fraudstream.data.source import how_to_get_real_data

        _fail(exc, hint=how_to_get_real_data(settings) if path is None else None)
    _print_summary(summary)
    console.print(f"[green]valid[/green]: {escape(str(target))}", soft_wrap=True)


@app.command(
    "synth",
    epilog=example(
        "fraudstream data synth --rows 100000 --out data/creditcard_synthetic.csv",
        "fraudstream data synth --rows 20000 --seed 7 --fraud-rate 0.01 --out /tmp/creditcard_synthetic_small.csv",
    ),
)
def synth(
    rows: Annotated[int, typer.Option("--rows", "-n", min=1, max=10_000_000, help="Rows to generate.")] = 100_000,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output CSV; its name must contain 'synthetic'.")] = Path(
        "data"
    )
    / "creditcard_synthetic.csv",
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same file.")] = 42,
    fraud_rate: Annotated[float, typer.Option("--fraud-rate", min=0.0, max=0.5, help="Share of frauds.")] = 0.0017,
    separation: Annotated[
        float,
        typer.Option("--separation", min=0.0, max=10.0, help="How distinguishable frauds are: 0 none, 1 the default."),
    ] = 1.0,
) -> None:
    """Generate a SYNTHETIC creditcard.csv with the real schema and imbalance (for when the real file is absent)."""
    settings_or_exit()
    from fraudstream.data.check import validate_csv
    from fraudstream.data.synth import write_synthetic

    console.print(SYNTHETIC_BANNER, soft_wrap=True)
    try:
        with console.status(f"generating {rows:,} synthetic rows ..."):
            written = write_synthetic(out, rows, seed=seed, fraud_rate=fraud_rate, separation=separation)
            summary = validate_csv(written)
    except FraudstreamError as exc:
        _fail(exc)
    _print_summary(summary)
    console.print(f"[yellow]wrote SYNTHETIC data[/yellow] to {escape(str(written))}", soft_wrap=True)


@app.command(
    "fetch",
    epilog=example("fraudstream data fetch", "KAGGLE_USERNAME=me KAGGLE_KEY=... fraudstream data fetch --force"),
)
def fetch(
    force: Annotated[bool, typer.Option("--force", help="Download again and replace an existing file.")] = False,
) -> None:
    """Download the real creditcard.csv from Kaggle (needs `pip install 'fraudstream\\[kaggle]'` and credentials)."""
    settings = settings_or_exit()
    from fraudstream.data.check import validate_csv

    dest = settings.data_path
    try:
        if dest.is_file() and not force:
            console.print(f"{escape(str(dest))} is already there (use --force to download again); checking it.")
        else:
            _fetch_into(settings, dest)
        with console.status(f"checking {escape(str(dest))} ..."):
            summary = validate_csv(dest)
    except FraudstreamError as exc:
        _fail(exc, hint=_manual_hint(settings))
    _print_summary(summary)
    console.print(f"[green]ready[/green]: {escape(str(dest))}", soft_wrap=True)


# ---- helpers ----------------------------------------------------------------------------------------------


def _fetch_into(settings: Settings, dest: Path) -> None:
    """Download with kagglehub, check the file, then place it at ``dest`` (complete or not at all)."""
    from fraudstream.data.check import validate_csv
    from fraudstream.data.source import KAGGLE_DATASET

    with console.status(f"downloading {KAGGLE_DATASET} from Kaggle ..."):
        downloaded = _download_from_kaggle()
    with console.status(f"checking {escape(str(downloaded))} ..."):
        validate_csv(downloaded)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    try:
        shutil.copyfile(downloaded, partial)
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    console.print(f"copied {escape(str(downloaded))} to {escape(str(dest))}", soft_wrap=True)


def _download_from_kaggle() -> Path:
    """The path of creditcard.csv in kagglehub's cache; FraudstreamError when kagglehub or Kaggle is unavailable."""
    from fraudstream.data.source import KAGGLE_DATASET

    try:
        import kagglehub
    except ImportError as exc:
        raise FraudstreamError(
            "the optional package kagglehub is not installed: pip install 'fraudstream[kaggle]' (or kagglehub)"
        ) from exc
    try:
        folder = Path(kagglehub.dataset_download(KAGGLE_DATASET))
    except Exception as exc:  # kagglehub raises many kinds (HTTP, auth, network): all mean "not downloaded"
        raise FraudstreamError(
            f"the Kaggle download of {KAGGLE_DATASET} failed ({type(exc).__name__}: {exc}). Offline, or no Kaggle "
            "credentials? Set KAGGLE_USERNAME and KAGGLE_KEY, or put kaggle.json in ~/.kaggle/"
        ) from exc
    found = sorted(folder.rglob("creditcard.csv")) if folder.is_dir() else []
    if not found:
        raise FraudstreamError(f"the Kaggle download in {folder} holds no creditcard.csv")
    return found[0]


def _manual_hint(settings: Settings) -> str:
    from fraudstream.data.source import KAGGLE_URL

    return (
        f"To place it by hand: download the data set from {KAGGLE_URL} (a free Kaggle account is enough), unzip it, "
        f"put creditcard.csv at {settings.data_path}, then run `fraudstream data check`. See data/README.md."
    )


def _print_summary(summary: DatasetSummary) -> None:
    from fraudstream.data.source import KAGGLE_SHA256

    note = " (identical to Kaggle's creditcard.csv)" if summary.sha256 == KAGGLE_SHA256 else ""
    rows = {
        "file": escape(str(summary.path)),
        "rows": f"{summary.rows:,}",
        "frauds": f"{summary.frauds:,}",
        "fraud rate": f"{summary.fraud_rate:.4%}",
        "sha256": summary.sha256 + note,
    }
    for key, value in rows.items():
        console.print(f"[bold]{key:<11}[/bold]{value}", soft_wrap=True, highlight=False)


def _fail(exc: FraudstreamError, hint: str | None = None) -> NoReturn:
    err_console.print(f"[red]error[/red]: {escape(str(exc))}", soft_wrap=True)
    if hint:
        err_console.print(escape(hint), soft_wrap=True)
    raise typer.Exit(ExitCode.FAILED) from exc
