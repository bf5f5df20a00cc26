"""Statuses (SPEC 2) and per-user figures as pure functions, without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd

from reconcile.compare.merge import merge_local
from reconcile.compare.status import CheckedBackend, build_diff, compare_progress, user_totals
from reconcile.config import Config
from reconcile.model import Status
from reconcile.validate.records import validate_backend
from tests.compare.test_merge import frame, record


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
    gate: Any = None,
) -> pd.DataFrame:
    backend = frame(backend_rows)
    backend["id"] = pd.array(range(1, len(backend) + 1), dtype="Int64")
    backend["created_at"] = backend["updated_at"] = pd.Timestamp("2026-01-01", tz="UTC")
    bad = bad or {}
    reasons = pd.Series([bad.get(i, "") for i in backend.index], index=backend.index)
    key = lambda pairs: pd.DataFrame(list(pairs), columns=["user_id", "tutorial_id"])  # noqa: E731
    return build_diff(
        CheckedBackend(backend, reasons),
        merge_local(frame(local_rows)),
        quarantined=key(quarantined),
        foreign=key(foreign),
        gate=gate,
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


def _record_gate(rows: pd.DataFrame) -> pd.Series:
    return validate_backend(rows, now=datetime(2026, 2, 1, tzinfo=UTC), config=Config()).reasons()


def test_a_repair_the_gate_would_reject_is_a_conflict_for_review() -> None:
    """A count-only record ahead of a chapter list: the merged row could not name them."""
    backend = [record("old", "t", ("c1", "c2")), record("ok", "t", ("c1",))]
    local = [record("old", "t", None, count=3), record("ok", "t", ("c1", "c2"))]
    plain = _diff(backend, local).set_index("user_id")
    assert plain.loc["old", "status"] == Status.LOCAL_AHEAD  # without the gate: a merge
    diff = _diff(backend, local, gate=_record_gate).set_index("user_id")
    assert diff.loc["old", "status"] == Status.CONFLICT
    assert diff.loc["old", "action"] == "review"
    assert "cannot be written faithfully" in diff.loc["old", "reason"]
    assert "chapters_completed 3 differs from the 2 chapter ids" in diff.loc["old", "reason"]
    assert diff.loc["ok", "status"] == Status.LOCAL_AHEAD  # a faithful merge stays a merge
