"""``diff.parquet``: the diff frame written in plain types, and read back exactly.

The file keeps chapter lists as Parquet lists and quiz scores as JSON text (plain types
any tool reads); :func:`read_diff` turns them back into the tuples and dicts of the
diff frame, so a run's diff can be worked on, or turned into its repair again, exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from reconcile.model import DIFF_COLUMNS, PROGRESS_FIELDS


def read_diff(path: Path) -> pd.DataFrame:
    """A run's ``diff.parquet`` as the diff frame (:data:`~reconcile.model.DIFF_COLUMNS`)."""
    diff = pd.read_parquet(path)
    for side in ("local", "backend"):
        chapters = f"{side}_completed_chapters"
        diff[chapters] = [_chapters(c) for c in diff[chapters].tolist()]
        quizzes = f"{side}_quiz_scores"
        diff[quizzes] = [orjson.loads(q) if isinstance(q, str) else None for q in diff[quizzes]]
    return diff[list(DIFF_COLUMNS)]


def _chapters(value: Any) -> tuple[str, ...] | None:
    if value is None or isinstance(value, float):  # None / NaN: a count-only record
        return None
    return tuple(str(c) for c in value)


def write_diff(diff: pd.DataFrame, path: Path) -> None:
    """Write the diff frame as ``diff.parquet`` (:func:`read_diff` reads it back)."""
    diff_for_files(diff).to_parquet(path, index=False)


def diff_for_files(diff: pd.DataFrame) -> pd.DataFrame:
    """The diff with plain column types: chapter lists as lists, quiz scores as JSON text."""
    out = diff.copy()
    for side in ("local", "backend"):
        chapters = f"{side}_completed_chapters"
        out[chapters] = [list(c) if isinstance(c, tuple) else None for c in out[chapters]]
        quizzes = f"{side}_quiz_scores"
        out[quizzes] = [_json(q) for q in out[quizzes]]
    for field in PROGRESS_FIELDS:
        for side in ("local", "backend"):
            column = f"{side}_{field}"
            if out[column].dtype == object and field == "certificate_earned":
                out[column] = out[column].astype("boolean")
    return out


def _json(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
