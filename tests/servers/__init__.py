"""Local fake servers used by tests (127.0.0.1 only)."""
