"""`python -m fraudstream ...` is the `fraudstream` command (the demo starts its services this way)."""

from fraudstream.cli.main import run

run()
