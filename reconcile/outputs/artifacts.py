"""Read a run's artifacts back: the public API for notebooks and scripts.

>>> import reconcile
>>> run = reconcile.load_run(reconcile.latest_run("reports"))
>>> run.diff[run.diff.status == "missing_in_backend"]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from reconcile.model import DIFF, FOREIGN, QUARANTINE, SUMMARY
from reconcile.outputs.csv_safe import read_csv
from reconcile.outputs.result import foreign_frame

_RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$")


@dataclass(frozen=True)
class RunArtifacts:
    """One run folder as frames: what the report showed, ready for analysis."""

    path: Path
    summary: dict[str, Any]
    diff: pd.DataFrame
    quarantine: pd.DataFrame
    #: Records set aside because their key names another user, and where they were found.
    foreign: pd.DataFrame

    @property
    def run_id(self) -> str:
        return str(self.summary["run_id"])

    @property
    def counts(self) -> pd.Series:
        """Keys per status (and the run's other counts) as a Series."""
        return pd.Series(self.summary["counts"], name=self.run_id)

    @property
    def checks(self) -> pd.DataFrame:
        return pd.DataFrame(self.summary["checks"])

    def user(self, user_id: str) -> pd.DataFrame:
        """Every key of one user, both sides side by side."""
        return self.diff[self.diff["user_id"] == user_id]


def list_runs(out: str | Path) -> list[Path]:
    """Completed run folders in ``out``, oldest first (run ids sort by time)."""
    folder = Path(out)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and _RUN_ID.match(p.name))


def latest_run(out: str | Path) -> Path:
    """The newest completed run folder in ``out``."""
    runs = list_runs(out)
    if not runs:
        raise FileNotFoundError(f"no completed run in {out}")
    return runs[-1]


def load_run(path: str | Path) -> RunArtifacts:
    """Load ``summary.json``, ``diff.parquet``, the quarantine and foreign records of a run."""
    folder = Path(path)
    summary = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
    diff = pd.read_parquet(folder / DIFF)
    quarantine = read_csv(folder / QUARANTINE)  # as text, exact: the formula guard undone
    foreign_path = folder / FOREIGN  # runs before foreign.csv existed have none
    foreign = read_csv(foreign_path) if foreign_path.exists() else foreign_frame([])
    return RunArtifacts(
        path=folder, summary=summary, diff=diff, quarantine=quarantine, foreign=foreign
    )


def load_history(out: str | Path) -> pd.DataFrame:
    """One row per recorded night (good or not), oldest first, with counts flattened."""
    from reconcile.outputs.history_store import METRICS_FILE

    path = Path(out) / METRICS_FILE
    if not path.exists():
        return pd.DataFrame()
    nights = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return pd.json_normalize(nights)
