"""producer component."""
