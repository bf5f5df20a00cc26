"""reconcile: find and repair tutorial progress lost between localStorage and PostgreSQL.

The public API for notebooks and scripts::

    import reconcile
    run = reconcile.load_run(reconcile.latest_run("reports"))
    history = reconcile.load_history("reports")

The names are imported on first use, so importing a pure stage (``reconcile.compare``)
loads no I/O code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconcile.config import Config
    from reconcile.outputs.artifacts import (
        RunArtifacts,
        latest_run,
        list_runs,
        load_history,
        load_run,
    )
    from reconcile.outputs.folder import prune_runs
    from reconcile.outputs.result import RunResult
    from reconcile.partitions import Execution
    from reconcile.pipeline import run_job

__all__ = ["RunArtifacts", "latest_run", "list_runs", "load_history", "load_run"]
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
