"""Outputs: the run's typed result, its folder and files, the report, the analysts' API."""
