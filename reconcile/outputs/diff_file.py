"""``diff.parquet`` read back with the types the run had (the inverse of writing it).

The file keeps chapter lists as Parquet lists and quiz scores as JSON text (plain types
any tool reads); :func:`read_diff` turns them back into the tuples and dicts of the
diff frame, so a run's diff can be worked on, or turned into its repair again, exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from reconcile.model import DIFF_COLUMNS


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
