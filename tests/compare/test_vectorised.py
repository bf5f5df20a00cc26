"""The vectorised compare stage against the per-key implementation it replaced.

The reference below is the package's former code, kept verbatim (a per-key Python loop
per status, per merge and per predicted repair): Hypothesis draws backend rows, local
records, quarantined and foreign keys, and ``merge_local``, ``build_diff`` (with a gate)
and ``predict_repairs`` must give the same frames, values and dtypes alike, the same
``status``, ``reason`` and ``differences`` text byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.compare import merge as fast_merge
from reconcile.compare import status as fast_status
from reconcile.compare.status import CheckedBackend, Gate, key_counts
from reconcile.model import (
    ACTION_BY_STATUS,
    AT_RISK,
    DIFF_COLUMNS,
    KEY,
    PERCENT_DECIMALS,
    PROGRESS_FIELDS,
    TIMESTAMP_COLUMNS,
    Action,
    Status,
)
from reconcile.rules import MERGE_RULES, Rule, completion

# ============================================================= the reference (former code)

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


@dataclass(frozen=True)
class ReferenceTotals:
    """SPEC 2's per-user figures."""

    users_with_local_data: int
    migrated_users: int
    migration_success_rate: float
    at_risk: int


def user_totals(diff: pd.DataFrame) -> ReferenceTotals:
    """Users with local data, migrated users, their rate, and keys at risk of data loss."""
    with_local = diff[diff["local_records"] > 0]
    risky = diff["status"].isin([s.value for s in AT_RISK])
    users = set(with_local["user_id"])
    failed = set(diff.loc[risky, "user_id"]) & users
    migrated = len(users) - len(failed)
    rate = migrated / len(users) if users else 1.0
    return ReferenceTotals(len(users), migrated, round(rate, 6), int(risky.sum()))


# ============================================================= the differential tests

USERS = ("u1", "u2", "o'brien", 'say "hi"\\', "ü_ser-1")
TUTORIALS = ("t", "intro_to-rag", "<b>x</b>")
CHAPTERS = ("c1", "c2", "c3", "c'4", "é5", "c6", "c7")
QUIZZES = ("q1", "q2", "q'3")
STAMPS = (
    pd.NaT,
    pd.Timestamp("2026-01-01", tz="UTC"),
    pd.Timestamp("2026-01-05T10:30:00.123456789", tz="UTC"),
)


@st.composite
def progress(draw: st.DrawFn) -> dict[str, Any]:
    """Progress fields as the loaders give them, from small pools so that sides often agree."""
    everything = st.just(frozenset(CHAPTERS))  # 7 ids: the text names 5 "and 2 more"
    chapters = draw(st.none() | everything | st.frozensets(st.sampled_from(CHAPTERS)))
    listed = None if chapters is None else tuple(sorted(chapters))
    count = len(listed) if listed is not None else draw(st.integers(0, 8))
    if listed is not None and draw(st.integers(0, 9)) == 0:
        count = draw(st.integers(0, 8))  # a count that does not match the list
    total = draw(st.sampled_from((7, 7, 7, 4, 0)))
    percent = completion(count, total) + draw(st.sampled_from((0.0, 0.0, 0.0, 0.004, 0.5)))
    scores = st.integers(0, 100) | st.sampled_from((50.0, 50.5, math.nan))
    return {
        "completed_chapters": listed,
        "chapters_completed": count,
        "total_chapters": total,
        "completion_percentage": draw(st.sampled_from((percent, math.nan))),
        "quiz_scores": draw(st.dictionaries(st.sampled_from(QUIZZES), scores, max_size=3)),
        "total_watch_time": draw(st.sampled_from((0, 60, 90, 90))),
        "certificate_earned": draw(st.booleans()),
        **{c: draw(st.sampled_from(STAMPS)) for c in TIMESTAMP_COLUMNS},
    }


@st.composite
def near(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` as is, or with a few fields redrawn."""
    other = draw(progress())
    fields = draw(st.sets(st.sampled_from(PROGRESS_FIELDS), max_size=2))
    changed = {**base, **{f: other[f] for f in fields}}
    if "completed_chapters" in fields:
        changed["chapters_completed"] = other["chapters_completed"]
    return changed


@dataclass(frozen=True)
class Dataset:
    backend: pd.DataFrame
    reasons: pd.Series
    checks: pd.Series | None
    local: pd.DataFrame
    quarantined: pd.DataFrame
    foreign: pd.DataFrame


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=[*KEY, *PROGRESS_FIELDS])
    for c in ("chapters_completed", "total_chapters", "total_watch_time"):
        out[c] = out[c].astype("Int64")
    out["certificate_earned"] = out["certificate_earned"].astype(bool)
    for c in TIMESTAMP_COLUMNS:
        out[c] = pd.to_datetime(out[c], utc=True).astype("datetime64[ns, UTC]")
    return out


def _keys(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=list(KEY), dtype=object)


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    """Backend rows (now and then two for a key), local records (1 to 3 a key), rejections."""
    key = st.tuples(st.sampled_from(USERS), st.sampled_from(TUTORIALS))
    backend_rows: list[dict[str, Any]] = []
    local_rows: list[dict[str, Any]] = []
    for user, tutorial in draw(st.lists(key, unique=True, max_size=10)):
        ident = {"user_id": user, "tutorial_id": tutorial}
        kind = draw(st.sampled_from(("both", "both", "both", "backend", "local")))
        base = draw(progress())
        if kind != "local":
            for _ in range(draw(st.sampled_from((1, 1, 1, 1, 2)))):
                backend_rows.append({**ident, **draw(near(base))})
        if kind != "backend":
            for _ in range(draw(st.integers(1, 3))):
                local_rows.append({**ident, **draw(near(base))})
    backend = _frame(backend_rows)
    backend["id"] = pd.array(range(1, len(backend) + 1), dtype="Int64")
    reasons = pd.Series(
        [draw(st.sampled_from(("", "", "", "", "", "completion 120"))) for _ in backend_rows],
        index=backend.index,
        dtype=object,
    )
    checks = draw(st.none() | st.just(reasons.map(lambda r: "range" if r else "")))
    extra = st.sampled_from((("u1", "t"), ("ghost", "t"), ("u2", "<b>x</b>")))
    return Dataset(
        backend,
        reasons,
        checks,
        _frame(local_rows),
        _keys(draw(st.lists(extra, max_size=3))),
        _keys(draw(st.lists(extra, max_size=3))),
    )


def count_gate(rows: pd.DataFrame) -> pd.Series:
    """A record gate in miniature: a count must match a known chapter list."""
    why = [
        f"chapters_completed {n} differs from the {len(c)} chapter ids"
        if c is not None and len(c) != n
        else ""
        for c, n in zip(rows["completed_chapters"], rows["chapters_completed"], strict=True)
    ]
    return pd.Series(why, index=rows.index, dtype=object)


def _same_frame(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    for column in KEY:  # the former code typed keys str when every key had several records
        if got[column].dtype == object and expected[column].dtype == "str":
            expected[column] = expected[column].astype(object)
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    for column in got.columns:  # assert_frame_equal lets None and NaN pass for each other
        for a, b in zip(got[column].tolist(), expected[column].tolist(), strict=True):
            assert type(a) is type(b) or (pd.isna(a) and pd.isna(b) and a is b), (column, a, b)


PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(datasets())
def test_merge_local_matches_the_per_key_merge(data: Dataset) -> None:
    _same_frame(fast_merge.merge_local(data.local), merge_local(data.local))


@PROFILE
@given(datasets(), st.booleans())
def test_build_diff_matches_the_per_key_statuses(data: Dataset, gated: bool) -> None:
    gate = count_gate if gated else None
    backend = CheckedBackend(data.backend, data.reasons, data.checks)
    got = fast_status.build_diff(
        backend,
        fast_merge.merge_local(data.local),
        quarantined=data.quarantined,
        foreign=data.foreign,
        gate=gate,
    )
    expected = build_diff(
        backend,
        merge_local(data.local),
        quarantined=data.quarantined,
        foreign=data.foreign,
        gate=gate,
    )
    if expected.empty:  # the former code typed the empty text columns float64: now str
        for column in ("status", "action", "reason", "differences"):
            expected[column] = expected[column].astype("str")
    _same_frame(got, expected)
    assert fast_status.user_totals(got) == fast_status.UserTotals(**vars(user_totals(expected)))


@PROFILE
@given(datasets())
def test_predicted_repairs_match_the_per_key_join(data: Dataset) -> None:
    diff = fast_status.build_diff(
        CheckedBackend(data.backend, data.reasons),
        fast_merge.merge_local(data.local),
        quarantined=data.quarantined,
        foreign=data.foreign,
    )
    expected = predict_repairs(diff)
    for column in (*TIMESTAMP_COLUMNS, "created_at", "updated_at"):  # the old unit varied
        expected[column] = expected[column].astype("datetime64[ns, UTC]")
    got = fast_merge.predict_repairs(diff)
    if expected.empty:
        assert got.empty and list(got.columns) == list(expected.columns)
    else:
        _same_frame(got, expected)


def test_the_reference_finds_a_difference() -> None:
    """The differential check can fail: a changed text is caught."""
    data = Dataset(
        _frame([{"user_id": "u", "tutorial_id": "t", **_plain(("a",))}]),
        pd.Series([""]),
        None,
        _frame([{"user_id": "u", "tutorial_id": "t", **_plain(("a", "b"))}]),
        _keys([]),
        _keys([]),
    )
    data.backend["id"] = pd.array([1], dtype="Int64")
    got = fast_status.build_diff(
        CheckedBackend(data.backend, data.reasons),
        fast_merge.merge_local(data.local),
        quarantined=data.quarantined,
        foreign=data.foreign,
    )
    assert got.loc[0, "differences"] == "local has 1 chapter(s) the other lacks: 'b'"
    assert got.loc[0, "status"] == Status.LOCAL_AHEAD


def _plain(chapters: tuple[str, ...]) -> dict[str, Any]:
    return {
        "completed_chapters": chapters,
        "chapters_completed": len(chapters),
        "total_chapters": 4,
        "completion_percentage": completion(len(chapters), 4),
        "quiz_scores": {},
        "total_watch_time": 0,
        "certificate_earned": False,
        **dict.fromkeys(TIMESTAMP_COLUMNS, pd.NaT),
    }
