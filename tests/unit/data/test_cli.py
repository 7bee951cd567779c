"""`fraudstream data check | synth | fetch` through the real command line (no network: kagglehub is faked)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from fraudstream.data.synth import write_synthetic

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    from fraudstream.cli import main

    main._register()
    return main.app


def _run(app: typer.Typer, *args: str) -> Result:
    return runner.invoke(app, ["data", *args], env={"COLUMNS": "200"})


def _flat(result: Result) -> str:
    return " ".join(result.output.split())


@pytest.mark.parametrize("command", ["check", "synth", "fetch"])
def test_every_command_shows_an_example(app: typer.Typer, command: str) -> None:
    result = _run(app, command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output
    assert f"fraudstream data {command}" in result.output


def test_check_prints_the_summary_of_a_valid_file(app: typer.Typer, tmp_path: Path) -> None:
    path = write_synthetic(tmp_path / "creditcard_synthetic.csv", 3000, seed=1, fraud_rate=0.01)
    result = _run(app, "check", str(path))
    assert result.exit_code == 0, result.output
    text = _flat(result)
    assert "rows 3,000" in text
    assert "frauds 30" in text
    assert "fraud rate 1.0000%" in text
    assert "sha256 " in text
    assert "valid" in text


def test_check_names_the_line_and_column_of_a_bad_value(app: typer.Typer, tmp_path: Path) -> None:
    path = write_synthetic(tmp_path / "creditcard_synthetic.csv", 30, seed=1)
    lines = path.read_text().splitlines()
    fields = lines[16].split(",")
    fields[3] = "abc"
    lines[16] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")

    result = _run(app, "check", str(path))

    assert result.exit_code == 1
    assert f"{path}, line 17, column 'V3': 'abc' is not a number" in _flat(result)


def test_check_without_a_path_checks_data_path_and_says_how_to_get_it(app: typer.Typer) -> None:
    result = _run(app, "check")
    assert result.exit_code == 1
    text = _flat(result)
    assert "data/creditcard.csv: file not found" in text
    assert "kaggle.com/datasets/mlg-ulb/creditcardfraud" in text


def test_synth_writes_a_valid_file_and_says_it_is_synthetic(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "out" / "creditcard_synthetic.csv"
    result = _run(app, "synth", "--rows", "2000", "--out", str(out), "--seed", "3", "--fraud-rate", "0.005")
    assert result.exit_code == 0, result.output
    text = _flat(result)
    assert "SYNTHETIC DATA" in text
    assert "rows 2,000" in text
    assert "frauds 10" in text
    assert out.read_text().startswith("Time,V1,")


def test_synth_defaults_to_data_creditcard_synthetic(app: typer.Typer) -> None:
    result = _run(app, "synth", "--rows", "500")
    assert result.exit_code == 0, result.output
    assert Path("data/creditcard_synthetic.csv").is_file()


def test_synth_refuses_a_name_that_hides_that_the_data_is_synthetic(app: typer.Typer, tmp_path: Path) -> None:
    result = _run(app, "synth", "--rows", "100", "--out", str(tmp_path / "creditcard.csv"))
    assert result.exit_code == 1
    assert "must contain 'synthetic'" in _flat(result)
    assert not (tmp_path / "creditcard.csv").exists()


def test_synth_refuses_zero_rows(app: typer.Typer) -> None:
    assert _run(app, "synth", "--rows", "0").exit_code == 2


# ---- fetch ------------------------------------------------------------------------------------------------


def test_fetch_without_kagglehub_says_how_to_install_it_or_place_the_file(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "kagglehub", None)  # import kagglehub -> ImportError, installed or not
    result = _run(app, "fetch")
    assert result.exit_code == 1
    text = _flat(result)
    assert "kagglehub is not installed" in text
    assert "pip install 'fraudstream[kaggle]'" in text
    assert "kaggle.com/datasets/mlg-ulb/creditcardfraud" in text
    assert "put creditcard.csv at data/creditcard.csv" in text
    assert not Path("data/creditcard.csv").exists()


def _fake_kagglehub(monkeypatch: pytest.MonkeyPatch, download: object) -> list[str]:
    calls: list[str] = []

    def dataset_download(handle: str) -> str:
        calls.append(handle)
        if isinstance(download, Exception):
            raise download
        return str(download)

    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=dataset_download))
    return calls


def test_fetch_offline_says_so_and_how_to_place_the_file(app: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_kagglehub(monkeypatch, ConnectionError("Name or service not known"))
    result = _run(app, "fetch")
    assert result.exit_code == 1
    text = _flat(result)
    assert "Kaggle download of mlg-ulb/creditcardfraud failed" in text
    assert "Name or service not known" in text
    assert "KAGGLE_USERNAME" in text
    assert "put creditcard.csv at data/creditcard.csv" in text


def test_fetch_copies_and_checks_the_download(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = tmp_path / "kagglehub-cache" / "versions" / "3"
    cache.mkdir(parents=True)
    write_synthetic(cache / "creditcard_synthetic.csv", 400, seed=2).rename(cache / "creditcard.csv")
    calls = _fake_kagglehub(monkeypatch, cache.parent.parent)

    result = _run(app, "fetch")

    assert result.exit_code == 0, result.output
    assert calls == ["mlg-ulb/creditcardfraud"]
    assert Path("data/creditcard.csv").read_bytes() == (cache / "creditcard.csv").read_bytes()
    assert "rows 400" in _flat(result)


def test_fetch_refuses_a_bad_download_and_leaves_no_file(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "creditcard.csv").write_text("<html>rate limited</html>\n")
    _fake_kagglehub(monkeypatch, tmp_path / "dl")

    result = _run(app, "fetch")

    assert result.exit_code == 1
    assert "unknown column '<html>rate limited</html>'" in _flat(result)
    assert not Path("data/creditcard.csv").exists()


def test_fetch_keeps_an_existing_file_unless_forced(app: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    Path("data").mkdir()
    write_synthetic(Path("data/creditcard_synthetic.csv"), 300, seed=2).rename("data/creditcard.csv")
    calls = _fake_kagglehub(monkeypatch, ConnectionError("offline"))

    kept = _run(app, "fetch")
    forced = _run(app, "fetch", "--force")

    assert kept.exit_code == 0, kept.output
    assert "already there" in _flat(kept)
    assert forced.exit_code == 1
    assert calls == ["mlg-ulb/creditcardfraud"]
