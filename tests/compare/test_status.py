"""Merge and status rules (SPEC 2 and 3) as pure functions, without a server."""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.compare.merge import merge_local
from reconcile.compare.status import CheckedBackend, build_diff, compare_progress, user_totals
from reconcile.model import PROGRESS_COLUMNS, Status
from reconcile.rules import completion

NAT = pd.NaT


def record(
    user: str, tutorial: str, chapters: tuple[str, ...] | None, **extra: Any
) -> dict[str, Any]:
    count = len(chapters) if chapters is not None else extra.pop("count", 0)
    base = {
        "user_id": user,
        "tutorial_id": tutorial,
        "completed_chapters": chapters,
        "chapters_completed": count,
        "total_chapters": 4,
        "completion_percentage": completion(count, 4),
        "quiz_scores": {},
        "total_watch_time": 0,
        "certificate_earned": False,
        "started_at": NAT,
        "completed_at": NAT,
        "last_accessed_at": NAT,
    }
    base.update(extra)
    return base


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=list(PROGRESS_COLUMNS))
    for c in ("chapters_completed", "total_chapters", "total_watch_time"):
        out[c] = out[c].astype("Int64")
    for c in ("started_at", "completed_at", "last_accessed_at"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return out


def test_merge_joins_several_browsers() -> None:
    t0, t1 = pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-01-05", tz="UTC")
    merged = merge_local(
        frame(
            [
                record(
                    "u",
                    "t",
                    ("a", "b"),
                    quiz_scores={"q1": 40, "q2": 90},
                    total_watch_time=50,
                    started_at=t1,
                    last_accessed_at=t1,
                ),
                record(
                    "u",
                    "t",
                    ("b", "c"),
                    quiz_scores={"q1": 70},
                    total_watch_time=80,
                    started_at=t0,
                    last_accessed_at=t0,
                ),
                record("u", "t", None, count=1, total_watch_time=10),
            ]
        )
    ).iloc[0]
    assert merged.completed_chapters == ("a", "b", "c")
    assert merged.chapters_completed == 3
    assert merged.completion_percentage == 75.0
    assert merged.quiz_scores == {"q1": 70, "q2": 90}
    assert merged.total_watch_time == 80
    assert merged.started_at == t0 and merged.last_accessed_at == t1
    assert merged.local_records == 3 and not merged.total_conflict


def test_count_only_record_is_never_lowered_by_a_shorter_list() -> None:
    merged = merge_local(frame([record("u", "t", ("a",)), record("u", "t", None, count=3)])).iloc[0]
    assert merged.chapters_completed == 3


def test_completion_is_capped_and_rounded() -> None:
    assert completion(1, 3) == 33.33
    assert completion(9, 4) == 100.0
    assert completion(2, 0) == 0.0


chapter_sets = st.frozensets(st.sampled_from(["a", "b", "c", "d"]))
quizzes = st.dictionaries(st.sampled_from(["q1", "q2"]), st.integers(0, 100))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(chapter_sets, quizzes, st.integers(0, 1000)), min_size=1, max_size=4))
def test_merge_is_order_free_and_idempotent(parts: list[tuple[frozenset[str], dict, int]]) -> None:
    rows = [
        record("u", "t", tuple(sorted(c)), quiz_scores=q, total_watch_time=w) for c, q, w in parts
    ]
    once = merge_local(frame(rows)).iloc[0]
    reversed_ = merge_local(frame(rows[::-1])).iloc[0]
    twice = merge_local(frame([*rows, *rows])).iloc[0]
    for merged in (reversed_, twice):
        assert merged.completed_chapters == once.completed_chapters
        assert merged.quiz_scores == once.quiz_scores
        assert merged.total_watch_time == once.total_watch_time


def _verdict(local: dict[str, Any], backend: dict[str, Any]) -> Status:
    return compare_progress(local, backend).status


def test_partial_order() -> None:
    base = record("u", "t", ("a", "b"), quiz_scores={"q": 50}, total_watch_time=100)
    assert _verdict(base, base) == Status.IN_SYNC
    assert (
        _verdict(
            record("u", "t", ("a", "b", "c"), quiz_scores={"q": 50}, total_watch_time=100), base
        )
        == Status.LOCAL_AHEAD
    )
    assert (
        _verdict(record("u", "t", ("a", "b"), quiz_scores={"q": 60}, total_watch_time=100), base)
        == Status.LOCAL_AHEAD
    )
    assert (
        _verdict(
            record("u", "t", ("a", "b"), quiz_scores={"q": 50, "z": 1}, total_watch_time=100), base
        )
        == Status.LOCAL_AHEAD
    )
    assert (
        _verdict(record("u", "t", ("a",), quiz_scores={"q": 50}, total_watch_time=100), base)
        == Status.BACKEND_AHEAD
    )
    assert (
        _verdict(record("u", "t", ("a", "c"), quiz_scores={"q": 50}, total_watch_time=100), base)
        == Status.DIVERGED
    )
    assert (
        _verdict(record("u", "t", ("a", "b"), quiz_scores={"q": 90}, total_watch_time=10), base)
        == Status.DIVERGED
    )
    assert (
        _verdict(record("u", "t", None, count=3, quiz_scores={"q": 50}, total_watch_time=100), base)
        == Status.LOCAL_AHEAD
    )
    assert (
        _verdict(
            record(
                "u", "t", ("a", "b"), total_chapters=5, quiz_scores={"q": 50}, total_watch_time=100
            ),
            base,
        )
        == Status.CONFLICT
    )
    rounded = dict(base, completion_percentage=50.004)
    assert _verdict(base, rounded) == Status.IN_SYNC
    assert _verdict(base, dict(base, completion_percentage=61.0)) == Status.CONFLICT


def _diff(
    backend_rows: list[dict],
    local_rows: list[dict],
    bad: dict[int, str] | None = None,
    quarantined: list[tuple[str, str]] = (),
    foreign: list[tuple[str, str]] = (),
) -> pd.DataFrame:
    backend = frame(backend_rows)
    backend["id"] = pd.array(range(1, len(backend) + 1), dtype="Int64")
    bad = bad or {}
    reasons = pd.Series([bad.get(i, "") for i in backend.index], index=backend.index)
    key = lambda pairs: pd.DataFrame(list(pairs), columns=["user_id", "tutorial_id"])  # noqa: E731
    return build_diff(
        CheckedBackend(backend, reasons),
        merge_local(frame(local_rows)),
        quarantined=key(quarantined),
        foreign=key(foreign),
    )


def test_precedence_of_statuses() -> None:
    diff = _diff(
        backend_rows=[
            record("bad-both", "t", ("a",)),
            record("bad-back", "t", ("a",)),
            record("foreign-and-backend", "t", ("a",)),
        ],
        local_rows=[record("bad-back", "t", ("a", "b")), record("mixed", "t", ("a",))],
        bad={0: "completion 120", 1: "completion 120"},
        quarantined=[("bad-both", "t"), ("mixed", "t"), ("only-bad", "t")],
        foreign=[("foreign-and-backend", "t"), ("mixed", "t"), ("ghost", "t")],
    )
    got = dict(zip(diff.user_id, diff.status, strict=True))
    assert got == {
        "bad-both": "invalid_local",  # every local record quarantined beats invalid_backend
        "bad-back": "invalid_backend",  # beats local_ahead
        "foreign-and-backend": "foreign_user",  # only foreign local records
        "mixed": "missing_in_backend",  # a valid own record: the foreign one is ignored
        "only-bad": "invalid_local",
        "ghost": "foreign_user",
    }
    assert diff.set_index("user_id").loc["bad-back", "reason"] == "completion 120"


def test_user_totals() -> None:
    diff = _diff(
        backend_rows=[
            record("a", "t1", ("x",)),
            record("a", "t2", ("x",)),
            record("b", "t1", ("x",)),
        ],
        local_rows=[
            record("a", "t1", ("x",)),
            record("a", "t2", ("x", "y")),
            record("b", "t1", ("x",)),
            record("c", "t1", ("x",)),
        ],
    )
    totals = user_totals(diff)
    assert totals.users_with_local_data == 3
    assert totals.migrated_users == 1  # only b: a has local_ahead, c missing_in_backend
    assert totals.at_risk == 2
    assert totals.migration_success_rate == round(1 / 3, 6)


@given(st.integers(-1000, 10**6), st.integers(1, 10**6))
def test_completion_rounds_half_up_like_postgresql(chapters: int, total: int) -> None:
    from decimal import ROUND_HALF_UP, Decimal

    exact = (Decimal(100 * chapters) / Decimal(total)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert completion(chapters, total) == min(100.0, float(exact))
