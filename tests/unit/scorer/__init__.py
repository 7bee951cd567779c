"""Unit tests of the scorer (no broker)."""
