"""The record gate: pandera models of a valid backend row and a valid local record.

A record is checked through a narrow *check frame* built from the progress frame: scalar
columns as they are, plus helper columns precomputed from the tuple and dict columns
(``chapter_list_length``, ``bad_quiz_scores``), so every rule is a vectorised pandera check.
The models below are the declarations; :func:`validate_backend` and :func:`validate_local`
add the bounds that depend on the run (the watch-time cap, "now"), validate lazily, and turn
pandera's failure cases into one row per (record, broken rule) with a sentence a person can
read, the bad value included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Annotated, Any, ClassVar, Final

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from reconcile.config import Config
from reconcile.model import BACKEND_EXTRA_COLUMNS, KEY, PROGRESS_COLUMNS, TIMESTAMP_COLUMNS

#: Columns of :attr:`RecordGate.failures`.
FAILURE_COLUMNS: Final[tuple[str, ...]] = ("row", "user_id", "tutorial_id", "check", "reason")

UtcTimestamp = Annotated[pd.DatetimeTZDtype, "ns", "UTC"]
ArrowString = Annotated[pd.StringDtype, "pyarrow", pd.NA]

# Rule names: the ``check`` column of the failures, stable across releases.
KEY_PRESENT = "key_present"
COMPLETION_RANGE = "completion_percentage_range"
QUIZ_RANGE = "quiz_scores_range"
WATCH_TIME_RANGE = "total_watch_time_range"
TOTAL_POSITIVE = "total_chapters_positive"
COMPLETED_NONNEGATIVE = "chapters_completed_nonnegative"
COMPLETED_LE_TOTAL = "chapters_completed_le_total"
COMPLETED_MATCHES_LIST = "chapters_completed_matches_list"
NOT_IN_FUTURE = "timestamp_not_in_future"
STARTED_LE_COMPLETED = "started_at_le_completed_at"
UPDATED_GE_CREATED = "updated_at_ge_created_at"
CERTIFICATE_NEEDS_COMPLETION = "certificate_requires_completion"
UNIQUE_KEY = "unique_key"

#: Every rule, in the order failures of one row are listed.
RULES: Final[tuple[str, ...]] = (
    KEY_PRESENT,
    UNIQUE_KEY,
    COMPLETION_RANGE,
    QUIZ_RANGE,
    WATCH_TIME_RANGE,
    TOTAL_POSITIVE,
    COMPLETED_NONNEGATIVE,
    COMPLETED_LE_TOTAL,
    COMPLETED_MATCHES_LIST,
    NOT_IN_FUTURE,
    STARTED_LE_COMPLETED,
    UPDATED_GE_CREATED,
    CERTIFICATE_NEEDS_COMPLETION,
)

#: Column-level checks: the rule a failure of the check frame's column stands for.
_RULE_BY_COLUMN: Final[dict[str, str]] = {
    "user_id": KEY_PRESENT,
    "tutorial_id": KEY_PRESENT,
    "completion_percentage": COMPLETION_RANGE,
    "bad_quiz_scores": QUIZ_RANGE,
    "total_watch_time": WATCH_TIME_RANGE,
    "total_chapters": TOTAL_POSITIVE,
    "chapters_completed": COMPLETED_NONNEGATIVE,
    **{c: NOT_IN_FUTURE for c in (*TIMESTAMP_COLUMNS, "created_at", "updated_at")},
}

#: pandera's name for the ``Config.unique`` check.
_PANDERA_UNIQUE: Final = "multiple_fields_uniqueness"

_BACKEND_TIMESTAMPS: Final[tuple[str, ...]] = (*TIMESTAMP_COLUMNS, "created_at", "updated_at")


@dataclass(frozen=True)
class RecordGate:
    """Which records passed, and why the others did not.

    ``valid`` is a boolean Series on the input frame's index; ``failures`` has the
    columns of :data:`FAILURE_COLUMNS`, one row per broken rule of a record (a record
    breaking two rules has two rows). ``row`` is the record's label in the input index.
    """

    valid: pd.Series
    failures: pd.DataFrame

    def reasons(self) -> pd.Series:
        """Per record (the input's index), its reasons joined by "; ", "" when it passed."""
        return self._joined("reason")

    def checks(self) -> pd.Series:
        """Per record (the input's index), the rules it broke joined by ";", "" if none."""
        return self._joined("check", ";")

    def _joined(self, column: str, sep: str = "; ") -> pd.Series:
        joined = self.failures.groupby("row", sort=False)[column].agg(sep.join)
        return joined.reindex(self.valid.index, fill_value="").astype(object)


# ---------------------------------------------------------------------------------------
# Declarations


class ProgressRecord(pa.DataFrameModel):
    """Rules every progress record obeys, local or backend.

    ``total_watch_time`` also gets ``<= config.max_watch_time_seconds`` and every timestamp
    ``<= now + config.clock_skew_seconds`` at validation time (:func:`_schema`).
    """

    user_id: Series[ArrowString] = pa.Field(nullable=False)
    tutorial_id: Series[ArrowString] = pa.Field(nullable=False)
    completion_percentage: Series[float] = pa.Field(ge=0, le=100, nullable=False)
    #: Quiz scores that are not numbers in 0..100 (helper column).
    bad_quiz_scores: Series[int] = pa.Field(eq=0)
    total_watch_time: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=False)
    total_chapters: Series[pd.Int64Dtype] = pa.Field(gt=0, nullable=False)
    chapters_completed: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=False)
    #: ``len(completed_chapters)``, NA for a count-only record (helper column).
    chapter_list_length: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    started_at: Series[UtcTimestamp] = pa.Field(nullable=True)
    completed_at: Series[UtcTimestamp] = pa.Field(nullable=True)
    last_accessed_at: Series[UtcTimestamp] = pa.Field(nullable=True)

    # Pair rules treat a missing side as passing: the column rules already report it.
    # Method names are the rule names: pandera drops ``name=`` of inherited checks.
    @pa.dataframe_check(name=COMPLETED_LE_TOTAL)
    def chapters_completed_le_total(cls, df: pd.DataFrame) -> pd.Series:
        return (df["chapters_completed"] <= df["total_chapters"]).fillna(True)

    @pa.dataframe_check(name=COMPLETED_MATCHES_LIST)
    def chapters_completed_matches_list(cls, df: pd.DataFrame) -> pd.Series:
        return (df["chapters_completed"] == df["chapter_list_length"]).fillna(True)

    @pa.dataframe_check(name=STARTED_LE_COMPLETED)
    def started_at_le_completed_at(cls, df: pd.DataFrame) -> pd.Series:
        started, completed = df["started_at"], df["completed_at"]
        return ~(started > completed)  # NaT compares False: unknown passes

    class Config:
        coerce = False
        strict = True


class LocalRecord(ProgressRecord):
    """A local record. A certificate claim is not a rejection: it becomes a review entry."""


class BackendRecord(ProgressRecord):
    """A backend row: one per key, a consistent history, no certificate below 100%."""

    # NOT NULL in the table; were one missing, the order rule below lets it pass.
    created_at: Series[UtcTimestamp] = pa.Field(nullable=True)
    updated_at: Series[UtcTimestamp] = pa.Field(nullable=True)
    certificate_earned: Series[bool]

    @pa.dataframe_check(name=UPDATED_GE_CREATED)
    def updated_at_ge_created_at(cls, df: pd.DataFrame) -> pd.Series:
        return ~(df["updated_at"] < df["created_at"])

    @pa.dataframe_check(name=CERTIFICATE_NEEDS_COMPLETION)
    def certificate_requires_completion(cls, df: pd.DataFrame) -> pd.Series:
        return ~df["certificate_earned"] | (df["completion_percentage"] == 100)

    class Config:
        # Production may lack the UNIQUE constraint: every row of a duplicated key fails.
        unique: ClassVar[list[str]] = list(KEY)


# ---------------------------------------------------------------------------------------
# Running them


def validate_backend(frame: pd.DataFrame, *, now: datetime, config: Config) -> RecordGate:
    """Check backend rows: ranges, counts, timestamps, certificates and duplicate keys."""
    _require(frame, (*PROGRESS_COLUMNS, *BACKEND_EXTRA_COLUMNS), "backend")
    checked = _check_frame(frame, _BACKEND_TIMESTAMPS, backend=True)
    return _run(BackendRecord, frame, checked, _BACKEND_TIMESTAMPS, now=now, config=config)


def validate_local(frame: pd.DataFrame, *, now: datetime, config: Config) -> RecordGate:
    """Check local records: the same ranges; a certificate claim is not checked here."""
    _require(frame, PROGRESS_COLUMNS, "local")
    checked = _check_frame(frame, TIMESTAMP_COLUMNS, backend=False)
    return _run(LocalRecord, frame, checked, TIMESTAMP_COLUMNS, now=now, config=config)


def _require(frame: pd.DataFrame, columns: Sequence[str], side: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{side} frame lacks columns {missing}")


def _check_frame(frame: pd.DataFrame, timestamps: Sequence[str], *, backend: bool) -> pd.DataFrame:
    """The columns the models check, on a RangeIndex (positions of ``frame``)."""
    index = pd.RangeIndex(len(frame))
    columns: dict[str, Any] = {
        # Arrow strings: pandera's several null checks are then free.
        "user_id": _arrow_strings(frame["user_id"]),
        "tutorial_id": _arrow_strings(frame["tutorial_id"]),
        "completion_percentage": pd.to_numeric(
            frame["completion_percentage"], errors="coerce"
        ).to_numpy(dtype="float64", na_value=np.nan),
        "bad_quiz_scores": _bad_quiz_counts(frame["quiz_scores"].tolist()),
        "total_watch_time": _int64(frame["total_watch_time"]),
        "total_chapters": _int64(frame["total_chapters"]),
        "chapters_completed": _int64(frame["chapters_completed"]),
        "chapter_list_length": pd.array(
            _chapter_list_lengths(frame["completed_chapters"]), dtype="Int64"
        ),
    }
    checked = pd.DataFrame(columns, index=index)
    checked["chapter_list_length"] = checked["chapter_list_length"].mask(
        checked["chapter_list_length"] < 0
    )
    for column in timestamps:
        checked[column] = _utc_ns(frame[column]).array
    if backend:
        checked["certificate_earned"] = frame["certificate_earned"].fillna(False).to_numpy(bool)
    return checked


def _arrow_strings(values: pd.Series) -> pd.arrays.ArrowStringArray:
    if values.dtype == "string[pyarrow]":
        return values.array
    return pd.array(values.to_numpy(dtype=object), dtype="string[pyarrow]")


def _int64(values: pd.Series) -> pd.arrays.IntegerArray:
    if isinstance(values.dtype, pd.Int64Dtype):
        return values.array
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    whole = numbers.where(np.isfinite(numbers) & (numbers == np.floor(numbers)))  # not 2.5
    return whole.astype("Float64").astype("Int64").array


def _utc_ns(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    return pd.to_datetime(values, utc=True, errors="coerce").astype("datetime64[ns, UTC]")


def _is_score(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not math.isnan(value)
        and 0 <= value <= 100
    )


def _chapter_list_lengths(chapters: pd.Series) -> np.ndarray:
    """``len(completed_chapters)``, -1 for a count-only record (None) or a non-list."""
    values = chapters.tolist()
    try:
        return np.array([-1 if c is None else len(c) for c in values], dtype=np.int64)
    except TypeError:  # NaN or another non-sequence: count it as unknown
        return np.array([len(c) if isinstance(c, tuple | list) else -1 for c in values], np.int64)


def _bad_quiz_counts(quizzes: list[Any]) -> np.ndarray:
    """Per record, how many quiz scores are not numbers in 0..100 (a non-dict counts 1)."""
    try:  # C speed while every value is a dict
        scores = list(chain.from_iterable(map(dict.values, quizzes)))
        sizes = np.fromiter(map(len, quizzes), dtype=np.int64, count=len(quizzes))
    except TypeError:
        scores = [s for q in quizzes if isinstance(q, dict) for s in q.values()]
        sizes = np.array([len(q) if isinstance(q, dict) else -1 for q in quizzes], np.int64)
    bad = np.zeros(len(quizzes), dtype=np.int64)
    if scores:
        if set(map(type, scores)) <= {float, int}:
            values = np.array(scores, dtype=np.float64)
            wrong = ~((values >= 0) & (values <= 100))  # NaN fails both
        else:  # strings, booleans, None...: the slow path, still one pass
            wrong = np.array([not _is_score(s) for s in scores], dtype=bool)
        owners = np.repeat(np.arange(len(quizzes)), np.maximum(sizes, 0))
        bad = np.bincount(owners[wrong], minlength=len(quizzes)).astype(np.int64)
    bad[sizes < 0] += 1
    return bad


def _schema(
    model: type[ProgressRecord], timestamps: Sequence[str], *, now: datetime, config: Config
) -> pa.DataFrameSchema:
    """The model's schema plus the bounds of this run."""
    schema = model.to_schema()
    latest = _latest(now, config)
    updates: dict[str, dict[str, Any]] = {
        "total_watch_time": {
            "checks": [
                *schema.columns["total_watch_time"].checks,
                pa.Check.le(config.max_watch_time_seconds),
            ]
        }
    }
    for column in timestamps:
        updates[column] = {"checks": [*schema.columns[column].checks, pa.Check.le(latest)]}
    return schema.update_columns(updates)


def _latest(now: datetime, config: Config) -> pd.Timestamp:
    stamp = pd.Timestamp(now)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp + timedelta(seconds=config.clock_skew_seconds)


def _run(
    model: type[ProgressRecord],
    frame: pd.DataFrame,
    checked: pd.DataFrame,
    timestamps: Sequence[str],
    *,
    now: datetime,
    config: Config,
) -> RecordGate:
    schema = _schema(model, timestamps, now=now, config=config)
    try:
        schema.validate(checked, lazy=True)
        cases = pd.DataFrame(columns=["column", "check", "index"])
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    hits = _rule_hits(cases)
    valid = np.ones(len(frame), dtype=bool)
    valid[hits["position"].to_numpy(dtype=np.int64)] = False
    failures = _failures(frame, checked, hits, now=now, config=config)
    return RecordGate(valid=pd.Series(valid, index=frame.index, name="valid"), failures=failures)


def _rule_hits(cases: pd.DataFrame) -> pd.DataFrame:
    """(position, rule, column) per broken rule; ``column`` only tells timestamps apart."""
    if cases["index"].isna().any():
        broken = cases.loc[cases["index"].isna(), ["column", "check", "failure_case"]]
        raise RuntimeError(
            f"record gate: schema-level failure (a bug): {broken.to_dict('records')}"
        )
    checks = cases["check"].astype(str)
    rule = checks.where(checks.isin(RULES))
    rule = rule.mask(checks == _PANDERA_UNIQUE, UNIQUE_KEY)
    rule = rule.fillna(cases["column"].map(_RULE_BY_COLUMN))
    if rule.isna().any():
        raise RuntimeError(f"record gate: unmapped pandera check {set(checks[rule.isna()])}")
    column = cases["column"].where(rule == NOT_IN_FUTURE, "").astype(str)
    hits = pd.DataFrame(
        {"position": cases["index"].astype("int64"), "rule": rule, "column": column}
    ).drop_duplicates()
    order = hits["rule"].map({r: i for i, r in enumerate(RULES)})
    within = hits["column"].map({c: i for i, c in enumerate(_BACKEND_TIMESTAMPS)}).fillna(-1)
    return (
        hits.assign(order=order, within=within)
        .sort_values(["position", "order", "within"], kind="stable")
        .reset_index(drop=True)
    )


def _failures(
    frame: pd.DataFrame,
    checked: pd.DataFrame,
    hits: pd.DataFrame,
    *,
    now: datetime,
    config: Config,
) -> pd.DataFrame:
    if hits.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FAILURE_COLUMNS})
    reasons = pd.Series("", index=hits.index, dtype=object)
    for (rule, column), group in hits.groupby(["rule", "column"], sort=False):
        positions = group["position"].to_numpy()
        broken = _Broken(frame.iloc[positions], checked.iloc[positions], str(column), now, config)
        reasons.loc[group.index] = _REASONS[str(rule)](broken)
    positions = hits["position"].to_numpy()
    return pd.DataFrame(
        {
            "row": frame.index[positions],
            "user_id": frame["user_id"].to_numpy(dtype=object)[positions],
            "tutorial_id": frame["tutorial_id"].to_numpy(dtype=object)[positions],
            "check": hits["rule"].to_numpy(dtype=object),
            "reason": reasons.to_numpy(dtype=object),
        }
    )


# ---------------------------------------------------------------------------------------
# Reasons: one sentence per (record, rule), with the value that broke it.


@dataclass(frozen=True)
class _Broken:
    """The records that broke one rule: input rows, their check-frame rows, the run."""

    original: pd.DataFrame
    checked: pd.DataFrame
    column: str  # the timestamp, for NOT_IN_FUTURE; else ""
    now: datetime
    config: Config


Explain = Callable[[_Broken], list[str]]


def _show(value: object) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return "missing"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return repr(value) if isinstance(value, str) else str(value)


def _range_reason(column: str, bounds: str) -> Explain:
    def explain(broken: _Broken) -> list[str]:
        text = bounds.format(cap=broken.config.max_watch_time_seconds)
        return [
            _out_of_range(column, value, text)
            for value in broken.original[column].to_numpy(dtype=object)
        ]

    return explain


def _out_of_range(column: str, value: Any, bounds: str) -> str:
    shown = _show(value)
    if shown in ("missing", "NaN"):
        return f"{column} is {shown}"
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return f"{column} is {shown}, not a number"
    if column != "completion_percentage" and math.isfinite(value) and value != int(value):
        return f"{column} is {shown}, not a whole number"
    return f"{column} is {shown}, must be {bounds}"


def _key_reason(broken: _Broken) -> list[str]:
    keys = broken.original[list(KEY)].to_numpy(dtype=object)
    return [
        "key is incomplete: "
        + " and ".join(f"{c} is missing" for c, v in zip(KEY, row, strict=True) if pd.isna(v))
        for row in keys
    ]


def _unique_reason(broken: _Broken) -> list[str]:
    rows = broken.checked
    sizes = rows.groupby(list(KEY), dropna=False)["user_id"].transform("size")
    return [
        f"duplicate key: {n} backend rows share (user_id, tutorial_id) = ({u!r}, {t!r})"
        for u, t, n in zip(rows["user_id"], rows["tutorial_id"], sizes, strict=True)
    ]


def _quiz_reason(broken: _Broken) -> list[str]:
    out = []
    for quiz in broken.original["quiz_scores"].to_numpy(dtype=object):
        if not isinstance(quiz, dict):
            out.append(f"quiz_scores is not an object of scores: {quiz!r}")
            continue
        bad = {k: v for k, v in quiz.items() if not _is_score(v)}
        out.append(f"quiz scores must be numbers in 0..100: {bad!r}")
    return out


def _le_total_reason(broken: _Broken) -> list[str]:
    rows = broken.checked
    return [
        f"chapters_completed {c} exceeds total_chapters {t}"
        for c, t in zip(rows["chapters_completed"], rows["total_chapters"], strict=True)
    ]


def _list_reason(broken: _Broken) -> list[str]:
    rows = broken.checked
    return [
        f"chapters_completed {c} differs from the {n} chapter ids in completed_chapters"
        for c, n in zip(rows["chapters_completed"], rows["chapter_list_length"], strict=True)
    ]


def _future_reason(broken: _Broken) -> list[str]:
    skew = broken.config.clock_skew_seconds
    run_time = _latest(broken.now, broken.config) - timedelta(seconds=skew)
    return [
        f"{broken.column} {_show(v)} is in the future "
        f"(run time {run_time.isoformat()}, clock skew allowed {skew} s)"
        for v in broken.checked[broken.column]
    ]


def _order_reason(first: str, second: str, verb: str) -> Explain:
    def explain(broken: _Broken) -> list[str]:
        rows = broken.checked
        return [
            f"{first} {_show(a)} is {verb} {second} {_show(b)}"
            for a, b in zip(rows[first], rows[second], strict=True)
        ]

    return explain


def _certificate_reason(broken: _Broken) -> list[str]:
    return [
        f"certificate_earned is true but completion_percentage is {_show(p)} (needs 100)"
        for p in broken.checked["completion_percentage"]
    ]


_REASONS: Final[dict[str, Explain]] = {
    KEY_PRESENT: _key_reason,
    UNIQUE_KEY: _unique_reason,
    COMPLETION_RANGE: _range_reason("completion_percentage", "within 0..100"),
    QUIZ_RANGE: _quiz_reason,
    WATCH_TIME_RANGE: _range_reason("total_watch_time", "within 0..{cap} seconds"),
    TOTAL_POSITIVE: _range_reason("total_chapters", "1 or more"),
    COMPLETED_NONNEGATIVE: _range_reason("chapters_completed", "0 or more"),
    COMPLETED_LE_TOTAL: _le_total_reason,
    COMPLETED_MATCHES_LIST: _list_reason,
    NOT_IN_FUTURE: _future_reason,
    STARTED_LE_COMPLETED: _order_reason("started_at", "completed_at", "after"),
    UPDATED_GE_CREATED: _order_reason("updated_at", "created_at", "before"),
    CERTIFICATE_NEEDS_COMPLETION: _certificate_reason,
}
