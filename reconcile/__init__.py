"""reconcile: find and repair tutorial progress lost between localStorage and PostgreSQL.

The public API for notebooks and scripts (:mod:`reconcile.outputs.artifacts`)::

    import reconcile
    run = reconcile.load_run("reports")  # a run folder, or an output folder: its newest run
    run.diff, run.quarantine, run.checks, run.at_risk(), run.by_tutorial(), run.user("u-1")
    history = reconcile.load_history("reports")  # one row per night

The names are imported on first use, so importing a pure stage (``reconcile.compare``)
loads no I/O code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconcile.config import Config
    from reconcile.outputs.artifacts import (
        MIGRATED_BAR,
        RunArtifacts,
        RunNotFoundError,
        latest_run,
        list_runs,
        load_history,
        load_run,
        user_nights,
        working_path,
    )
    from reconcile.outputs.folder import prune_runs
    from reconcile.outputs.result import RunResult
    from reconcile.partitions import Execution
    from reconcile.pipeline import run_job

__all__ = [
    "MIGRATED_BAR",
    "RunArtifacts",
    "RunNotFoundError",
    "latest_run",
    "list_runs",
    "load_history",
    "load_run",
    "user_nights",
    "working_path",
]
__version__ = "0.1.0"

#: The run API for orchestrators (README "Run from Python, Airflow or Dagster"): name -> module.
_RUN_API = {
    "Config": "reconcile.config",
    "Execution": "reconcile.partitions",
    "RunResult": "reconcile.outputs.result",
    "prune_runs": "reconcile.outputs.folder",
    "run_job": "reconcile.pipeline",
}
__all__ += ["Config", "Execution", "RunResult", "prune_runs", "run_job"]


def __getattr__(name: str) -> Any:
    if name in _RUN_API:
        from importlib import import_module

        return getattr(import_module(_RUN_API[name]), name)
    if name in __all__:
        from reconcile.outputs import artifacts

        return getattr(artifacts, name)
    raise AttributeError(f"module 'reconcile' has no attribute {name!r}")
