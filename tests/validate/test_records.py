"""The record gate (pandera): every planted anomaly is caught by the rule named for it.

Frames are built by :func:`backend_frame` / :func:`local_frame` from small dicts: one
clean record by default, each test spells out what it changes. The other test modules of
this package import these builders.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
import pytest
from psycopg.types.json import Jsonb

from reconcile.config import Config
from reconcile.db import libpq_url
from reconcile.model import BACKEND_EXTRA_COLUMNS, LOCAL_EXTRA_COLUMNS, PROGRESS_COLUMNS
from reconcile.sources.backend import create_table, load_backend
from reconcile.validate.records import FAILURE_COLUMNS, RULES, validate_backend, validate_local

NOW = datetime(2026, 1, 20, 8, 0, tzinfo=UTC)
CONFIG = Config()
_TIMESTAMPS = ("started_at", "completed_at", "last_accessed_at", "created_at", "updated_at")


def record(user: str = "u-1", tutorial: str = "intro", **changes: Any) -> dict[str, Any]:
    """A clean record, 3 of 5 chapters done, changed by ``changes``."""
    base: dict[str, Any] = {
        "user_id": user,
        "tutorial_id": tutorial,
        "completed_chapters": ("c1", "c2", "c3"),
        "chapters_completed": 3,
        "total_chapters": 5,
        "completion_percentage": 60.0,
        "quiz_scores": {"q1": 80.0},
        "total_watch_time": 900,
        "certificate_earned": False,
        "started_at": NOW - timedelta(days=10),
        "completed_at": None,
        "last_accessed_at": NOW - timedelta(days=1),
        "created_at": NOW - timedelta(days=9),
        "updated_at": NOW - timedelta(days=1),
    }
    unknown = set(changes) - set(base)
    assert not unknown, unknown
    return base | changes


def backend_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """A backend frame with the canonical columns and dtypes (model.py)."""
    frame = _progress_frame(records)
    frame["id"] = pd.array(range(1, len(records) + 1), dtype="Int64")
    for column in ("created_at", "updated_at"):
        frame[column] = _timestamps([r[column] for r in records])
    return frame[[*PROGRESS_COLUMNS, *BACKEND_EXTRA_COLUMNS]]


def local_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """A local frame: the progress columns plus where each record came from."""
    frame = _progress_frame(records)
    frame["source_file"] = "export.json"
    frame["source_line"] = pd.array(range(1, len(records) + 1), dtype="Int64")
    frame["storage_key"] = [f"tutorial_progress_{r['tutorial_id']}_{r['user_id']}" for r in records]
    frame["export_user_id"] = [r["user_id"] for r in records]
    frame["exported_at"] = _timestamps([NOW] * len(records))
    return frame[[*PROGRESS_COLUMNS, *LOCAL_EXTRA_COLUMNS]]


def _progress_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    def column(name: str) -> list[Any]:
        return [r[name] for r in records]

    frame = pd.DataFrame(
        {
            "user_id": pd.Series(column("user_id"), dtype=object),
            "tutorial_id": pd.Series(column("tutorial_id"), dtype=object),
            "completed_chapters": pd.Series(column("completed_chapters"), dtype=object),
            "chapters_completed": pd.array(column("chapters_completed"), dtype="Int64"),
            "total_chapters": pd.array(column("total_chapters"), dtype="Int64"),
            "completion_percentage": pd.Series(column("completion_percentage"), dtype="float64"),
            "quiz_scores": pd.Series(column("quiz_scores"), dtype=object),
            "total_watch_time": pd.array(column("total_watch_time"), dtype="Int64"),
            "certificate_earned": pd.Series(column("certificate_earned"), dtype=bool),
        }
    )
    for name in ("started_at", "completed_at", "last_accessed_at"):
        frame[name] = _timestamps(column(name))
    return frame


def _timestamps(values: list[Any]) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True).astype("datetime64[ns, UTC]")


def clean_records(n: int = 6) -> list[dict[str, Any]]:
    """``n`` clean records over a few users and tutorials, every shape a record takes."""
    out = []
    for i in range(n):
        user, tutorial = f"u-{i // 2}", f"t-{i % 2}"
        if i % 3 == 0:  # count-only record (older client builds)
            out.append(record(user, tutorial, completed_chapters=None))
        elif i % 3 == 1:  # finished, with a certificate
            out.append(
                record(
                    user,
                    tutorial,
                    completed_chapters=("a", "b", "c", "d", "e"),
                    chapters_completed=5,
                    completion_percentage=100.0,
                    certificate_earned=True,
                    completed_at=NOW - timedelta(days=2),
                    quiz_scores={"q1": 100.0, "q2": 0.0},
                )
            )
        else:  # nothing done yet
            out.append(
                record(
                    user,
                    tutorial,
                    completed_chapters=(),
                    chapters_completed=0,
                    completion_percentage=0.0,
                    quiz_scores={},
                    total_watch_time=0,
                    started_at=None,
                    last_accessed_at=None,
                )
            )
    return out


def failures_of(gate_failures: pd.DataFrame, row: Any) -> dict[str, str]:
    rows = gate_failures[gate_failures["row"] == row]
    return dict(zip(rows["check"], rows["reason"], strict=True))


# ---------------------------------------------------------------------------------------


def test_clean_backend_and_local_records_pass() -> None:
    records = clean_records()
    for validate, frame in (
        (validate_backend, backend_frame(records)),
        (validate_local, local_frame(records)),
    ):
        gate = validate(frame, now=NOW, config=CONFIG)
        assert gate.valid.all()
        assert gate.valid.index.equals(frame.index)
        assert list(gate.failures.columns) == list(FAILURE_COLUMNS)
        assert gate.failures.empty


def test_empty_frames_pass() -> None:
    gate = validate_backend(backend_frame([]), now=NOW, config=CONFIG)
    assert gate.valid.empty and gate.failures.empty


FUTURE = NOW + timedelta(seconds=CONFIG.clock_skew_seconds + 60)

#: (id, changes, rule, words the reason must hold), for both sides unless backend-only.
ANOMALIES: list[tuple[str, dict[str, Any], str, tuple[str, ...]]] = [
    ("pct_over", {"completion_percentage": 150.0}, "completion_percentage_range", ("150.0",)),
    ("pct_negative", {"completion_percentage": -1.0}, "completion_percentage_range", ("-1.0",)),
    ("pct_nan", {"completion_percentage": float("nan")}, "completion_percentage_range", ("NaN",)),
    ("quiz_over", {"quiz_scores": {"q1": 101.0}}, "quiz_scores_range", ("'q1': 101.0",)),
    ("quiz_negative", {"quiz_scores": {"q1": -5}}, "quiz_scores_range", ("-5",)),
    ("quiz_nan", {"quiz_scores": {"q1": float("nan")}}, "quiz_scores_range", ("nan",)),
    ("quiz_text", {"quiz_scores": {"q1": 50.0, "q2": "85"}}, "quiz_scores_range", ("'85'",)),
    ("quiz_bool", {"quiz_scores": {"q1": True}}, "quiz_scores_range", ("True",)),
    ("watch_negative", {"total_watch_time": -1}, "total_watch_time_range", ("-1",)),
    (
        "watch_huge",
        {"total_watch_time": CONFIG.max_watch_time_seconds + 1},
        "total_watch_time_range",
        (str(CONFIG.max_watch_time_seconds + 1),),
    ),
    (
        "total_zero",
        {"total_chapters": 0, "chapters_completed": 0, "completed_chapters": ()},
        "total_chapters_positive",
        ("total_chapters is 0, must be 1 or more",),
    ),
    (
        "completed_negative",
        {"chapters_completed": -2, "completed_chapters": None},
        "chapters_completed_nonnegative",
        ("-2",),
    ),
    (
        "completed_over_total",
        {"chapters_completed": 7, "completed_chapters": None},
        "chapters_completed_le_total",
        ("7", "5"),
    ),
    ("count_vs_list", {"chapters_completed": 2}, "chapters_completed_matches_list", ("2", "3")),
    ("started_future", {"started_at": FUTURE}, "timestamp_not_in_future", ("started_at",)),
    (
        "accessed_future",
        {"last_accessed_at": FUTURE},
        "timestamp_not_in_future",
        ("last_accessed",),
    ),
    (
        "started_after_completed",
        {"completed_at": NOW - timedelta(days=20)},
        "started_at_le_completed_at",
        ("started_at", "completed_at"),
    ),
]

BACKEND_ONLY: list[tuple[str, dict[str, Any], str, tuple[str, ...]]] = [
    (
        "updated_before_created",
        {"updated_at": NOW - timedelta(days=30)},
        "updated_at_ge_created_at",
        ("updated_at",),
    ),
    ("created_future", {"created_at": FUTURE, "updated_at": FUTURE}, "timestamp_not_in_future", ()),
    (
        "certificate_below_100",
        {"certificate_earned": True},
        "certificate_requires_completion",
        ("60.0",),
    ),
]


@pytest.mark.parametrize(
    ("changes", "rule", "words"),
    [pytest.param(c, r, w, id=i) for i, c, r, w in ANOMALIES + BACKEND_ONLY],
)
def test_backend_anomaly_is_caught_by_its_rule(
    changes: dict[str, Any], rule: str, words: tuple[str, ...]
) -> None:
    records = [*clean_records(), record("bad-user", "t-9", **changes)]
    frame = backend_frame(records)
    frame.index = [f"row-{i}" for i in range(len(frame))]  # labels, not positions
    gate = validate_backend(frame, now=NOW, config=CONFIG)

    assert gate.valid.tolist() == [True] * (len(records) - 1) + [False]
    assert set(gate.failures["row"]) == {"row-6"}
    found = failures_of(gate.failures, "row-6")
    assert rule in found, found
    assert all(w in found[rule] for w in words), found[rule]
    assert gate.failures[["user_id", "tutorial_id"]].drop_duplicates().values.tolist() == [
        ["bad-user", "t-9"]
    ]


@pytest.mark.parametrize(
    ("changes", "rule", "words"), [pytest.param(c, r, w, id=i) for i, c, r, w in ANOMALIES]
)
def test_local_anomaly_is_caught_by_its_rule(
    changes: dict[str, Any], rule: str, words: tuple[str, ...]
) -> None:
    gate = validate_local(
        local_frame([*clean_records(), record("bad", "t", **changes)]), now=NOW, config=CONFIG
    )
    assert gate.valid.tolist() == [True] * 6 + [False]
    found = failures_of(gate.failures, 6)
    assert rule in found and all(w in found[rule] for w in words), found


def test_every_rule_is_exercised() -> None:
    exercised = {rule for _, _, rule, _ in ANOMALIES + BACKEND_ONLY} | {"unique_key", "key_present"}
    assert exercised == set(RULES)


def test_local_certificate_claim_is_not_a_rejection() -> None:
    gate = validate_local(local_frame([record(certificate_earned=True)]), now=NOW, config=CONFIG)
    assert gate.valid.all()


def test_timestamp_within_clock_skew_passes() -> None:
    near = NOW + timedelta(seconds=CONFIG.clock_skew_seconds - 1)
    gate = validate_backend(
        backend_frame([record(last_accessed_at=near, updated_at=near)]), now=NOW, config=CONFIG
    )
    assert gate.valid.all()


def test_every_reason_of_a_row_is_kept() -> None:
    bad = record(
        completion_percentage=150.0,
        total_watch_time=-5,
        started_at=FUTURE,
        last_accessed_at=FUTURE,
        updated_at=NOW - timedelta(days=30),
    )
    gate = validate_backend(backend_frame([record("ok"), bad]), now=NOW, config=CONFIG)
    assert gate.valid.tolist() == [True, False]
    assert gate.failures["check"].tolist() == [
        "completion_percentage_range",
        "total_watch_time_range",
        "timestamp_not_in_future",  # started_at
        "timestamp_not_in_future",  # last_accessed_at
        "updated_at_ge_created_at",
    ]
    assert (gate.failures["row"] == 1).all()
    future = gate.failures.loc[gate.failures["check"] == "timestamp_not_in_future", "reason"]
    assert future.str.split().str[0].tolist() == ["started_at", "last_accessed_at"]


def test_duplicate_backend_keys_fail_every_copy() -> None:
    records = [record("u-1", "t"), record("u-2", "t"), record("u-1", "t"), record("u-1", "t")]
    gate = validate_backend(backend_frame(records), now=NOW, config=CONFIG)
    assert gate.valid.tolist() == [False, True, False, False]
    assert gate.failures["check"].tolist() == ["unique_key"] * 3
    assert "3 backend rows share" in gate.failures["reason"].iloc[0]
    assert "'u-1'" in gate.failures["reason"].iloc[0]


def test_missing_key_and_counts_are_reported() -> None:
    frame = backend_frame([record(), record("u-2")])
    frame.loc[1, "tutorial_id"] = None
    frame.loc[1, "total_chapters"] = pd.NA
    gate = validate_backend(frame, now=NOW, config=CONFIG)
    found = failures_of(gate.failures, 1)
    assert found["key_present"] == "key is incomplete: tutorial_id is missing"
    assert found["total_chapters_positive"] == "total_chapters is missing"
    assert gate.valid.tolist() == [True, False]


def test_duplicate_index_labels_are_handled() -> None:
    frame = local_frame([record("a"), record("b", total_chapters=0), record("c")])
    frame.index = [7, 7, 7]
    gate = validate_local(frame, now=NOW, config=CONFIG)
    assert gate.valid.tolist() == [True, False, True]
    assert gate.failures["row"].tolist() == [7, 7]  # total_chapters, then count > total
    assert gate.failures["user_id"].tolist() == ["b", "b"]


def test_numbers_that_are_not_counts() -> None:
    frame = local_frame([record("a"), record("b"), record("c")])
    frame["total_watch_time"] = pd.Series([2.5, float("inf"), "12"], dtype=object)
    gate = validate_local(frame, now=NOW, config=CONFIG)
    assert gate.valid.tolist() == [False, False, True]
    assert gate.failures["reason"].tolist() == [
        "total_watch_time is 2.5, not a whole number",
        "total_watch_time is inf, must be within 0..31536000 seconds",
    ]


def test_watch_time_cap_comes_from_config() -> None:
    frame = backend_frame([record(total_watch_time=1000)])
    assert validate_backend(frame, now=NOW, config=CONFIG).valid.all()
    strict = Config(max_watch_time_seconds=999)
    gate = validate_backend(frame, now=NOW, config=strict)
    assert gate.failures["reason"].tolist() == [
        "total_watch_time is 1000, must be within 0..999 seconds"
    ]


def insert_rows(url: str, records: list[dict[str, Any]], table: str = "tutorial_progress") -> None:
    """Insert ``records`` (see :func:`record`) into ``public.<table>``, creating it if needed."""
    with psycopg.connect(libpq_url(url)) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone()
        if exists is None or exists[0] is None:
            create_table(conn, "public", table)
        with conn.cursor() as cur:
            cur.executemany(
                f"""INSERT INTO public.{table} (user_id, tutorial_id, completed_chapters,
                    chapters_completed, total_chapters, completion_percentage, quiz_scores,
                    total_watch_time, certificate_earned, started_at, completed_at,
                    last_accessed_at, created_at, updated_at)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                [
                    (
                        r["user_id"],
                        r["tutorial_id"],
                        list(r["completed_chapters"] or ()),
                        r["chapters_completed"],
                        r["total_chapters"],
                        r["completion_percentage"],
                        Jsonb(r["quiz_scores"]),
                        r["total_watch_time"],
                        r["certificate_earned"],
                        r["started_at"],
                        r["completed_at"],
                        r["last_accessed_at"],
                        r["created_at"],
                        r["updated_at"],
                    )
                    for r in records
                ],
            )


def test_rows_loaded_from_postgresql(database_url: str) -> None:
    records = [
        *clean_records(),
        record("pg-1", completion_percentage=150.0),
        record("pg-2", chapters_completed=9, completed_chapters=None),
        record("pg-3", quiz_scores={"q1": 250}),
        record("pg-4", certificate_earned=True),
        record("pg-5", updated_at=NOW - timedelta(days=30)),
    ]
    insert_rows(database_url, records)
    frame = load_backend(database_url, "public", "tutorial_progress").frame
    gate = validate_backend(frame, now=NOW, config=CONFIG)

    checks = gate.failures.groupby("user_id")["check"].agg(list).to_dict()
    assert checks == {
        "pg-1": ["completion_percentage_range"],
        "pg-2": ["chapters_completed_le_total"],
        "pg-3": ["quiz_scores_range"],
        "pg-4": ["certificate_requires_completion"],
        "pg-5": ["updated_at_ge_created_at"],
    }
    assert int(gate.valid.sum()) == len(clean_records())
