"""Give every key exactly one status (SPEC 2) and the per-user figures.

Pure functions over DataFrames: no I/O. A key with valid data on both sides is placed in
SPEC 2's partial order of progress; a key to repair whose repaired row would fail the
record gate becomes a ``conflict`` (a person decides), so a repair never writes a row that
the next run rejects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reconcile.compare.merge import predict_repairs
from reconcile.model import (
    ACTION_BY_STATUS,
    AT_RISK,
    DIFF_COLUMNS,
    KEY,
    PERCENT_DECIMALS,
    PROGRESS_FIELDS,
    Status,
)

#: Judges rows: takes a progress frame, returns why each row fails ("" when it passes),
#: on the frame's index. The pipeline passes the backend record gate.
Gate = Callable[[pd.DataFrame], pd.Series]


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


@dataclass(frozen=True)
class CheckedBackend:
    """The backend rows and, per row (same index), why it failed the record gate.

    ``reasons`` are sentences for people ("" when the row passed); ``checks`` the names of
    the rules it broke, joined by ";" (they decide the fixes review.sql suggests).
    """

    frame: pd.DataFrame
    reasons: pd.Series
    checks: pd.Series | None = None


def build_diff(
    backend: CheckedBackend,
    local: pd.DataFrame,
    *,
    quarantined: pd.DataFrame,
    foreign: pd.DataFrame,
    gate: Gate | None = None,
) -> pd.DataFrame:
    """One row per key of either side with its status, reasons and both sides' values.

    ``local`` is :func:`~reconcile.compare.merge.merge_local`'s output; ``quarantined``
    and ``foreign`` need only the key columns (one row per rejected / foreign record).
    With ``gate``, a key to insert or merge whose repaired row the gate rejects becomes a
    ``conflict`` whose reason says why: the repair cannot write it faithfully.
    """
    b = backend.frame.copy()
    reasons = backend.reasons.reindex(b.index, fill_value="backend row failed validation")
    b["_why"] = reasons.fillna("").astype(str).to_numpy(dtype=object)
    b["_valid"] = b["_why"] == ""
    checks = backend.checks if backend.checks is not None else pd.Series("", index=b.index)
    b["failed_checks"] = (
        checks.reindex(b.index, fill_value="").fillna("").astype(str).to_numpy(dtype=object)
    )
    duplicated = b.duplicated(list(KEY), keep=False)
    if duplicated.any():  # production may lack the UNIQUE constraint: one status per key
        b.loc[duplicated, "_valid"] = False
        b.loc[duplicated, "_why"] = "several backend rows for this key"
        b.loc[duplicated, "failed_checks"] = b.loc[duplicated, "failed_checks"].map(
            lambda c: ";".join(dict.fromkeys([*filter(None, c.split(";")), "unique_key"]))
        )
        b = b.drop_duplicates(list(KEY), keep="first")
    b = b.rename(columns={f: f"backend_{f}" for f in PROGRESS_FIELDS}).rename(
        columns={"id": "backend_id"}
    )
    loc = local.rename(columns={f: f"local_{f}" for f in PROGRESS_FIELDS})
    keys = pd.merge(
        b[
            [
                *KEY,
                "backend_id",
                "_valid",
                "_why",
                "failed_checks",
                *(f"backend_{f}" for f in PROGRESS_FIELDS),
            ]
        ],
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
    keys["backend_id"] = keys["backend_id"].astype("Int64")
    keys["failed_checks"] = keys["failed_checks"].fillna("").astype(str)
    if gate is not None:
        _hold_unwritable(keys, gate)
    has_backend_cert = keys["backend_certificate_earned"].fillna(False).astype(bool)
    local_cert = keys["local_certificate_earned"].fillna(False).astype(bool)
    keys["certificate_claim"] = local_cert & ~has_backend_cert & (keys["local_records"] > 0)
    return keys.sort_values(list(KEY), kind="stable").reset_index(drop=True)[list(DIFF_COLUMNS)]


def _hold_unwritable(keys: pd.DataFrame, gate: Gate) -> None:
    """Turn each repair whose resulting row fails ``gate`` into a ``conflict`` (in place).

    E.g. a count-only local record ahead of a backend chapter list: the merged row would
    count chapters it cannot name, which the next run rejects. A person decides.
    """
    predicted = predict_repairs(keys)
    if predicted.empty:
        return
    why = gate(predicted)
    bad = why[why != ""]
    if bad.empty:
        return
    keys.loc[bad.index, "status"] = Status.CONFLICT.value
    keys.loc[bad.index, "action"] = ACTION_BY_STATUS[Status.CONFLICT].value
    keys.loc[bad.index, "reason"] = [
        f"the repair cannot be written faithfully: the repaired row would fail validation ({w})"
        for w in bad
    ]


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
    valid = keys["_valid"].astype("boolean").fillna(False).astype(bool).tolist()
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


def status_counts(statuses: pd.Series) -> dict[str, int]:
    """Count per status, every status present (zero when absent), in precedence order."""
    order = [s.value for s in Status]
    counted = statuses.value_counts().reindex(order, fill_value=0)
    if int(counted.sum()) != len(statuses):
        unknown = statuses[~statuses.isin(order)].unique().tolist()
        raise ValueError(f"not a status: {unknown}")
    return {status: int(n) for status, n in counted.items()}
