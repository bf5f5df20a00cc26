"""Night over night: count bounds from good nights, regressions, vanished rows.

The two-night story runs against a real PostgreSQL: rows are loaded with the backend
loader, checked, recorded; between nights rows are deleted or changed with SQL.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest

from reconcile.db import libpq_url
from reconcile.model import CheckResult
from reconcile.outputs.history_store import load_history, record_night
from reconcile.sources.backend import load_backend
from reconcile.validate.nights import (
    MAX_LISTED_KEYS,
    REGRESSION_CHECK,
    VANISHED_CHECK,
    History,
    count_anomaly_bounds,
    regression_checks,
)
from reconcile.validate.suites import run_checks
from tests.validate.test_records import (
    CONFIG,
    NOW,
    backend_frame,
    clean_records,
    insert_rows,
    local_frame,
    record,
)

ROW_COUNT = "backend_progress.expect_table_row_count_to_be_between"


def night(
    url: str, out: Path, run_id: str, *, now: Any = NOW
) -> tuple[list[CheckResult], pd.DataFrame]:
    """One nightly run, as the pipeline does it: load, check, record (good = all passed)."""
    backend = load_backend(url, "public", "tutorial_progress").frame
    past = load_history(out)
    outcome = run_checks(
        backend, local_frame([]), config=CONFIG, history=past, now=now, docs_dir=None
    )
    checks = [*outcome.checks, *regression_checks(past, backend)]
    good = all(c.success for c in checks)
    metrics = {"checks": [{"name": c.name, "unexpected_count": c.unexpected_count} for c in checks]}
    record_night(out, run_id, metrics, backend, good=good, now=now)
    return checks, backend


def by_name(checks: list[CheckResult]) -> dict[str, CheckResult]:
    return {c.name: c for c in checks}


def execute(url: str, statement: str, *params: Any) -> None:
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(statement, params)


def test_two_nights_then_a_rerun_against_the_last_good_night(
    database_url: str, tmp_path: Path
) -> None:
    insert_rows(database_url, [record(f"u-{i:02d}", f"t-{i % 3}") for i in range(50)])
    out = tmp_path / "out"

    # Night 1: no history, everything passes; the snapshot is taken.
    checks, _ = night(database_url, out, "night-1")
    assert all(c.success for c in checks)
    assert "no history yet" in by_name(checks)[REGRESSION_CHECK].details
    assert load_history(out).snapshot_run_id == "night-1"

    # Night 2: 20% of rows deleted, one key's chapters lowered.
    execute(
        database_url,
        "DELETE FROM tutorial_progress WHERE user_id IN "
        "(SELECT user_id FROM tutorial_progress ORDER BY user_id LIMIT 10)",
    )
    execute(
        database_url,
        "UPDATE tutorial_progress SET completed_chapters = '{c1,c2}', chapters_completed = 2 "
        "WHERE user_id = 'u-42'",
    )
    checks, _ = night(database_url, out, "night-2")
    found = by_name(checks)
    assert not found[ROW_COUNT].success
    assert "observed 40, expected at least 45" in found[ROW_COUNT].details
    assert not found[VANISHED_CHECK].success and found[VANISHED_CHECK].unexpected_count == 10
    assert "('u-00', 't-0')" in found[VANISHED_CHECK].details
    regression = found[REGRESSION_CHECK]
    assert not regression.success and regression.unexpected_count == 1
    assert "('u-42', 't-0')" in regression.details and "'c3'" in regression.details
    history = load_history(out)
    assert [n["good"] for n in history.nights] == [True, False]
    assert history.snapshot_run_id == "night-1"  # a failed night never replaces it

    # Re-run after restoring the rows (the chapters are still low): compared with night 1.
    insert_rows(database_url, [record(f"u-{i:02d}", f"t-{i % 3}") for i in range(10)])
    checks, _ = night(database_url, out, "night-2-rerun")
    found = by_name(checks)
    assert found[ROW_COUNT].success and "up to night-1" in found[ROW_COUNT].details
    assert found[VANISHED_CHECK].success
    assert not found[REGRESSION_CHECK].success  # against night 2 it would look unchanged
    assert "since good night night-1" in found[REGRESSION_CHECK].details

    # After the fix, the run is good and becomes the new reference.
    execute(
        database_url,
        "UPDATE tutorial_progress SET completed_chapters = '{c1,c2,c3}', chapters_completed = 3 "
        "WHERE user_id = 'u-42'",
    )
    checks, _ = night(database_url, out, "night-2-fixed")
    assert all(c.success for c in checks), [c for c in checks if not c.success]
    history = load_history(out)
    assert history.snapshot_run_id == "night-2-fixed"
    assert [n["run_id"] for n in history.nights] == [
        "night-1",
        "night-2",
        "night-2-rerun",
        "night-2-fixed",
    ]
    assert history.nights[1]["backend_rows"] == 40
    assert history.nights[1]["checks"][VANISHED_CHECK] == 10
    assert not list(out.glob(".*.tmp"))  # no temporary file left


# ---------------------------------------------------------------------------------------
# Regressions, on frames


def snapshot_of(records: list[dict[str, Any]], tmp_path: Path) -> History:
    record_night(tmp_path, "good", {}, backend_frame(records), good=True, now=NOW)
    return load_history(tmp_path)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"completed_chapters": ("c1", "c2", "c9")}, "lost chapters ['c3']"),  # same count
        ({"completed_chapters": ("c1",), "chapters_completed": 1}, "chapters_completed 3 -> 1"),
        ({"completed_chapters": None}, "chapter list emptied (had 3 ids)"),
        ({"total_watch_time": 899}, "total_watch_time 900 -> 899"),
        ({"quiz_scores": {}}, "lost quiz 'q1' (80)"),
        ({"quiz_scores": {"q1": 79.5}}, "quiz 'q1' 80 -> 79.5"),
    ],
    ids=["not_superset", "fewer", "list_emptied", "watch", "quiz_lost", "quiz_lower"],
)
def test_each_kind_of_regression_is_named(
    tmp_path: Path, changes: dict[str, Any], words: str
) -> None:
    history = snapshot_of([record("a"), record("b")], tmp_path)
    regression, vanished = regression_checks(
        history, backend_frame([record("a"), record("b", **changes)])
    )
    assert regression.name == REGRESSION_CHECK and not regression.success
    assert regression.unexpected_count == 1
    assert regression.details.startswith(
        "1 keys went backward since good night good: ('b', 'intro')"
    )
    assert words in regression.details
    assert vanished.success


def test_progress_forward_is_not_a_regression(tmp_path: Path) -> None:
    count_only = record("c", completed_chapters=None)
    history = snapshot_of([record("a"), record("b"), count_only], tmp_path)
    ahead = [
        record("a", completed_chapters=("c1", "c2", "c3", "c4"), chapters_completed=4),
        record("b", quiz_scores={"q1": 90.0, "q2": 10.0}, total_watch_time=901),
        record("c", completed_chapters=("c1", "c2", "c3", "c5"), chapters_completed=4),
        record("new"),
    ]
    regression, vanished = regression_checks(history, backend_frame(ahead))
    assert regression.success and regression.unexpected_count == 0
    assert vanished.success


def test_count_only_record_compares_counts(tmp_path: Path) -> None:
    history = snapshot_of([record("c", completed_chapters=None)], tmp_path)
    lower = record("c", completed_chapters=None, chapters_completed=2)
    (regression, _) = regression_checks(history, backend_frame([lower]))
    assert "chapters_completed 3 -> 2" in regression.details


def test_long_key_lists_are_capped_but_counted(tmp_path: Path) -> None:
    history = snapshot_of([record(f"u-{i:03d}") for i in range(MAX_LISTED_KEYS + 15)], tmp_path)
    regression, vanished = regression_checks(history, backend_frame([]))
    assert regression.success
    assert vanished.unexpected_count == MAX_LISTED_KEYS + 15
    assert vanished.details.count("('u-") == MAX_LISTED_KEYS
    assert vanished.details.endswith("... and 15 more")


def test_first_night_has_no_history(tmp_path: Path) -> None:
    history = load_history(tmp_path / "nothing-yet")
    assert history.nights == () and history.snapshot is None
    checks = regression_checks(history, backend_frame(clean_records()))
    assert [c.success for c in checks] == [True, True]
    assert all("no history yet" in c.details for c in checks)
    bounds = count_anomaly_bounds(history)
    assert bounds["backend_rows_min"] == 0 and bounds["backend_rows_max"] is None
    assert bounds["history_note"].startswith("no history yet")


def test_snapshot_is_compact_and_exact(tmp_path: Path) -> None:
    odd = ("", "a,b", "é\U0001f600", 'it\'s "quoted"', "x\ny")
    records = [
        record("a", completed_chapters=("c1", "c2", "c3")),
        record("b", completed_chapters=None),
        record("c", completed_chapters=(), chapters_completed=0, quiz_scores={}),
        record("d", completed_chapters=odd, chapters_completed=len(odd)),
    ]
    history = snapshot_of(records, tmp_path)
    table = pq.read_table(tmp_path / "history-snapshot.parquet")
    assert table.column_names == [
        "user_id",
        "tutorial_id",
        "chapters",
        "chapters_completed",
        "total_watch_time",
        "quiz_scores",
    ]
    assert table.schema.metadata[b"run_id"] == b"good"
    assert table.column("chapters").to_pylist()[:3] == ["c1\x00c2\x00c3\x00", None, ""]
    assert table.column("quiz_scores").to_pylist()[:3] == ['{"q1":80.0}', '{"q1":80.0}', "{}"]

    # Every id survives exactly: dropping any single one is seen, the empty id included.
    for lost in odd:
        kept = tuple(c for c in odd if c != lost)
        tonight = [*records[:3], record("d", completed_chapters=kept, chapters_completed=5)]
        (regression, _) = regression_checks(history, backend_frame(tonight))
        assert regression.unexpected_count == 1
        assert f"lost chapters [{lost!r}]" in regression.details
    (regression, vanished) = regression_checks(history, backend_frame(records))
    assert regression.success and vanished.success


def test_duplicate_backend_keys_keep_the_latest_row(tmp_path: Path) -> None:
    frame = backend_frame([record("a", total_watch_time=5), record("a", total_watch_time=900)])
    record_night(tmp_path, "good", {}, frame, good=True, now=NOW)
    history = load_history(tmp_path)
    assert history.snapshot is not None
    assert history.snapshot["total_watch_time"].tolist() == [900]


# ---------------------------------------------------------------------------------------
# Bounds


def nights(*rows: int, good: bool = True) -> list[dict[str, Any]]:
    return [
        {
            "run_id": f"n{i}",
            "good": good,
            "backend_rows": r,
            "distinct_users": r // 2,
            "new_rows_per_day": 100,
        }
        for i, r in enumerate(rows)
    ]


def test_bounds_band_and_relative_drop() -> None:
    history = History(nights=tuple(nights(1000, 1010, 990, 1000, 1005, 995, 1000, 1000)))
    bounds = count_anomaly_bounds(history)
    # band over the last 7: mean 1000, 10% of mean (100) beats 3 std (about 18)
    assert bounds["backend_rows_max"] == 1100
    assert bounds["backend_rows_min"] == 900  # the band's 900 equals 90% of the last 1000
    assert (bounds["new_rows_per_day_min"], bounds["new_rows_per_day_max"]) == (90, 110)
    assert "7 good night(s)" in bounds["history_note"]


def test_bounds_ignore_failed_nights() -> None:
    history = History(nights=tuple(nights(1000) + nights(500, good=False)))
    bounds = count_anomaly_bounds(history)
    assert bounds["backend_rows_min"] == 900  # 90% of the good night, not of the bad one
    assert bounds["backend_rows_max"] is None  # one good night: no band yet
    assert bounds["new_rows_per_day_min"] == 0


def test_bounds_widen_with_a_noisy_history() -> None:
    history = History(nights=tuple(nights(1000, 1400, 600)))
    bounds = count_anomaly_bounds(history)
    assert bounds["backend_rows_max"] == 2200  # 1000 + 3 * 400
    assert bounds["backend_rows_min"] == 540  # band floor -200 < 90% of 600


# ---------------------------------------------------------------------------------------
# Files


def test_damaged_history_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record_night(tmp_path, "r1", {}, backend_frame(clean_records()), good=True, now=NOW)
    folder = tmp_path
    with (folder / "history.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"run_id": "half-writ')
    (folder / "history-snapshot.parquet").write_bytes(b"not parquet")
    history = load_history(tmp_path)
    assert [n["run_id"] for n in history.nights] == ["r1"]
    assert history.snapshot is None and len(history.warnings) == 2
    assert "unreadable" in caplog.text

    record_night(tmp_path, "r2", {}, backend_frame(clean_records()), good=False, now=NOW)
    lines = (folder / "history.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1])["run_id"] == "r2"


def test_metrics_keep_what_the_pipeline_passes(tmp_path: Path) -> None:
    fresh = NOW - timedelta(hours=1)
    frame = backend_frame([*clean_records(4), record("new", created_at=fresh, updated_at=fresh)])
    metrics = {
        "counts": {"in_sync": 3, "missing_in_backend": 1},
        "migration_success_rate": 0.75,
        "at_risk": 1,
        "checks": [CheckResult("x.y", False, 7)],
    }
    record_night(tmp_path, "r1", metrics, frame, good=False, now=NOW)
    (saved,) = load_history(tmp_path).nights
    assert saved["counts"] == {"in_sync": 3, "missing_in_backend": 1}
    assert saved["migration_success_rate"] == 0.75 and saved["at_risk"] == 1
    assert saved["checks"] == {"x.y": 7}
    assert (saved["backend_rows"], saved["distinct_users"], saved["new_rows_per_day"]) == (5, 3, 1)
    assert saved["good"] is False
    assert not (tmp_path / "history-snapshot.parquet").exists()
