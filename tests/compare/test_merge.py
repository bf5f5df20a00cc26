"""The Python merge of SPEC 3 (compare.merge) as pure functions, without a server."""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.compare.merge import merge_local
from reconcile.model import PROGRESS_COLUMNS
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


def test_timestamps_follow_the_rule_table() -> None:
    """started_at and completed_at: the earliest known; last_accessed_at: the latest."""
    early, late = pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-01-05", tz="UTC")
    rows = [
        record("u", "t", ("a",), started_at=late, completed_at=NAT, last_accessed_at=early),
        record("u", "t", ("a",), started_at=early, completed_at=late, last_accessed_at=late),
        record("u", "t", ("a",), started_at=NAT, completed_at=early, last_accessed_at=NAT),
    ]
    merged = merge_local(frame(rows)).iloc[0]
    assert (merged.started_at, merged.completed_at, merged.last_accessed_at) == (early, early, late)
