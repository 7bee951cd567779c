"""scorer component."""
