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

import numpy as np
import pandas as pd

from reconcile.compare.merge import predict_repairs
from reconcile.compare.order import COMPARED, Verdicts, compare_sides
from reconcile.model import (
    ACTION_BY_STATUS,
    AT_RISK,
    DIFF_COLUMNS,
    KEY,
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
    """Place one merged local record and one valid backend row in SPEC 2's partial order.

    The one-key form of what :func:`build_diff` does for every key at once.
    """
    sides = [
        pd.DataFrame({f: pd.Series([r[f]], dtype=object) for f in COMPARED})
        for r in (local, backend)
    ]
    verdicts = compare_sides(*sides)
    return Verdict(
        Status(verdicts.status[0]), str(verdicts.reason[0]), str(verdicts.differences[0])
    )


# --------------------------------------------------------------------------- statuses


def key_counts(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows per key of ``frame`` (keys with NA parts are dropped) as column ``name``."""
    keyed = frame.dropna(subset=list(KEY))
    if keyed.empty:
        empty = {c: pd.Series([], dtype=object) for c in KEY}
        return pd.DataFrame({**empty, name: pd.Series([], dtype="int64")})
    counts = keyed.groupby(list(KEY), sort=False).size().rename(name).reset_index()
    return counts.astype({c: object for c in KEY})  # keys are objects, as in every frame


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
    b = backend.frame.copy(deep=False)  # only columns of its own are set below
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
    backend_columns = ["backend_id", "_valid", "_why", "failed_checks"]
    keys = outer_join(
        [
            b[[*KEY, *backend_columns, *(f"backend_{f}" for f in PROGRESS_FIELDS)]],
            loc,
            key_counts(quarantined, "quarantined_records"),
            key_counts(foreign, "foreign_records"),
        ]
    )
    for name in ("quarantined_records", "foreign_records", "local_records"):
        keys[name] = keys[name].fillna(0).astype("int64")
    keys["total_conflict"] = keys["total_conflict"].fillna(False).astype(bool)

    verdicts = _verdicts(keys)
    actions = np.array([ACTION_BY_STATUS[s].value for s in Status], dtype=object)
    status_codes = pd.Categorical(verdicts.status, categories=[s.value for s in Status]).codes
    keys["status"] = strings(verdicts.status)
    keys["reason"] = strings(verdicts.reason)
    keys["differences"] = strings(verdicts.differences)
    keys["action"] = strings(actions[status_codes])
    keys["backend_id"] = keys["backend_id"].astype("Int64")
    keys["failed_checks"] = keys["failed_checks"].fillna("").astype(str)
    if gate is not None:
        _hold_unwritable(keys, gate)
    has_backend_cert = keys["backend_certificate_earned"].fillna(False).astype(bool)
    local_cert = keys["local_certificate_earned"].fillna(False).astype(bool)
    keys["certificate_claim"] = local_cert & ~has_backend_cert & (keys["local_records"] > 0)
    return keys[list(DIFF_COLUMNS)]


def outer_join(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The full outer join on KEY of ``frames`` (each with unique keys), sorted by key.

    What ``pd.merge(how="outer")`` of one frame after another and a sort by key give,
    values and dtypes alike (a side's missing row is NaN / NA / NaT; bool and integer
    columns with a missing row become object and float), with the keys factorised once.
    """
    users = pd.concat([f["user_id"] for f in frames], ignore_index=True)
    tutorials = pd.concat([f["tutorial_id"] for f in frames], ignore_index=True)
    user_codes = pd.factorize(users, sort=True, use_na_sentinel=False)[0].astype(np.int64)
    tutorial_codes, tutorial_uniques = pd.factorize(tutorials, sort=True, use_na_sentinel=False)
    pairs = user_codes * max(len(tutorial_uniques), 1) + tutorial_codes
    unique_pairs, first = np.unique(pairs, return_index=True)
    out = {"user_id": users.take(first), "tutorial_id": tutorials.take(first)}
    columns: dict[str, pd.Series] = {c: s.reset_index(drop=True) for c, s in out.items()}
    start = 0
    for frame in frames:
        rows = np.searchsorted(unique_pairs, pairs[start : start + len(frame)])
        start += len(frame)
        indexer = np.full(len(unique_pairs), -1, dtype=np.int64)
        indexer[rows] = np.arange(len(frame))
        values = frame.drop(columns=list(KEY)).reset_index(drop=True).reindex(indexer)
        columns.update({c: values[c].reset_index(drop=True) for c in values.columns})
    return pd.DataFrame(columns)


def strings(values: np.ndarray) -> pd.Series:
    """An object array of ``str`` as a ``str`` column, each distinct text converted once."""
    codes, uniques = pd.factorize(values)
    texts = pd.array(np.asarray(uniques, dtype=object), dtype="str")
    return pd.Series(texts.take(codes, allow_fill=True))


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


def _verdicts(keys: pd.DataFrame) -> Verdicts:
    """SPEC 2's precedence, column-wise; only keys with data on both sides are compared."""
    n = len(keys)
    has_backend = (keys["backend_id"].notna() | keys["backend_total_chapters"].notna()).to_numpy()
    valid = keys["_valid"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    own = keys["local_records"].to_numpy() != 0
    bad = keys["quarantined_records"].to_numpy() != 0
    foreign = keys["foreign_records"].to_numpy() != 0
    conflict = keys["total_conflict"].to_numpy(dtype=bool)
    status = np.full(n, "", dtype=object)
    reason = np.full(n, "", dtype=object)
    differences = np.full(n, "", dtype=object)
    left = np.ones(n, dtype=bool)

    def take(mask: np.ndarray, verdict: Status, why: object = "", text: object = "") -> None:
        chosen = left & mask
        status[chosen] = verdict.value
        reason[chosen] = why if isinstance(why, str) else why[chosen]  # type: ignore[index]
        differences[chosen] = text if isinstance(text, str) else text[chosen]  # type: ignore[index]
        left[chosen] = False

    take(foreign & ~own & ~bad, Status.FOREIGN_USER, _FOREIGN)
    take(bad & ~own, Status.INVALID_LOCAL, "every local record was quarantined")
    why = keys["_why"].to_numpy(dtype=object)
    failed = np.where(why.astype(bool), why, "backend row failed validation")
    take(has_backend & ~valid, Status.INVALID_BACKEND, failed)
    take(own & conflict, Status.CONFLICT, _LOCAL_TOTALS, _LOCAL_TOTALS)
    take(~own, Status.BACKEND_ONLY, "no local record")
    missing = left & ~has_backend
    if missing.any():
        status[missing] = Status.MISSING_IN_BACKEND.value
        reason[missing] = "local progress with no backend row"
        differences[missing] = _describe(keys[missing])
        left[missing] = False
    both = np.flatnonzero(left)
    if len(both):
        rows = keys.iloc[both]
        verdicts = compare_sides(*(_unprefixed(rows, side) for side in ("local", "backend")))
        status[both], reason[both] = verdicts.status, verdicts.reason
        differences[both] = verdicts.differences
    return Verdicts(status, reason, differences)


_FOREIGN = "local records only from another user's export (set aside)"
_LOCAL_TOTALS = "local records disagree on total_chapters"


def _unprefixed(keys: pd.DataFrame, side: str) -> pd.DataFrame:
    """One side's compared fields, without the prefix (never the timestamps: not read)."""
    return pd.DataFrame({f: keys[f"{side}_{f}"].to_numpy() for f in COMPARED})


def _describe(rows: pd.DataFrame) -> np.ndarray:
    """``local only: 2/6 chapters, 1 quiz score(s), 1348 s watched`` per row."""
    quizzes = np.fromiter(map(len, rows["local_quiz_scores"]), dtype=np.int64, count=len(rows))
    return (
        "local only: "
        + _text(rows["local_chapters_completed"])
        + "/"
        + _text(rows["local_total_chapters"])
        + " chapters, "
        + quizzes.astype(str).astype(object)
        + " quiz score(s), "
        + _text(rows["local_total_watch_time"])
        + " s watched"
    )


def _text(values: pd.Series) -> np.ndarray:
    """``str()`` of each value as ``tolist()`` gives it (``<NA>`` for a missing integer)."""
    if pd.api.types.is_integer_dtype(values.dtype):
        missing = values.isna().to_numpy()
        out = values.to_numpy(dtype=np.int64, na_value=0).astype(str).astype(object)
        out[missing] = str(pd.NA)
        return out
    return np.array([str(v) for v in values.tolist()], dtype=object)


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
    risky = diff["status"].isin([s.value for s in AT_RISK]).to_numpy()
    users = diff.loc[diff["local_records"].to_numpy() > 0, "user_id"].unique()
    failed = diff.loc[risky, "user_id"]
    failing = int(failed[failed.isin(users)].nunique(dropna=False))
    migrated = len(users) - failing
    rate = migrated / len(users) if len(users) else 1.0
    return UserTotals(len(users), migrated, round(rate, 6), int(risky.sum()))


def status_counts(statuses: pd.Series) -> dict[str, int]:
    """Count per status, every status present (zero when absent), in precedence order."""
    order = [s.value for s in Status]
    counted = statuses.value_counts().reindex(order, fill_value=0)
    if int(counted.sum()) != len(statuses):
        unknown = statuses[~statuses.isin(order)].unique().tolist()
        raise ValueError(f"not a status: {unknown}")
    return {status: int(n) for status, n in counted.items()}
