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
    TIMESTAMP_COLUMNS,
    Status,
)

Key = tuple[str, str]
_CENT = Decimal(1).scaleb(-PERCENT_DECIMALS)


# --------------------------------------------------------------------------- merge


def completion(chapters: int, total: int) -> float:
    """SPEC 3: ``min(100, round(100 * chapters / total, 2))``; 0 when total is not positive."""
    if total <= 0:
        return 0.0
    if chapters >= 0:  # integer arithmetic, half up: PostgreSQL's round(numeric, 2)
        cents = (20000 * chapters + total) // (2 * total)
        return min(100.0, cents / 100)
    exact = Decimal(100 * chapters) / Decimal(total)
    return float(exact.quantize(_CENT, rounding=ROUND_HALF_UP))


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
    many = work[dup]
    if many.empty:
        out = single
    else:
        cols = {c: many[c].tolist() for c in many.columns}
        groups: dict[Key, list[int]] = {}
        for i, key in enumerate(zip(cols["user_id"], cols["tutorial_id"], strict=True)):
            groups.setdefault(key, []).append(i)
        merged = [_merge_rows(key, rows, cols) for key, rows in groups.items()]
        multi = pd.DataFrame(merged, columns=columns)
        for column in ("chapters_completed", "total_chapters", "total_watch_time"):
            multi[column] = multi[column].astype("Int64")
        for column in TIMESTAMP_COLUMNS:
            multi[column] = pd.to_datetime(multi[column], utc=True).astype(single[column].dtype)
        out = pd.concat([single, multi], ignore_index=True)
    out["completion_percentage"] = [
        completion(int(c), int(t)) if _present(t) and _present(c) else math.nan
        for c, t in zip(out["chapters_completed"], out["total_chapters"], strict=True)
    ]
    return out.reset_index(drop=True)[columns]


def _merge_rows(key: Key, rows: list[int], cols: dict[str, list[Any]]) -> dict[str, Any]:
    """SPEC 3's join of several records of one key (``cols`` holds the column lists)."""
    chapters = [cols["completed_chapters"][i] for i in rows]
    lists = [c for c in chapters if c is not None]
    union = tuple(sorted(set().union(*lists))) if lists else None
    counts_without_list = [
        int(cols["chapters_completed"][i])
        for i, c in zip(rows, chapters, strict=True)
        if c is None and _present(cols["chapters_completed"][i])
    ]
    totals = {int(t) for i in rows if _present(t := cols["total_chapters"][i])}
    quizzes: dict[str, float] = {}
    for i in rows:
        for quiz, score in cols["quiz_scores"][i].items():
            if quiz not in quizzes or score > quizzes[quiz]:
                quizzes[quiz] = score
    watch = [int(w) for i in rows if _present(w := cols["total_watch_time"][i])]
    return {
        "user_id": key[0],
        "tutorial_id": key[1],
        "completed_chapters": union,
        "chapters_completed": max([len(union) if union is not None else 0, *counts_without_list]),
        "total_chapters": max(totals) if totals else None,
        "completion_percentage": math.nan,
        "quiz_scores": quizzes,
        "total_watch_time": max(watch) if watch else None,
        "certificate_earned": any(bool(cols["certificate_earned"][i]) for i in rows),
        "started_at": _pick(min, cols["started_at"], rows),
        "completed_at": _pick(min, cols["completed_at"], rows),
        "last_accessed_at": _pick(max, cols["last_accessed_at"], rows),
        "local_records": len(rows),
        "total_conflict": len(totals) > 1,
    }


def _pick(choose: Any, values: list[Any], rows: list[int]) -> Any:
    known = [values[i] for i in rows if _present(values[i]) and values[i] is not pd.NaT]
    return choose(known) if known else pd.NaT


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

    verdicts = _verdicts(keys)
    keys["status"] = [v.status.value for v in verdicts]
    keys["reason"] = [v.reason for v in verdicts]
    keys["differences"] = [v.differences for v in verdicts]
    keys["action"] = [ACTION_BY_STATUS[v.status].value for v in verdicts]
    has_backend_cert = keys["backend_certificate_earned"].fillna(False).astype(bool)
    local_cert = keys["local_certificate_earned"].fillna(False).astype(bool)
    keys["certificate_claim"] = local_cert & ~has_backend_cert & (keys["local_records"] > 0)
    keys["backend_id"] = keys["backend_id"].astype("Int64")
    return keys.sort_values(list(KEY), kind="stable").reset_index(drop=True)[list(DIFF_COLUMNS)]


_FOREIGN = Verdict(
    Status.FOREIGN_USER, "local records only from another user's export (set aside)", ""
)
_INVALID_LOCAL = Verdict(Status.INVALID_LOCAL, "every local record was quarantined", "")
_LOCAL_TOTALS = Verdict(
    Status.CONFLICT,
    "local records disagree on total_chapters",
    "local records disagree on total_chapters",
)
_BACKEND_ONLY = Verdict(Status.BACKEND_ONLY, "no local record", "")


def _verdicts(keys: pd.DataFrame) -> list[Verdict]:
    """SPEC 2's precedence, key by key; only keys with data on both sides are compared."""
    has_backend = (keys["backend_id"].notna() | keys["backend_total_chapters"].notna()).tolist()
    valid = keys["_valid"].fillna(False).astype(bool).tolist()
    why = keys["_why"].tolist()
    own = keys["local_records"].tolist()
    bad = keys["quarantined_records"].tolist()
    foreign = keys["foreign_records"].tolist()
    conflict = keys["total_conflict"].tolist()
    local = _SideColumns(keys, "local")
    backend = _SideColumns(keys, "backend")
    verdicts: list[Verdict] = []
    for i in range(len(keys)):
        if foreign[i] and not own[i] and not bad[i]:
            verdicts.append(_FOREIGN)
        elif bad[i] and not own[i]:
            verdicts.append(_INVALID_LOCAL)
        elif has_backend[i] and not valid[i]:
            reason = why[i] or "backend row failed validation"
            verdicts.append(Verdict(Status.INVALID_BACKEND, reason, ""))
        elif own[i] and conflict[i]:
            verdicts.append(_LOCAL_TOTALS)
        elif not own[i]:
            verdicts.append(_BACKEND_ONLY)
        elif not has_backend[i]:
            reason, text = "local progress with no backend row", _describe(local.row(i))
            verdicts.append(Verdict(Status.MISSING_IN_BACKEND, reason, text))
        else:
            verdicts.append(compare_progress(local.row(i), backend.row(i)))
    return verdicts


class _SideColumns:
    """One side's progress fields as Python lists, read a key at a time."""

    def __init__(self, keys: pd.DataFrame, side: str) -> None:
        self._columns = {f: keys[f"{side}_{f}"].tolist() for f in PROGRESS_FIELDS}

    def row(self, i: int) -> dict[str, Any]:
        return {f: values[i] for f, values in self._columns.items()}


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
