"""`fraudstream serve` and `fraudstream sink`: registered by their module, with an example in --help."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from fraudstream.cli import serve


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer(rich_markup_mode="rich")
    serve.register(root)
    return root


@pytest.mark.parametrize(("command", "example"), [("serve", "fraudstream serve --host"), ("sink", "fraudstream sink")])
def test_help_shows_an_example(app: typer.Typer, command: str, example: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    assert example in result.output


def test_serve_refuses_a_bad_port(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code == 2
