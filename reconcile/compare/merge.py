"""SPEC 3's merge in Python, field by field from :data:`reconcile.rules.MERGE_RULES`.

Two uses, one function (:func:`join`): the valid local records of one key (several
browsers) become one local record (:func:`merge_local`), and a key to repair gets the row
the repair will leave (:func:`predict_repairs`), so the run can check that row against the
record gate before it proposes the repair. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from reconcile.model import KEY, PROGRESS_FIELDS, TIMESTAMP_COLUMNS, Action
from reconcile.rules import MERGE_RULES, Rule, completion

Record = dict[str, Any]


def present(value: object) -> bool:
    """Whether a scalar is known: not None, NA, NaT or NaN."""
    return (
        value is not None
        and value is not pd.NA
        and value is not pd.NaT
        and not (isinstance(value, float) and math.isnan(value))
    )


def _known(values: Sequence[Any]) -> list[Any]:
    return [v for v in values if present(v)]


def _union(values: Sequence[Any]) -> tuple[str, ...] | None:
    lists = [v for v in values if isinstance(v, tuple | list)]
    return tuple(sorted(set().union(*lists))) if lists else None


def _per_key_max(values: Sequence[Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for scores in values:
        for quiz, score in (scores if isinstance(scores, dict) else {}).items():
            if quiz not in out or score > out[quiz]:
                out[quiz] = score
    return out


def _extreme(choose: Callable[..., Any]) -> Callable[[Sequence[Any]], Any]:
    def combine(values: Sequence[Any]) -> Any:
        known = _known(values)
        return choose(known) if known else None

    return combine


_COMBINE: dict[Rule, Callable[[Sequence[Any]], Any]] = {
    Rule.UNION: _union,
    Rule.PER_KEY_MAX: _per_key_max,
    Rule.MAX: _extreme(max),
    Rule.MIN: _extreme(min),
}


def join(records: Sequence[Record], *, backend: bool) -> Record:
    """SPEC 3's join of several records of one key (each a dict of the progress fields).

    With ``backend``, the first record is the backend row: the KEEP_BACKEND fields
    (``total_chapters``, ``certificate_earned``) are its values. Without, the records are
    all local: ``total_chapters`` is the largest (the caller flags disagreement) and
    ``certificate_earned`` is true when any record claims it (a claim, never merged).
    """
    out: Record = {}
    for field, rule in MERGE_RULES.items():
        values = [r[field] for r in records]
        if rule in _COMBINE:
            out[field] = _COMBINE[rule](values)
        elif rule is Rule.KEEP_BACKEND:
            if backend:
                out[field] = values[0]
            elif field == "certificate_earned":
                out[field] = any(bool(v) for v in _known(values))
            else:
                out[field] = _extreme(max)(values)
    union = out["completed_chapters"]
    counts = _known([r["chapters_completed"] for r in records])
    out["chapters_completed"] = max([len(union) if union is not None else 0, *map(int, counts)])
    total = out["total_chapters"]
    out["completion_percentage"] = (
        completion(int(out["chapters_completed"]), int(total)) if present(total) else math.nan
    )
    return out


def merge_local(records: pd.DataFrame) -> pd.DataFrame:
    """One row per key: the join of the key's valid local records (SPEC 3).

    Adds ``local_records`` (records merged) and ``total_conflict`` (the records disagree
    on ``total_chapters``; the largest is kept). A key's only record passes unchanged but
    for ``completion_percentage``, which is always recomputed (SPEC 3).
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
        multi = pd.DataFrame(_join_groups(many), columns=columns)
        for column in ("chapters_completed", "total_chapters", "total_watch_time"):
            multi[column] = multi[column].astype("Int64")
        for column in TIMESTAMP_COLUMNS:
            multi[column] = pd.to_datetime(multi[column], utc=True).astype(single[column].dtype)
        out = pd.concat([single, multi], ignore_index=True)
    out["completion_percentage"] = [
        completion(int(c), int(t)) if present(t) and present(c) else math.nan
        for c, t in zip(out["chapters_completed"], out["total_chapters"], strict=True)
    ]
    return out.reset_index(drop=True)[columns]


def _join_groups(many: pd.DataFrame) -> list[Record]:
    """:func:`join` of each key's records, with the key, count and total conflict."""
    cols = {c: many[c].tolist() for c in many.columns}
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(cols["user_id"], cols["tutorial_id"], strict=True)):
        groups.setdefault(key, []).append(i)
    merged = []
    for (user, tutorial), rows in groups.items():
        records = [{f: cols[f][i] for f in PROGRESS_FIELDS} for i in rows]
        totals = {int(t) for t in _known([r["total_chapters"] for r in records])}
        merged.append(
            {
                "user_id": user,
                "tutorial_id": tutorial,
                **join(records, backend=False),
                "local_records": len(rows),
                "total_conflict": len(totals) > 1,
            }
        )
    return merged


def predict_repairs(diff: pd.DataFrame) -> pd.DataFrame:
    """The row each ``insert`` / ``merge`` key of ``diff`` will have after the repair.

    A progress frame (key, progress fields, ``id``, ``created_at``, ``updated_at``) on the
    index of the rows it predicts, so the record gate can judge it; merges are computed
    against the backend row as the run read it. An inserted row never has a certificate.
    """
    action = diff["action"]
    rows = diff[action.isin([Action.INSERT.value, Action.MERGE.value])]
    side = {
        s: {f: rows[f"{s}_{f}"].tolist() for f in PROGRESS_FIELDS} for s in ("local", "backend")
    }
    predicted: list[Record] = []
    for i, kind in enumerate(rows["action"].tolist()):
        local = {f: values[i] for f, values in side["local"].items()}
        if kind == Action.INSERT.value:
            row = join([{**local, "certificate_earned": False}], backend=True)
        else:
            row = join([{f: v[i] for f, v in side["backend"].items()}, local], backend=True)
        predicted.append(row)
    frame = pd.DataFrame(predicted, columns=list(PROGRESS_FIELDS), index=rows.index)
    for column in ("chapters_completed", "total_chapters", "total_watch_time"):
        frame[column] = frame[column].astype("Int64")
    for column in TIMESTAMP_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame.insert(0, "tutorial_id", rows["tutorial_id"])
    frame.insert(0, "user_id", rows["user_id"])
    frame["id"] = rows["backend_id"].astype("Int64")
    frame["created_at"] = pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns, UTC]")
    frame["updated_at"] = frame["created_at"]
    return frame
