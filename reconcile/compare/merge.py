"""SPEC 3's merge in pandas, field by field from :data:`reconcile.rules.MERGE_RULES`.

Two uses, one join (:func:`join_groups`): the valid local records of one key (several
browsers) become one local record (:func:`merge_local`), and a key to repair gets the row
the repair will leave (:func:`predict_repairs`), so the run can check that row against the
record gate before it proposes the repair. Pure: no I/O.

The join works on *stacked* records: a progress frame with one row per record and the
group (key) of each row. Each rule is a column-wise combiner over the groups; the chapter
union and the per-quiz maximum take a vectorised fast path for groups whose records agree
(most do: the same export uploaded twice, or browsers in sync) and join sets in Python only
for the rest. Chapter lists are sorted tuples of distinct ids (:mod:`reconcile.model`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reconcile.model import KEY, PROGRESS_FIELDS, TIMESTAMP_COLUMNS, Action
from reconcile.rules import MERGE_RULES, Rule, completions

#: Columns of nullable integers in a progress frame.
INT_FIELDS = ("chapters_completed", "total_chapters", "total_watch_time")
_TIMESTAMP_DTYPE = "datetime64[ns, UTC]"


@dataclass(frozen=True)
class Stack:
    """Records of several groups, one row each: row ``r`` belongs to group ``codes[r]``.

    Within a group, rows keep their order (for a repair: the backend row first). Every
    group ``0 .. groups - 1`` has at least one row.
    """

    frame: pd.DataFrame
    codes: np.ndarray
    groups: int

    def column(self, field: str) -> pd.Series:
        return self.frame[field].reset_index(drop=True)


def _firsts(codes: np.ndarray, groups: int, values: np.ndarray) -> np.ndarray:
    """Each group's first value (None for a group without a row)."""
    out = np.full(groups, None, dtype=object)
    starts = np.unique(codes, return_index=True)[1]
    out[codes[starts]] = values[starts]
    return out


def _agree(codes: np.ndarray, groups: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each group's first value, and whether every value of the group equals it."""
    firsts = _firsts(codes, groups, values)
    same = np.asarray(values == firsts[codes], dtype=bool)  # object ==: tuples, dicts
    differ = np.bincount(codes[~same], minlength=groups)
    return firsts, np.asarray(differ == 0)


def _rows_of(
    codes: np.ndarray, values: np.ndarray, groups: np.ndarray
) -> Iterator[tuple[int, list[Any]]]:
    """Each of ``groups`` with its values, in row order."""
    wanted = np.isin(codes, groups)
    order = np.argsort(codes[wanted], kind="stable")
    codes, rows = codes[wanted][order], values[wanted][order].tolist()
    if not rows:
        return
    bounds = (np.flatnonzero(np.diff(codes)) + 1).tolist()
    starts, ends = [0, *bounds], [*bounds, len(rows)]
    for group, start, end in zip(codes[starts].tolist(), starts, ends, strict=True):
        yield group, rows[start:end]


def _union(stack: Stack, field: str) -> pd.Series:
    """Chapter ids: the union; None where no record has a list (count-only records).

    A group whose lists are all equal keeps its first (lists are sorted and distinct).
    """
    values = stack.column(field).to_numpy(dtype=object)
    known = pd.notna(values)
    codes, lists = stack.codes[known], values[known]
    has_list = np.bincount(codes, minlength=stack.groups) > 0
    firsts, agree = _agree(codes, stack.groups, lists)
    out = np.full(stack.groups, None, dtype=object)
    out[agree & has_list] = firsts[agree & has_list]
    for group, several in _rows_of(codes, lists, np.flatnonzero(has_list & ~agree)):
        out[group] = tuple(sorted(set().union(*several)))
    return pd.Series(out, dtype=object)


def _per_key_max(stack: Stack, field: str) -> pd.Series:
    """Quiz scores: every quiz of any record, each with its highest score."""
    values = stack.column(field).to_numpy(dtype=object)
    firsts, agree = _agree(stack.codes, stack.groups, values)
    agree &= pd.notna(firsts)
    out = np.full(stack.groups, None, dtype=object)
    out[agree] = firsts[agree]
    for group, records in _rows_of(stack.codes, values, np.flatnonzero(~agree)):
        best: dict[str, float] = {}
        for scores in records:
            for quiz, score in (scores if isinstance(scores, dict) else {}).items():
                if quiz not in best or score > best[quiz]:
                    best[quiz] = score
        out[group] = best
    return pd.Series(out, dtype=object)


def _extreme(how: str) -> Callable[[Stack, str], pd.Series]:
    def combine(stack: Stack, field: str) -> pd.Series:
        values = stack.column(field)
        grouped = values.groupby(stack.codes, sort=True)
        out = grouped.max() if how == "max" else grouped.min()
        return out.reindex(range(stack.groups)).reset_index(drop=True)

    return combine


#: The vectorised combiner of each rule that joins values (the others are computed from them).
COMBINERS: dict[Rule, Callable[[Stack, str], pd.Series]] = {
    Rule.UNION: _union,
    Rule.PER_KEY_MAX: _per_key_max,
    Rule.MAX: _extreme("max"),
    Rule.MIN: _extreme("min"),
}


def join_groups(stack: Stack, *, keep: dict[str, pd.Series]) -> pd.DataFrame:
    """SPEC 3's join of each group's records: one row per group, the progress fields.

    ``keep`` gives the KEEP_BACKEND fields (the backend row's values, or what a new row
    gets); ``chapters_completed`` is the size of the union, never below a record's count,
    and ``completion_percentage`` is recomputed from it.
    """
    out: dict[str, pd.Series] = {}
    for field, rule in MERGE_RULES.items():
        if rule in COMBINERS:
            out[field] = COMBINERS[rule](stack, field)
        elif rule is Rule.KEEP_BACKEND:
            out[field] = keep[field].reset_index(drop=True)
    union = out["completed_chapters"]
    sizes = union.str.len().fillna(0).astype("int64")
    counts = _extreme("max")(stack, "chapters_completed").astype("Int64").fillna(0)
    out["chapters_completed"] = pd.Series(np.maximum(sizes, counts), dtype="Int64")
    out["completion_percentage"] = pd.Series(
        completions(out["chapters_completed"], out["total_chapters"])
    )
    frame = pd.DataFrame(out)[list(PROGRESS_FIELDS)]
    for column in INT_FIELDS:
        frame[column] = frame[column].astype("Int64")
    for column in TIMESTAMP_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True).astype(_TIMESTAMP_DTYPE)
    return frame


def merge_local(records: pd.DataFrame) -> pd.DataFrame:
    """One row per key: the join of the key's valid local records (SPEC 3).

    Adds ``local_records`` (records merged) and ``total_conflict`` (the records disagree
    on ``total_chapters``; the largest is kept). A key's only record passes unchanged but
    for ``completion_percentage``, which is always recomputed (SPEC 3). Keys of several
    records follow the single ones, in the order of their first record.
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
        out = pd.concat([single, _merge_many(many, single)], ignore_index=True)
    out["completion_percentage"] = completions(out["chapters_completed"], out["total_chapters"])
    return out.reset_index(drop=True)[columns]


def _merge_many(many: pd.DataFrame, single: pd.DataFrame) -> pd.DataFrame:
    """The join of the records of keys that have several, one row per key."""
    codes = many.groupby(list(KEY), sort=False).ngroup().to_numpy()
    stack = Stack(many, codes, int(codes.max()) + 1)
    totals = stack.column("total_chapters").groupby(codes, sort=True)
    certificates = stack.column("certificate_earned").groupby(codes, sort=True)
    merged = join_groups(
        stack,
        keep={
            # local records only: the largest total (disagreement: total_conflict), and a
            # certificate when any record claims one (a claim, never merged)
            "total_chapters": totals.max().reindex(range(stack.groups)),
            "certificate_earned": certificates.any().astype(bool),
        },
    )
    starts = np.unique(codes, return_index=True)[1]
    for i, column in enumerate(KEY):
        merged.insert(i, column, many[column].iloc[starts].reset_index(drop=True))
    merged["local_records"] = np.bincount(codes)
    merged["total_conflict"] = (totals.nunique() > 1).to_numpy()
    for column in TIMESTAMP_COLUMNS:
        merged[column] = merged[column].astype(single[column].dtype)
    return merged


def predict_repairs(diff: pd.DataFrame) -> pd.DataFrame:
    """The row each ``insert`` / ``merge`` key of ``diff`` will have after the repair.

    A progress frame (key, progress fields, ``id``, ``created_at``, ``updated_at``) on the
    index of the rows it predicts, so the record gate can judge it; merges are computed
    against the backend row as the run read it. An inserted row never has a certificate.
    """
    action = diff["action"]
    rows = diff[action.isin([Action.INSERT.value, Action.MERGE.value])]
    merge = (rows["action"] == Action.MERGE.value).to_numpy()
    positions = np.arange(len(rows))
    backend = _side(rows[merge], "backend")
    local = _side(rows, "local")
    stack = Stack(
        pd.concat([backend, local], ignore_index=True),
        np.concatenate([positions[merge], positions]),
        len(rows),
    )
    keep = {
        "total_chapters": rows["backend_total_chapters"].where(merge, rows["local_total_chapters"]),
        "certificate_earned": pd.Series(
            np.where(merge, rows["backend_certificate_earned"].to_numpy(dtype=object), False),
            dtype=object,
        ),
    }
    frame = join_groups(stack, keep=keep) if len(rows) else _empty_progress()
    frame["certificate_earned"] = frame["certificate_earned"].infer_objects()
    frame.index = rows.index
    frame.insert(0, "tutorial_id", rows["tutorial_id"])
    frame.insert(0, "user_id", rows["user_id"])
    frame["id"] = rows["backend_id"].astype("Int64")
    frame["created_at"] = pd.Series(pd.NaT, index=rows.index, dtype=_TIMESTAMP_DTYPE)
    frame["updated_at"] = frame["created_at"]
    return frame


def _side(rows: pd.DataFrame, side: str) -> pd.DataFrame:
    """One side's progress fields of ``rows``, without the prefix, on a RangeIndex."""
    frame = rows[[f"{side}_{f}" for f in PROGRESS_FIELDS]]
    return frame.set_axis(list(PROGRESS_FIELDS), axis=1).reset_index(drop=True)


def _empty_progress() -> pd.DataFrame:
    frame = pd.DataFrame({f: pd.Series([], dtype=object) for f in PROGRESS_FIELDS})
    for column in INT_FIELDS:
        frame[column] = frame[column].astype("Int64")
    frame["completion_percentage"] = frame["completion_percentage"].astype("float64")
    for column in TIMESTAMP_COLUMNS:
        frame[column] = frame[column].astype(_TIMESTAMP_DTYPE)
    return frame
