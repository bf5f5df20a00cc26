"""``diff.parquet``: the diff frame written in plain types, and read back exactly.

The file keeps chapter lists as Parquet lists and quiz scores as JSON text (plain types
any tool reads); :func:`read_diff` turns them back into the tuples and dicts of the
diff frame, so a run's diff can be worked on, or turned into its repair again, exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from reconcile.model import DIFF_COLUMNS
from reconcile.validate.nights import quiz_json


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


#: Keys a row group of ``diff.parquet``: converted and written one group at a time, so
#: writing a million keys holds one group's Arrow copy, not the whole diff's.
ROW_GROUP: Final = 131_072
#: Columns whose Arrow type cannot be told from a group that holds only None.
_TYPES: Final = {
    "user_id": pa.string(),
    "tutorial_id": pa.string(),
    "local_completed_chapters": pa.list_(pa.string()),
    "backend_completed_chapters": pa.list_(pa.string()),
}


def write_diff(diff: pd.DataFrame, path: Path) -> None:
    """Write the diff frame as ``diff.parquet`` (:func:`read_diff` reads it back).

    One schema for every row group: the first group's, with :data:`_TYPES` fixed.
    """
    first = pa.Table.from_pandas(diff_for_files(diff.iloc[:ROW_GROUP]), preserve_index=False)
    for name, kind in _TYPES.items():
        at = first.schema.get_field_index(name)
        column = first.column(at)
        if column.type != kind:  # only None so far: no type to tell
            values = (
                column.cast(kind)
                if column.null_count < len(column)
                else pa.nulls(len(column), kind)
            )
            first = first.set_column(at, first.schema.field(at).with_type(kind), values)
    schema = first.schema
    with pq.ParquetWriter(path, schema) as writer:
        writer.write_table(first, row_group_size=ROW_GROUP)
        del first
        for start in range(ROW_GROUP, len(diff), ROW_GROUP):
            group = diff_for_files(diff.iloc[start : start + ROW_GROUP])
            table = pa.Table.from_pandas(group, schema=schema, preserve_index=False)
            writer.write_table(table, row_group_size=ROW_GROUP)


def diff_for_files(diff: pd.DataFrame) -> pd.DataFrame:
    """The diff with plain column types: chapter lists as lists, quiz scores as JSON text.

    Chapter tuples stay as they are (pyarrow writes any sequence as a list), the frame is
    copied shallowly and the quiz texts are made column-wise
    (:func:`~reconcile.validate.nights.quiz_json`): on a million keys the file is not
    the point of the run.
    """
    out = diff.copy(deep=False)
    for side in ("local", "backend"):
        quizzes = f"{side}_quiz_scores"
        # pandas' "str" dtype over the Arrow text, as assigning the texts used to infer.
        text = quiz_json(out[quizzes], absent=None)
        out[quizzes] = pd.Series(pd.array(text, dtype="str"), index=out.index)
        certificate = f"{side}_certificate_earned"
        if out[certificate].dtype == object:
            out[certificate] = out[certificate].astype("boolean")
    return out
