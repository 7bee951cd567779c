"""Unit tests of the replay producer (no broker)."""
