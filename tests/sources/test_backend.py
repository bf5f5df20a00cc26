"""The backend loader (SPEC 1.1): one COPY into a progress frame, every column typed."""

from __future__ import annotations

import json
import math

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from reconcile.db import libpq_url
from reconcile.errors import SourceError
from reconcile.model import BACKEND_EXTRA_COLUMNS, PROGRESS_COLUMNS
from reconcile.quoting import qualified_table
from reconcile.sources.backend import create_table, empty_backend_frame, load_backend
from tests.sources.test_exports import EXPECTED_DTYPES as LOCAL_DTYPES

HOSTILE = ('we"ird; DROP TABLE x; --', "tab\tle 'progress'")

EXPECTED_DTYPES = {
    **{c: LOCAL_DTYPES[c] for c in PROGRESS_COLUMNS},
    "id": "Int64",
    "created_at": "datetime64[ns, UTC]",
    "updated_at": "datetime64[ns, UTC]",
    "inserted_by_repair": "bool",
}

#: (user, chapters, count, quiz jsonb text, last_accessed_at)
ROWS = [
    ("u-1", ["c2", "c1", "c2"], 2, '{"q1": 80, "q2": 92.5}', "2026-01-02 03:04:05.123456+00"),
    ("u-2", [], 3, "{}", None),  # count-only
    ("u-3", [], 0, '{"q1": "high"}', "1970-01-01 00:00:00+00"),
    ("u-4", ["b", None, "a"], 2, "[1, 2]", "2099-12-31 23:59:59.999999+00"),
    ("u-5", ["é", "z", "Z"], 3, '{"q1": 1e400}', "1969-12-31 23:59:59.5+00"),
]


def fill(url: str, schema: str = "public", table: str = "tutorial_progress") -> None:
    target = qualified_table(schema, table)
    with psycopg.connect(libpq_url(url)) as conn:
        create_table(conn, schema, table)
        for user, chapters, count, quiz, accessed in ROWS:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (user_id, tutorial_id, completed_chapters, chapters_completed,"
                    " total_chapters, completion_percentage, quiz_scores, last_accessed_at)"
                    " VALUES (%s, 't', %s, %s, 5, 40.01, %s::jsonb, %s)"
                ).format(target),
                (user, chapters, count, quiz, accessed),
            )


def by_user(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {row["user_id"]: row for _, row in frame.iterrows()}


def test_every_column_is_typed_as_the_progress_frame(database_url: str) -> None:
    fill(database_url)
    frame = load_backend(database_url, "public", "tutorial_progress").frame
    assert list(frame.columns) == [*PROGRESS_COLUMNS, *BACKEND_EXTRA_COLUMNS, "inserted_by_repair"]
    assert {c: str(t) for c, t in frame.dtypes.items()} == EXPECTED_DTYPES
    empty = empty_backend_frame()
    assert {c: str(t) for c, t in empty.dtypes.items()} == {
        c: t for c, t in EXPECTED_DTYPES.items() if c != "inserted_by_repair"
    }


def test_values_arrive_exactly(database_url: str) -> None:
    fill(database_url)
    rows = by_user(load_backend(database_url, "public", "tutorial_progress").frame)
    assert rows["u-1"]["completed_chapters"] == ("c1", "c2")
    assert rows["u-1"]["quiz_scores"] == {"q1": 80.0, "q2": 92.5}
    assert all(type(v) is float for v in rows["u-1"]["quiz_scores"].values())
    assert rows["u-1"]["last_accessed_at"] == pd.Timestamp("2026-01-02T03:04:05.123456Z")
    assert rows["u-1"]["completion_percentage"] == 40.01
    assert rows["u-2"]["completed_chapters"] is None  # an empty array, a positive count
    assert pd.isna(rows["u-2"]["last_accessed_at"])
    assert rows["u-3"]["completed_chapters"] == ()
    assert math.isnan(rows["u-3"]["quiz_scores"]["q1"])  # validation reports it
    assert rows["u-4"]["completed_chapters"] == ("a", "b")  # the NULL element dropped
    assert list(rows["u-4"]["quiz_scores"]) == ["<not an object>"]
    assert rows["u-4"]["last_accessed_at"] == pd.Timestamp("2099-12-31T23:59:59.999999Z")
    assert rows["u-5"]["completed_chapters"] == ("Z", "z", "é")  # code point order
    assert rows["u-5"]["last_accessed_at"] == pd.Timestamp("1969-12-31T23:59:59.5Z")


def test_a_jsonb_number_beyond_float_range_is_a_score_not_a_crash(database_url: str) -> None:
    fill(database_url)
    rows = by_user(load_backend(database_url, "public", "tutorial_progress").frame)
    assert math.isnan(rows["u-5"]["quiz_scores"]["q1"])  # validation reports it


def test_hostile_schema_and_table_names_are_quoted(database_url: str) -> None:
    fill(database_url, *HOSTILE)
    assert len(load_backend(database_url, *HOSTILE).frame) == len(ROWS)


def test_a_missing_table_is_one_line(database_url: str) -> None:
    with pytest.raises(SourceError, match=r"^table public\.nope does not exist in ") as caught:
        load_backend(database_url, "public", "nope")
    assert "\n" not in str(caught.value)


def test_a_timestamp_the_run_cannot_hold_is_one_line_naming_the_column(database_url: str) -> None:
    fill(database_url)
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute("UPDATE tutorial_progress SET completed_at = 'infinity' WHERE user_id = 'u-1'")
    with pytest.raises(SourceError, match="column completed_at") as caught:
        load_backend(database_url, "public", "tutorial_progress")
    assert "\n" not in str(caught.value)


def test_repeated_values_land_on_their_own_rows(database_url: str) -> None:
    """Each distinct text is decoded once: every row still gets its own row's value."""
    chapter_lists = [["c1"], ["c2", "c1"], [], ["c1", "c2"], ["c3"], ["c2", None]]
    quizzes = ['{"q": 1}', "{}", '{"q": 2, "r": 3}', '{"q": "x"}', "{}"]
    users = ["u-a", "u-b", 'u-"c"', "u-d"]
    target = qualified_table("public", "tutorial_progress")
    expected = {}
    with psycopg.connect(libpq_url(database_url)) as conn:
        create_table(conn, "public", "tutorial_progress")
        for n in range(60):
            user, tutorial = users[n % 4], f"t{n}"
            chapters, quiz = chapter_lists[n % 6], quizzes[n % 5]
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (user_id, tutorial_id, completed_chapters, chapters_completed,"
                    " total_chapters, completion_percentage, quiz_scores)"
                    " VALUES (%s, %s, %s, %s, 5, 0, %s::jsonb)"
                ).format(target),
                (user, tutorial, chapters, n % 3, quiz),
            )
            ids = tuple(sorted(set(chapters) - {None}))
            kept = None if not ids and n % 3 else ids
            decoded = json.loads(quiz).items()
            scores = {k: (v if isinstance(v, int) else math.nan) for k, v in decoded}
            expected[(user, tutorial)] = (kept, scores)
    frame = load_backend(database_url, "public", "tutorial_progress").frame
    assert len(frame) == 60
    for row in frame.itertuples():
        chapters, scores = expected[(row.user_id, row.tutorial_id)]
        assert row.completed_chapters == chapters
        assert row.quiz_scores.keys() == scores.keys()
        for quiz, score in scores.items():
            got = row.quiz_scores[quiz]
            assert got == score or (math.isnan(got) and math.isnan(score))
