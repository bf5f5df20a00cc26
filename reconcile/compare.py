"""Merge local records per key and give every key exactly one status (SPEC 2 and 3).

Pure functions over DataFrames: no I/O. Everything here works per key and per user, so
the same code runs unchanged on one hash partition of ``user_id`` at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd

from reconcile.model import (
    ACTION_BY_STATUS,
    AT_RISK,
    DIFF_COLUMNS,
    KEY,
    PERCENT_DECIMALS,
    PROGRESS_FIELDS,
    Status,
)

Key = tuple[str, str]
_CENT = Decimal(1).scaleb(-PERCENT_DECIMALS)


# --------------------------------------------------------------------------- merge


def completion(chapters: int, total: int) -> float:
    """SPEC 3: ``min(100, round(100 * chapters / total, 2))``; 0 when total is not positive."""
    if total <= 0:
        return 0.0
    # Decimal, half away from zero: exactly what PostgreSQL's round(numeric, 2) gives.
    exact = Decimal(100 * chapters) / Decimal(total)
    return min(100.0, float(exact.quantize(_CENT, rounding=ROUND_HALF_UP)))


def merge_local(records: pd.DataFrame) -> pd.DataFrame:
    """One row per key: the join of the key's valid local records (SPEC 3).

    Chapters are the union of the known lists (``None`` when no record has a list), quiz
    scores the per-quiz maximum, watch time the maximum, ``chapters_completed`` the size of
    the union (never below a count-only record's count), ``started_at`` and ``completed_at``
    the earliest, ``last_accessed_at`` the latest, ``certificate_earned`` any. Records that
    disagree on ``total_chapters`` keep the largest and are flagged in ``total_conflict``.
    """
    columns = [*KEY, *PROGRESS_FIELDS, "local_records", "total_conflict"]
    if records.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    work = records[[*KEY, *PROGRESS_FIELDS]]
    dup = work.duplicated(list(KEY), keep=False)
    single = work[~dup].copy()
    single["local_records"] = 1
    single["total_conflict"] = False
    merged_rows = [
        _merge_group(group) for _, group in work[dup].groupby(list(KEY), sort=False, dropna=False)
    ]
    multi = pd.DataFrame(merged_rows, columns=columns) if merged_rows else None
    out = single if multi is None else pd.concat([single, multi], ignore_index=True)
    out["completion_percentage"] = [
        completion(int(c), int(t)) if _present(t) and _present(c) else math.nan
        for c, t in zip(out["chapters_completed"], out["total_chapters"], strict=True)
    ]
    return out.reset_index(drop=True)[columns]


def _merge_group(group: pd.DataFrame) -> dict[str, Any]:
    lists = [c for c in group["completed_chapters"] if c is not None]
    union = tuple(sorted(set().union(*lists))) if lists else None
    counts_without_list = [
        int(n)
        for c, n in zip(group["completed_chapters"], group["chapters_completed"], strict=True)
        if c is None and _present(n)
    ]
    count = max([len(union) if union is not None else 0, *counts_without_list])
    totals = {int(t) for t in group["total_chapters"] if _present(t)}
    quizzes: dict[str, float] = {}
    for scores in group["quiz_scores"]:
        for quiz, score in scores.items():
            if quiz not in quizzes or score > quizzes[quiz]:
                quizzes[quiz] = score
    first = group.iloc[0]
    return {
        "user_id": first["user_id"],
        "tutorial_id": first["tutorial_id"],
        "completed_chapters": union,
        "chapters_completed": count,
        "total_chapters": max(totals) if totals else pd.NA,
        "completion_percentage": math.nan,
        "quiz_scores": quizzes,
        "total_watch_time": group["total_watch_time"].max(),
        "certificate_earned": bool(group["certificate_earned"].any()),
        "started_at": group["started_at"].min(),
        "completed_at": group["completed_at"].min(),
        "last_accessed_at": group["last_accessed_at"].max(),
        "local_records": len(group),
        "total_conflict": len(totals) > 1,
    }


def _present(value: object) -> bool:
    return (
        value is not None
        and value is not pd.NA
        and not (isinstance(value, float) and math.isnan(value))
    )


# --------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class Verdict:
    """The outcome for one key with valid data on both sides."""

    status: Status
    reason: str
    differences: str


def compare_progress(local: dict[str, Any], backend: dict[str, Any]) -> Verdict:
    """Place a merged local record and a valid backend row in SPEC 2's partial order."""
    local_more: list[str] = []
    backend_more: list[str] = []
    _compare_chapters(local, backend, local_more, backend_more)
    _compare_quizzes(local["quiz_scores"], backend["quiz_scores"], local_more, backend_more)
    lw, bw = int(local["total_watch_time"]), int(backend["total_watch_time"])
    if lw > bw:
        local_more.append(f"more watch time ({lw} s vs {bw} s)")
    elif bw > lw:
        backend_more.append(f"more watch time ({bw} s vs {lw} s)")

    parts = [f"local has {x}" for x in local_more] + [f"backend has {x}" for x in backend_more]
    differences = "; ".join(parts)
    if int(local["total_chapters"]) != int(backend["total_chapters"]):
        reason = (
            f"total_chapters differs: local {local['total_chapters']}, "
            f"backend {backend['total_chapters']}"
        )
        return Verdict(Status.CONFLICT, reason, "; ".join([reason, *parts]))
    if local_more and backend_more:
        return Verdict(Status.DIVERGED, "each side holds progress the other lacks", differences)
    if local_more:
        return Verdict(Status.LOCAL_AHEAD, "local holds progress the backend lacks", differences)
    if backend_more:
        return Verdict(Status.BACKEND_AHEAD, "backend holds more progress", differences)
    lp = round(float(local["completion_percentage"]), PERCENT_DECIMALS)
    bp = round(float(backend["completion_percentage"]), PERCENT_DECIMALS)
    if lp != bp:
        reason = f"completion_percentage differs ({lp} vs {bp}) with the same progress"
        return Verdict(Status.CONFLICT, reason, reason)
    return Verdict(Status.IN_SYNC, "both sides hold the same progress", "")


def _compare_chapters(
    local: dict[str, Any], backend: dict[str, Any], local_more: list[str], backend_more: list[str]
) -> None:
    lc, bc = local["completed_chapters"], backend["completed_chapters"]
    if lc is not None and bc is not None:
        only_local = sorted(set(lc) - set(bc))
        only_backend = sorted(set(bc) - set(lc))
        if only_local:
            local_more.append(
                f"{len(only_local)} chapter(s) the other lacks: {_sample(only_local)}"
            )
        if only_backend:
            backend_more.append(
                f"{len(only_backend)} chapter(s) the other lacks: {_sample(only_backend)}"
            )
        return
    ln, bn = int(local["chapters_completed"]), int(backend["chapters_completed"])
    if ln > bn:
        local_more.append(f"a higher chapter count ({ln} vs {bn})")
    elif bn > ln:
        backend_more.append(f"a higher chapter count ({bn} vs {ln})")


def _compare_quizzes(
    local: dict[str, float],
    backend: dict[str, float],
    local_more: list[str],
    backend_more: list[str],
) -> None:
    for mine, theirs, sink in ((local, backend, local_more), (backend, local, backend_more)):
        better = [q for q, s in mine.items() if q not in theirs or s > theirs[q]]
        if better:
            sink.append(f"better or extra quiz score(s): {_sample(sorted(better))}")


def _sample(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --------------------------------------------------------------------------- statuses


def key_counts(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows per key of ``frame`` (keys with NA parts are dropped) as column ``name``."""
    keyed = frame.dropna(subset=list(KEY))
    if keyed.empty:
        return pd.DataFrame({"user_id": [], "tutorial_id": [], name: []}).astype({name: "int64"})
    return keyed.groupby(list(KEY), sort=False).size().rename(name).reset_index()


def build_diff(
    backend: pd.DataFrame,
    backend_valid: pd.Series,
    backend_reasons: dict[int, str],
    local_merged: pd.DataFrame,
    quarantined: pd.DataFrame,
    foreign: pd.DataFrame,
) -> pd.DataFrame:
    """One row per key of either side with its status, reasons and both sides' values.

    ``backend_valid`` is aligned to ``backend``'s index; ``backend_reasons`` maps a backend
    index label to why it failed validation. ``quarantined`` and ``foreign`` need only the
    key columns (one row per rejected / foreign record).
    """
    b = backend.copy()
    b["_valid"] = backend_valid.reindex(b.index, fill_value=False).to_numpy()
    b["_why"] = [backend_reasons.get(i, "") for i in b.index]
    duplicated = b.duplicated(list(KEY), keep=False)
    if duplicated.any():  # production may lack the UNIQUE constraint: one status per key
        b.loc[duplicated, "_valid"] = False
        b.loc[duplicated, "_why"] = "several backend rows for this key"
        b = b.drop_duplicates(list(KEY), keep="first")
    b = b.rename(columns={f: f"backend_{f}" for f in PROGRESS_FIELDS}).rename(
        columns={"id": "backend_id"}
    )
    loc = local_merged.rename(columns={f: f"local_{f}" for f in PROGRESS_FIELDS})
    keys = pd.merge(
        b[[*KEY, "backend_id", "_valid", "_why", *(f"backend_{f}" for f in PROGRESS_FIELDS)]],
        loc,
        on=list(KEY),
        how="outer",
    )
    for name, frame in (("quarantined_records", quarantined), ("foreign_records", foreign)):
        keys = keys.merge(key_counts(frame, name), on=list(KEY), how="outer")
    for name in ("quarantined_records", "foreign_records", "local_records"):
        keys[name] = keys[name].fillna(0).astype("int64")
    keys["total_conflict"] = keys["total_conflict"].fillna(False).astype(bool)

    verdicts = [_status_of(row) for row in keys.to_dict("records")]
    keys["status"] = [v.status.value for v in verdicts]
    keys["reason"] = [v.reason for v in verdicts]
    keys["differences"] = [v.differences for v in verdicts]
    keys["action"] = [ACTION_BY_STATUS[v.status].value for v in verdicts]
    has_backend_cert = keys["backend_certificate_earned"].fillna(False).astype(bool)
    local_cert = keys["local_certificate_earned"].fillna(False).astype(bool)
    keys["certificate_claim"] = local_cert & ~has_backend_cert & (keys["local_records"] > 0)
    keys["backend_id"] = keys["backend_id"].astype("Int64")
    return keys.sort_values(list(KEY), kind="stable").reset_index(drop=True)[list(DIFF_COLUMNS)]


def _status_of(row: dict[str, Any]) -> Verdict:
    has_backend = _present(row["backend_id"]) or _present(row["backend_total_chapters"])
    own_valid, own_bad = row["local_records"], row["quarantined_records"]
    if row["foreign_records"] and not own_valid and not own_bad:
        return Verdict(
            Status.FOREIGN_USER, "local records only from another user's export (set aside)", ""
        )
    if own_bad and not own_valid:
        return Verdict(Status.INVALID_LOCAL, "every local record was quarantined", "")
    if has_backend and not row["_valid"]:
        return Verdict(Status.INVALID_BACKEND, row["_why"] or "backend row failed validation", "")
    if own_valid and row["total_conflict"]:
        reason = "local records disagree on total_chapters"
        return Verdict(Status.CONFLICT, reason, reason)
    if not own_valid:
        return Verdict(Status.BACKEND_ONLY, "no local record", "")
    local = {f: row[f"local_{f}"] for f in PROGRESS_FIELDS}
    if not has_backend:
        return Verdict(
            Status.MISSING_IN_BACKEND, "local progress with no backend row", _describe(local)
        )
    backend = {f: row[f"backend_{f}"] for f in PROGRESS_FIELDS}
    return compare_progress(local, backend)


def _describe(local: dict[str, Any]) -> str:
    return (
        f"local only: {local['chapters_completed']}/{local['total_chapters']} chapters, "
        f"{len(local['quiz_scores'])} quiz score(s), {local['total_watch_time']} s watched"
    )


# --------------------------------------------------------------------------- per user


@dataclass(frozen=True)
class UserTotals:
    """SPEC 2's per-user figures."""

    users_with_local_data: int
    migrated_users: int
    migration_success_rate: float
    at_risk: int


def user_totals(diff: pd.DataFrame) -> UserTotals:
    """Users with local data, migrated users, their rate, and keys at risk of data loss."""
    with_local = diff[diff["local_records"] > 0]
    risky = diff["status"].isin([s.value for s in AT_RISK])
    users = set(with_local["user_id"])
    failed = set(diff.loc[risky, "user_id"]) & users
    migrated = len(users) - len(failed)
    rate = migrated / len(users) if users else 1.0
    return UserTotals(len(users), migrated, round(rate, 6), int(risky.sum()))


def status_counts(statuses: Iterable[str]) -> dict[str, int]:
    """Count per status, every status present (zero when absent), in precedence order."""
    counts = dict.fromkeys((s.value for s in Status), 0)
    for status in statuses:
        counts[status] += 1
    return counts
