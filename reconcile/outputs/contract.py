"""The published contract of ``diff.parquet``: its columns, their types and their rules.

:class:`DiffFrame` is a pandera model of the diff as :func:`reconcile.load_run` hands it out
(``run.diff``, read by :func:`~reconcile.outputs.diff_file.read_diff`): every column of
:data:`~reconcile.model.DIFF_COLUMNS`, in that order, nothing else. A script or notebook
built on ``diff.parquet`` can pin what it relies on::

    from reconcile.outputs.contract import DiffFrame
    DiffFrame.validate(reconcile.load_run("reports").diff)

In the file itself chapter lists are Parquet lists of strings and quiz scores JSON text
(``{"quiz-1": 80.0}``), so any Parquet reader gets plain types; ``read_diff`` makes them
the tuples and dicts below. The test suite validates every run's diff against this model.

>>> import reconcile
>>> checked = DiffFrame.validate(reconcile.load_run("reports").diff)
>>> list(checked.columns[:3])
['user_id', 'tutorial_id', 'status']
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from reconcile.model import ACTION_BY_STATUS, KEY, Action, Status

UtcTimestamp = Annotated[pd.DatetimeTZDtype, "ns", "UTC"]

_CHAPTERS = ("local_completed_chapters", "backend_completed_chapters")
_QUIZZES = ("local_quiz_scores", "backend_quiz_scores")


def _is_chapters(value: Any) -> bool:
    return value is None or (isinstance(value, tuple) and all(isinstance(c, str) for c in value))


def _is_quiz(value: Any) -> bool:
    return value is None or (
        isinstance(value, dict)
        and all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in value.items()
        )
    )


class DiffFrame(pa.DataFrameModel):
    """One row per key, every key of either side (the columns of ``diff.parquet``).

    ``local_*`` is the merge of the key's valid local records, ``backend_*`` the backend
    row; a side the key lacks is NA / ``None`` throughout.
    """

    user_id: Series[str] = pa.Field(nullable=False)
    tutorial_id: Series[str] = pa.Field(nullable=False)
    #: A :class:`~reconcile.model.Status` value.
    status: Series[str] = pa.Field(isin=[s.value for s in Status])
    #: An :class:`~reconcile.model.Action` value, the one the status implies.
    action: Series[str] = pa.Field(isin=[a.value for a in Action])
    #: Why the status was chosen.
    reason: Series[str]
    #: What differs, in words.
    differences: Series[str]
    #: A local ``certificateEarned`` the backend lacks (a review entry, never a repair).
    certificate_claim: Series[bool]
    #: Valid own local records merged into ``local_*``.
    local_records: Series[int] = pa.Field(ge=0)
    #: Own local records of this key that were quarantined.
    quarantined_records: Series[int] = pa.Field(ge=0)
    #: Records of this key found in another user's export.
    foreign_records: Series[int] = pa.Field(ge=0)
    #: The backend row's id, NA when there is none.
    backend_id: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    #: Record-gate rules the backend row broke, joined by ";" ("" if none).
    failed_checks: Series[str]

    local_completed_chapters: Series[object] = pa.Field(nullable=True)
    local_chapters_completed: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    local_total_chapters: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    local_completion_percentage: Series[float] = pa.Field(nullable=True)
    local_quiz_scores: Series[object] = pa.Field(nullable=True)
    local_total_watch_time: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    local_certificate_earned: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    local_started_at: Series[UtcTimestamp] = pa.Field(nullable=True)
    local_completed_at: Series[UtcTimestamp] = pa.Field(nullable=True)
    local_last_accessed_at: Series[UtcTimestamp] = pa.Field(nullable=True)

    backend_completed_chapters: Series[object] = pa.Field(nullable=True)
    backend_chapters_completed: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    backend_total_chapters: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    backend_completion_percentage: Series[float] = pa.Field(nullable=True)
    backend_quiz_scores: Series[object] = pa.Field(nullable=True)
    backend_total_watch_time: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    backend_certificate_earned: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    backend_started_at: Series[UtcTimestamp] = pa.Field(nullable=True)
    backend_completed_at: Series[UtcTimestamp] = pa.Field(nullable=True)
    backend_last_accessed_at: Series[UtcTimestamp] = pa.Field(nullable=True)

    @pa.check(*_CHAPTERS, name="chapters_are_tuples_of_str")
    def chapters_are_tuples(cls, column: pd.Series) -> pd.Series:
        """Chapter ids: a ``tuple[str, ...]``, ``None`` for a count-only record or no side."""
        return pd.Series([_is_chapters(v) for v in column.tolist()], index=column.index)

    @pa.check(*_QUIZZES, name="quiz_scores_are_dicts")
    def quiz_scores_are_dicts(cls, column: pd.Series) -> pd.Series:
        """Quiz scores: a ``dict[str, float]`` (``{}`` when none), ``None`` for no side."""
        return pd.Series([_is_quiz(v) for v in column.tolist()], index=column.index)

    @pa.dataframe_check(name="action_follows_status")
    def action_follows_status(cls, df: pd.DataFrame) -> pd.Series:
        """The action is the one :data:`~reconcile.model.ACTION_BY_STATUS` gives the status."""
        wanted = df["status"].map({s.value: a.value for s, a in ACTION_BY_STATUS.items()})
        return df["action"] == wanted

    class Config:
        strict = True
        ordered = True
        coerce = False
        unique = list(KEY)  # noqa: RUF012
