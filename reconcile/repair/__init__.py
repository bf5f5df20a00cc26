"""Repair: the SQL scripts of a run (pure) and applying them to the database."""
