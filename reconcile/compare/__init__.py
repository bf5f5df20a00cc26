"""Compare: merge local records per key and give every key one status (pure, no I/O)."""
