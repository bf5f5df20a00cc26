"""The guide's dashboard equals the guide's own SQL run on the same table."""

from __future__ import annotations

import psycopg
import pytest

from reconcile.compare.status import UserTotals
from reconcile.db import libpq_url
from reconcile.outputs.dashboard import guide_dashboard, success_criteria
from reconcile.sources.backend import create_table, load_backend

HEALTH = """
SELECT COUNT(*), COUNT(DISTINCT user_id), COUNT(DISTINCT tutorial_id),
       AVG(completion_percentage)::float8,
       COUNT(CASE WHEN certificate_earned THEN 1 END)
FROM tutorial_progress"""
PER_DAY = """
SELECT to_char(DATE(created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD'), COUNT(*), COUNT(DISTINCT user_id)
FROM tutorial_progress GROUP BY 1 ORDER BY 1 DESC"""
PER_TUTORIAL = """
SELECT tutorial_id, COUNT(*) AS enrollments,
       AVG(completion_percentage)::float8,
       COUNT(CASE WHEN certificate_earned THEN 1 END)
FROM tutorial_progress GROUP BY tutorial_id ORDER BY enrollments DESC, tutorial_id"""


def test_the_dashboard_is_the_guides_sql(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url)) as conn:
        create_table(conn, "public", "tutorial_progress")
        for n in range(120):
            conn.execute(
                "INSERT INTO tutorial_progress (user_id, tutorial_id, completed_chapters,"
                " chapters_completed, total_chapters, completion_percentage, certificate_earned,"
                " created_at) VALUES (%s, %s, '{}', 0, 4, %s, %s,"
                " timestamptz '2026-01-01 23:30+00' + %s * interval '7 hours')",
                (f"u{n % 40}", ['<b>"t"</b>', "rag", "agents"][n // 40], n % 101, n % 4 == 0, n),
            )
        health = conn.execute(HEALTH).fetchone()
        per_day = conn.execute(PER_DAY).fetchall()
        per_tutorial = conn.execute(PER_TUTORIAL).fetchall()
    totals = UserTotals(
        users_with_local_data=10, migrated_users=9, migration_success_rate=0.9, at_risk=2
    )
    board = guide_dashboard(load_backend(database_url, "public", "tutorial_progress").frame, totals)
    assert tuple(board["health"].values()) == pytest.approx(health)
    days = [tuple(d.values()) for d in board["per_day"]["days"]]
    assert days + [None] * board["per_day"]["older_days"] == per_day[: len(days)] + [None] * (
        len(per_day) - len(days)
    )
    assert board["per_day"]["older_records"] == sum(r[1] for r in per_day[len(days) :])
    tutorials = [tuple(t.values()) for t in board["per_tutorial"]]
    assert [t[0] for t in tutorials] == [t[0] for t in per_tutorial]
    for ours, guide in zip(tutorials, per_tutorial, strict=True):
        assert ours[1:] == pytest.approx(guide[1:])
    assert [c["passed"] for c in board["success_criteria"]] == [True, False]


@pytest.mark.parametrize(
    ("rate", "at_risk", "passed"), [(0.8999, 0, [False, True]), (1.0, 0, [True, True])]
)
def test_the_success_criteria_use_the_guides_bars(rate: float, at_risk: int, passed: list) -> None:
    totals = UserTotals(
        users_with_local_data=1, migrated_users=1, migration_success_rate=rate, at_risk=at_risk
    )
    assert [c["passed"] for c in success_criteria(totals)] == passed
