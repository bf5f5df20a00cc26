"""The migration guide's own dashboard, computed from the run's backend snapshot.

The guide asks operators to run a health check, two monitoring queries and to judge its
success criteria by hand (``shared/seed``: "Database Health Check", "Monitoring
Dashboard", "Success Criteria"). The run has the whole table in memory already, so it
computes the same figures from it: the report shows them and ``summary.json`` keeps them
under ``"dashboard"``. Plain JSON data (numbers, strings, lists, dicts) throughout.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import pandas as pd

from reconcile.compare.status import UserTotals

#: The guide's bar for "90%+ of users successfully migrated".
MIGRATED_BAR: Final = 0.9
#: Days of ``created_at`` listed (newest first); the rest are summed in ``older_days``.
MAX_DAYS: Final = 90


def guide_dashboard(backend: pd.DataFrame, totals: UserTotals) -> dict[str, Any]:
    """``{"health", "per_day", "per_tutorial", "success_criteria"}`` of one night.

    ``backend`` is the table as the run read it (every row, valid or not: the guide's
    queries read the table as it is); ``totals`` the run's per-user figures.
    """
    return {
        "health": _health(backend),
        "per_day": _per_day(backend),
        "per_tutorial": _per_tutorial(backend),
        "success_criteria": success_criteria(totals),
    }


def success_criteria(totals: UserTotals) -> list[dict[str, Any]]:
    """The two criteria a run can judge: users migrated, and no data loss."""
    rate = totals.migration_success_rate
    return [
        {
            "name": "90%+ of users successfully migrated",
            "value": rate,
            "bar": MIGRATED_BAR,
            "passed": bool(rate >= MIGRATED_BAR),
        },
        {
            "name": "Zero data loss incidents (keys at risk)",
            "value": int(totals.at_risk),
            "bar": 0,
            "passed": totals.at_risk == 0,
        },
    ]


def _health(backend: pd.DataFrame) -> dict[str, Any]:
    """SELECT COUNT(*), COUNT(DISTINCT user_id), COUNT(DISTINCT tutorial_id), AVG, certificates."""
    return {
        "total_records": len(backend),
        "unique_users": int(backend["user_id"].nunique()),
        "unique_tutorials": int(backend["tutorial_id"].nunique()),
        "avg_completion": _mean(backend["completion_percentage"]),
        "total_certificates": _certificates(backend["certificate_earned"]),
    }


def _per_day(backend: pd.DataFrame) -> dict[str, Any]:
    """Records and distinct users per UTC day of ``created_at``, newest first."""
    created = backend["created_at"]
    known = created.notna().to_numpy()
    day_ns = 86_400 * 10**9
    days = created.to_numpy(dtype="datetime64[ns]")[known].astype(np.int64) // day_ns
    frame = pd.DataFrame({"day": days, "user_id": backend["user_id"].to_numpy()[known]})
    grouped = frame.groupby("day", sort=True)["user_id"].agg(["size", "nunique"]).iloc[::-1]
    dates = pd.to_datetime(grouped.index.to_numpy() * day_ns).strftime("%Y-%m-%d")
    rows = [
        {"date": str(day), "total_progress_records": int(n), "unique_users": int(users)}
        for day, n, users in zip(dates, grouped["size"], grouped["nunique"], strict=True)
    ]
    older = rows[MAX_DAYS:]
    return {
        "days": rows[:MAX_DAYS],
        "older_days": len(older),
        "older_records": sum(r["total_progress_records"] for r in older),
        "no_created_at": int((~known).sum()),
    }


def _per_tutorial(backend: pd.DataFrame) -> list[dict[str, Any]]:
    """Enrollments, average completion and certificates per tutorial, most enrolled first."""
    frame = pd.DataFrame(
        {
            "tutorial_id": backend["tutorial_id"].to_numpy(dtype=object),
            "completion": pd.to_numeric(backend["completion_percentage"], errors="coerce"),
            "certificate": backend["certificate_earned"].to_numpy(dtype=object) == True,  # noqa: E712
        }
    )
    grouped = frame.groupby("tutorial_id", sort=True).agg(
        enrollments=("tutorial_id", "size"),
        avg_completion=("completion", "mean"),
        certificates_earned=("certificate", "sum"),
    )
    grouped = grouped.sort_values("enrollments", ascending=False, kind="stable")
    return [
        {
            "tutorial_id": str(tutorial),
            "enrollments": int(row.enrollments),
            "avg_completion": _number(row.avg_completion),
            "certificates_earned": int(row.certificates_earned),
        }
        for tutorial, row in zip(grouped.index, grouped.itertuples(), strict=True)
    ]


def _mean(values: pd.Series) -> float | None:
    return _number(pd.to_numeric(values, errors="coerce").mean())


def _number(value: Any) -> float | None:
    """A finite float, or None (no rows, or no number)."""
    if value is None or pd.isna(value) or not math.isfinite(float(value)):
        return None
    return float(value)


def _certificates(values: pd.Series) -> int:
    return int((values.to_numpy(dtype=object) == True).sum())  # noqa: E712
