"""The one typed result of a run; the report, summary.json, notebooks and CLI render it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from reconcile.compare.status import UserTotals, status_counts
from reconcile.errors import ExitCode
from reconcile.model import FOREIGN_RUN_COLUMNS, CheckResult, Status
from reconcile.outputs import exit_policy
from reconcile.repair.scripts import RepairScripts


@dataclass(frozen=True)
class SourceInfo:
    """Where the run's data came from (no passwords)."""

    database: str
    table: str
    exports: tuple[str, ...]
    files: int
    exports_read: int
    ignored_keys: int
    foreign_records: int
    local_records: int
    backend_rows: int


@dataclass(frozen=True)
class RunResult:
    """Everything one run found. ``diff`` has one row per key (model.DIFF_COLUMNS).

    ``counts``, ``exit_code`` and ``summary`` are derived once, when the result is made,
    so every output (report, ``summary.json``, history, CLI) renders the same figures and
    none recounts; the result and its frames are read-only from then on.
    """

    run_id: str
    started_at: datetime
    finished_at: datetime
    source: SourceInfo
    diff: pd.DataFrame
    quarantine: pd.DataFrame
    totals: UserTotals
    checks: tuple[CheckResult, ...]
    run_dir: Path
    #: ``repair.sql``, ``rollback.sql``, ``review.sql`` and the keys each action covers.
    scripts: RepairScripts
    history_note: str = ""
    docs_index: Path | None = None
    #: Check name -> its Data Docs page, relative to ``run_dir`` (``data-docs/...#section``).
    docs_pages: dict[str, str] = field(default_factory=dict)
    #: Seconds per stage of the run (load, validate, compare, checks, ...).
    timings: dict[str, float] = field(default_factory=dict)
    #: Records set aside because their key names another user (SPEC 1.2), one row each:
    #: where they were found (:data:`~reconcile.model.FOREIGN_RUN_COLUMNS`).
    foreign: pd.DataFrame = field(default_factory=lambda: foreign_frame([]))
    #: The migration guide's dashboard (:func:`reconcile.outputs.dashboard.guide_dashboard`).
    dashboard: dict[str, Any] = field(default_factory=dict)
    #: What makes the run exit 1 (:mod:`reconcile.outputs.exit_policy`; ``--fail-on``).
    fail_on: str = exit_policy.DEFAULT
    #: Keys per status (every status, in precedence order), then ``backend_rows``,
    #: ``local_records``, ``quarantined`` and ``users_with_local_data``.
    counts: dict[str, int] = field(init=False, repr=False, compare=False)
    #: 1 when a rule of ``fail_on`` holds (by default: any key needs a repair or a
    #: review, or any check failed); else 0.
    exit_code: ExitCode = field(init=False, repr=False, compare=False)
    #: ``summary.json``'s ``exit_policy``: ``fail_on``, the ``rule`` that made it exit 1
    #: (or ``None``), its ``value`` and the ``findings`` per severity.
    exit_policy: dict[str, Any] = field(init=False, repr=False, compare=False)
    #: The content of ``summary.json`` (SPEC 4).
    summary: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        counts = status_counts(self.diff["status"])
        counts.update(
            backend_rows=self.source.backend_rows,
            local_records=self.source.local_records,
            quarantined=len(self.quarantine),
            users_with_local_data=self.totals.users_with_local_data,
        )
        policy = exit_policy.parse_policy(self.fail_on)
        figures = exit_policy.figures(
            counts, self.checks, self.actions.get("certificate_review", 0)
        )
        block = exit_policy.summary_block(policy, figures)
        exit_code = ExitCode.OK if block["rule"] is None else ExitCode.ACTIONABLE
        # A frozen dataclass sets its own derived fields through object.__setattr__.
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "exit_code", exit_code)
        object.__setattr__(self, "exit_policy", block)
        object.__setattr__(self, "summary", self._summary())

    @property
    def actions(self) -> dict[str, int]:
        """Keys per action of the repair: insert, merge, review, certificate_review."""
        return self.scripts.counts

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.success]

    def _summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "counts": dict(self.counts),
            "migration_success_rate": self.totals.migration_success_rate,
            "migrated_users": self.totals.migrated_users,
            "at_risk": self.totals.at_risk,
            "actions": dict(self.actions),
            "exit_code": int(self.exit_code),
            "exit_policy": dict(self.exit_policy),
            "checks": [
                {
                    "name": c.name,
                    "success": c.success,
                    "unexpected_count": c.unexpected_count,
                    "suite": c.suite,
                    "severity": c.severity,
                    "details": c.details,
                }
                for c in self.checks
            ],
            "source": {
                "database": self.source.database,
                "table": self.source.table,
                "exports": list(self.source.exports),
                "files": self.source.files,
                "exports_read": self.source.exports_read,
                "ignored_keys": self.source.ignored_keys,
                "foreign_records": self.source.foreign_records,
            },
            "history": self.history_note,
            "dashboard": self.dashboard,
            "timings_seconds": dict(self.timings),
        }


def foreign_frame(rows: Any) -> pd.DataFrame:
    """The run's foreign records (:data:`~reconcile.model.FOREIGN_RUN_COLUMNS`) from ``rows``."""
    frame = pd.DataFrame(rows, columns=list(FOREIGN_RUN_COLUMNS))
    frame["line"] = frame["line"].astype("Int64")
    return frame


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


STATUS_HELP: dict[str, str] = {
    Status.IN_SYNC: "both sides hold the same progress",
    Status.MISSING_IN_BACKEND: "local progress with no backend row: the migration lost it",
    Status.LOCAL_AHEAD: "local holds progress the backend lacks",
    Status.BACKEND_AHEAD: "backend holds more (progress made after migration): normal",
    Status.DIVERGED: "each side holds progress the other lacks",
    Status.BACKEND_ONLY: "no local record for it",
    Status.CONFLICT: "differs in a way no merge settles (e.g. total_chapters)",
    Status.INVALID_LOCAL: "every local record of the key failed validation",
    Status.INVALID_BACKEND: "the backend row fails validation",
    Status.FOREIGN_USER: "found only in another user's export: set aside",
}
