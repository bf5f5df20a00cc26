"""One merge rule: the run's Python merge and the repair's SQL merge leave the same row.

Random backend rows and local records go through ``merge_local`` (the merge the run uses
for several browsers, and to predict the repaired row) and through ``repair.sql`` applied
to a real PostgreSQL; every field must agree. Both read :data:`reconcile.rules.MERGE_RULES`.
Chapter lists are compared as sets: the SQL keeps a stored list's order when the local
record adds nothing to it.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconcile.compare.merge import merge_local
from reconcile.config import Config
from reconcile.model import PROGRESS_FIELDS
from reconcile.repair.apply import apply_repair
from reconcile.rules import MERGE_RULES, Rule, completion
from tests.compare.test_merge import frame
from tests.repair.test_scripts import (
    T0,
    _reset,
    diff_row,
    insert_backend,
    make_table,
    progress,
    progress_pairs,
    relations,
    rows_by_key,
    write_run,
)


def _as_record(values: dict[str, Any], user: str) -> dict[str, Any]:
    """A progress dict as the loaders give it: an empty list with a positive count is None."""
    chapters = values["completed_chapters"]
    if chapters is not None and not chapters and values["chapters_completed"]:
        chapters = None
    return {
        **values,
        "user_id": user,
        "tutorial_id": "t",
        "completed_chapters": None if chapters is None else tuple(chapters),
    }


def _same(field: str, python: Any, stored: Any) -> bool:
    if field == "completed_chapters":
        return set(python or ()) == set(stored or ())
    if field == "quiz_scores":
        return {k: float(v) for k, v in python.items()} == {k: float(v) for k, v in stored.items()}
    if field == "completion_percentage":
        return Decimal(str(python)) == stored
    if field in ("started_at", "completed_at", "last_accessed_at"):
        return (pd.isna(python) and stored is None) or pd.Timestamp(python) == stored
    return python == stored


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=st.lists(progress_pairs(), min_size=1, max_size=6))
@example(  # the issue's case: 99.00 % stored for 5 of 7 chapters, more local watch time
    pairs=[
        (
            progress(["c1", "c2", "c3", "c4", "c5"], total=7, completion_percentage=99.0),
            progress(["c1", "c2"], total=7, total_watch_time=10_000),
        )
    ]
)
@example(  # completed on another browser earlier than the backend says
    pairs=[
        (
            progress(["c1"], completed_at=T0, started_at=T0),
            progress(["c1"], completed_at=T0 - pd.Timedelta(days=2)),
        )
    ]
)
def test_python_merge_and_sql_merge_agree_field_by_field(
    database_url: str, tmp_path: Path, pairs: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> None:
    if not relations(database_url):
        make_table(database_url)
    _reset(database_url)
    keys = [f"u{i}" for i in range(len(pairs))]
    backend_rows, diff_rows, expected = [], [], {}
    for user, (backend, local) in zip(keys, pairs, strict=True):
        if backend is not None:
            local = {**local, "total_chapters": backend["total_chapters"]}  # else a conflict
            backend_rows.append((user, "t", backend))
            records = [_as_record(backend, user), _as_record(local, user)]
        else:
            records = [_as_record(local, user)]
        merged = merge_local(frame(records)).iloc[0]
        expected[user] = {
            f: backend[f]
            if backend is not None and MERGE_RULES[f] is Rule.KEEP_BACKEND
            else merged[f]
            for f in PROGRESS_FIELDS
        }
        if backend is None:
            expected[user]["certificate_earned"] = False  # an insert never grants one
        status = "missing_in_backend" if backend is None else "diverged"
        diff_rows.append(diff_row(user, "t", status, local=local, backend=backend))
    insert_backend(database_url, backend_rows)

    folder = write_run(tmp_path / "merge", diff_rows)
    apply_repair(database_url, folder, dry_run=False, config=Config())

    after = rows_by_key(database_url)
    for user in keys:
        row = after[user, "t"]
        wrong = {
            f: (expected[user][f], row[f])
            for f in PROGRESS_FIELDS
            if not _same(f, expected[user][f], row[f])
        }
        assert not wrong, (user, wrong)


def test_the_issues_wrong_repair_is_gone() -> None:
    """99.00 % for 5 of 7 chapters is recomputed: min(100, round(100 * 5 / 7, 2))."""
    assert completion(5, 7) == 71.43
    assert completion(1, 32) == 3.13  # half up, like PostgreSQL (Python's round: 3.12)
