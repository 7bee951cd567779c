"""The README is part of the product: its settings table and its test command must stay true."""

from __future__ import annotations

import re
from pathlib import Path

from fraudstream.cli.config import markdown_table
from fraudstream.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_settings_table_is_the_generated_one() -> None:
    assert markdown_table() in README, "regenerate it: fraudstream config --markdown"


def test_every_setting_is_documented() -> None:
    for field in Settings.model_fields:
        assert f"`{env_name(field)}`" in README


def test_ci_runs_exactly_the_readme_test_command() -> None:
    quick_start = README[README.index("## Quick start") :]
    commands = re.findall(r"^make (\w+)\s+#", quick_start, flags=re.MULTILINE)
    assert commands[:2] == ["demo", "test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text()
    assert "$(BIN)/ruff check ." in makefile
    assert "$(BIN)/pytest" in makefile
