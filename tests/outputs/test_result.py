"""The run's typed result: its figures are counted once, vectorised, in precedence order."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from reconcile.compare.status import UserTotals
from reconcile.errors import ExitCode
from reconcile.model import RUN_QUARANTINE_COLUMNS, CheckResult, Status
from reconcile.outputs.result import RunResult, SourceInfo
from reconcile.repair.scripts import RepairScripts

MOMENT = datetime(2026, 1, 20, 8, 0, tzinfo=UTC)


def result(
    statuses: list[str], checks: tuple[CheckResult, ...] = (), fail_on: str = "actionable"
) -> RunResult:
    diff = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(len(statuses))],
            "status": pd.Series(statuses, dtype=object),
        }
    )
    quarantine = pd.DataFrame({name: ["x"] for name in RUN_QUARANTINE_COLUMNS})
    return RunResult(
        run_id="20260120T080000Z-0001",
        started_at=MOMENT,
        finished_at=MOMENT,
        source=SourceInfo("postgresql://db", "public.t", ("e",), 1, 2, 0, 0, 7, 5),
        diff=diff,
        quarantine=quarantine,
        totals=UserTotals(3, 2, 0.666667, 1),
        checks=checks,
        run_dir=Path("/nowhere"),
        scripts=RepairScripts("", "", "", {"insert": 1}),
        fail_on=fail_on,
    )


def test_counts_hold_every_status_in_precedence_order_then_the_run_counts() -> None:
    run = result(["in_sync", "in_sync", "missing_in_backend", "foreign_user"])

    assert list(run.counts) == [s.value for s in Status] + [
        "backend_rows",
        "local_records",
        "quarantined",
        "users_with_local_data",
    ]
    assert run.counts["in_sync"] == 2 and run.counts["missing_in_backend"] == 1
    assert run.counts["conflict"] == 0 and run.counts["backend_only"] == 0
    assert (run.counts["backend_rows"], run.counts["local_records"]) == (5, 7)
    assert (run.counts["quarantined"], run.counts["users_with_local_data"]) == (1, 3)
    assert run.summary["counts"] == run.counts


def test_the_figures_are_computed_once_not_on_every_access() -> None:
    run = result(["in_sync", "local_ahead"])
    run.diff.loc[:, "status"] = "in_sync"  # a later change to the frame is not recounted

    assert run.summary is run.summary
    assert run.counts is run.counts
    assert run.counts["local_ahead"] == 1 and run.exit_code is ExitCode.ACTIONABLE
    assert run.summary["exit_code"] == 1


def test_an_empty_diff_counts_zero_everywhere() -> None:
    run = result([])

    assert all(run.counts[s.value] == 0 for s in Status)
    assert run.exit_code is ExitCode.OK


@pytest.mark.parametrize(
    ("statuses", "checks", "code"),
    [
        (["in_sync", "backend_ahead", "backend_only", "invalid_local", "foreign_user"], (), 0),
        (["in_sync", "conflict"], (), 1),
        (["invalid_backend"], (), 1),
        (["in_sync"], (CheckResult("c", success=False, unexpected_count=2),), 1),
        (["in_sync"], (CheckResult("c", success=True, unexpected_count=0),), 0),
    ],
)
def test_exit_code_is_1_for_a_repair_a_review_or_a_failed_check(
    statuses: list[str], checks: tuple[CheckResult, ...], code: int
) -> None:
    run = result(statuses, checks)

    assert run.exit_code == code and run.summary["exit_code"] == code


def test_a_status_outside_the_vocabulary_is_a_bug_not_a_silent_zero() -> None:
    with pytest.raises(ValueError, match="not_a_status"):
        result(["in_sync", "not_a_status"])


def test_the_summary_keeps_its_shape() -> None:
    summary = result(["in_sync"]).summary

    assert list(summary) == [
        "run_id",
        "started_at",
        "finished_at",
        "counts",
        "migration_success_rate",
        "migrated_users",
        "at_risk",
        "actions",
        "exit_code",
        "exit_policy",
        "checks",
        "source",
        "history",
        "dashboard",
        "timings_seconds",
    ]
    assert summary["started_at"] == "2026-01-20T08:00:00Z"
