"""reconcile: find and repair tutorial progress lost between localStorage and PostgreSQL.

The public API for notebooks and scripts::

    import reconcile
    run = reconcile.load_run(reconcile.latest_run("reports"))
    history = reconcile.load_history("reports")
"""

from reconcile.outputs.artifacts import RunArtifacts, latest_run, list_runs, load_history, load_run

__all__ = ["RunArtifacts", "latest_run", "list_runs", "load_history", "load_run"]
__version__ = "0.1.0"
