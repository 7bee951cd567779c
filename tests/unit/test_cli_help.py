"""Every command tells how it is called: its --help ends with an example."""

from __future__ import annotations

from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from fraudstream.cli import main

main._register()
ROOT = get_command(main.app)


def _is_group(command: Any) -> bool:
    return hasattr(command, "commands")  # typer vendors click: test the shape, not the class


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if prefix else []
    for name, command in group.commands.items():
        if _is_group(command):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


ALL = _commands(ROOT)


def test_every_command_of_the_issue_is_there() -> None:
    for expected in [
        ("kafka", "up"),
        ("kafka", "down"),
        ("kafka", "status"),
        ("kafka", "topics"),
        ("data", "check"),
        ("data", "synth"),
        ("train",),
        ("replay",),
        ("score",),
        ("serve",),
        ("sink",),
        ("demo",),
        ("alerts", "tail"),
    ]:
        assert expected in ALL


@pytest.mark.parametrize("words", [command for command in ALL if command], ids=" ".join)
def test_help_shows_an_example(words: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main.app, [*words, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    if len(words) == 1 and _is_group(ROOT.commands[words[0]]):  # type: ignore[attr-defined]
        return  # a group lists its commands; each of them shows its example
    assert "Example" in result.output
    assert "$ fraudstream " + words[0] in result.output


def test_root_help_is_fast_and_shows_an_example() -> None:
    import subprocess
    import sys
    import time

    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "fraudstream", "--help"], capture_output=True, text=True, check=True)
    assert time.perf_counter() - started < 10  # generous bound; the point is: no mlflow/sklearn import
    assert "Example" in out.stdout
    probe = (
        "import sys, fraudstream.cli.main as m; m._register(); print(sorted(k for k in sys.modules if k in "
        "('mlflow', 'sklearn', 'confluent_kafka', 'fastapi', 'pandas')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
