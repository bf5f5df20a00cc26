"""The demo: an embedded PostgreSQL and generated data holding every status and anomaly."""
