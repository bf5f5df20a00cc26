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
    from reconcile.outputs.artifacts import (
        RunArtifacts,
        latest_run,
        list_runs,
        load_history,
        load_run,
    )

__all__ = ["RunArtifacts", "latest_run", "list_runs", "load_history", "load_run"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in __all__:
        from reconcile.outputs import artifacts

        return getattr(artifacts, name)
    raise AttributeError(f"module 'reconcile' has no attribute {name!r}")
