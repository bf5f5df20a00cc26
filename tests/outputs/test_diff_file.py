"""``diff.parquet``'s quiz texts, made column-wise, are exactly orjson's text of each dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reconcile.model import DIFF_COLUMNS
from reconcile.outputs.diff_file import read_diff, write_diff
from reconcile.validate.nights import quiz_json
from tests.small_fixture import HOSTILE

#: Quiz dicts a hostile export can hold: quotes, markup, unicode, NaN/None scores, and
#: ids that look like the "},{" between two JSON objects (the column-wise cut must not
#: cut there).
HOSTILE_QUIZZES: list[Any] = [
    {"b": 1.5, "a": None},
    float("nan"),
    None,
    {},
    {"</script><script>alert(1)</script>": 2, HOSTILE: 0.25},
    {"é\u2028😀": float("nan"), "z": 1e-7, "y": 100},
    pd.NA,
    {"a": 1},
]
CUT_LOOKALIKE = {'q"},{x': 3, "}": 1, "{": 2}


def _expected(values: list[Any], absent: str | None) -> list[str | None]:
    sort = orjson.OPT_SORT_KEYS
    return [orjson.dumps(v, option=sort).decode() if type(v) is dict else absent for v in values]


@pytest.mark.parametrize("absent", [None, "{}"])
@pytest.mark.parametrize(
    "values",
    [
        HOSTILE_QUIZZES,
        [*HOSTILE_QUIZZES, CUT_LOOKALIKE],  # more "},{" than dicts: written one by one
        [],
        [None, float("nan")],
        [{}],
    ],
    ids=["hostile", "cut-lookalike", "empty", "no-dict", "one-empty-dict"],
)
def test_quiz_json_is_orjson_of_each_dict(values: list[Any], absent: str | None) -> None:
    text = quiz_json(pd.Series(values, dtype=object), absent=absent)
    assert text.type == pa.large_string()
    assert text.to_pylist() == _expected(values, absent)


def _diff(local: list[Any], backend: list[Any]) -> pd.DataFrame:
    frame = pd.DataFrame({c: [None] * len(local) for c in DIFF_COLUMNS})
    frame["user_id"] = [f"{HOSTILE}-{i}" for i in range(len(local))]
    frame["local_quiz_scores"] = pd.Series(local, dtype=object)
    frame["backend_quiz_scores"] = pd.Series(backend, dtype=object)
    return frame


def test_diff_file_quiz_text_round_trips(tmp_path: Path) -> None:
    local = [*HOSTILE_QUIZZES, CUT_LOOKALIKE]
    backend = list(reversed(local))
    path = tmp_path / "diff.parquet"
    write_diff(_diff(local, backend), path)

    table = pq.read_table(path)
    assert table["local_quiz_scores"].to_pylist() == _expected(local, None)
    assert table["backend_quiz_scores"].to_pylist() == _expected(backend, None)
    back = read_diff(path)
    assert back["local_quiz_scores"].tolist() == [
        orjson.loads(t) if t else None for t in _expected(local, None)
    ]


@pytest.mark.parametrize("rows", [0, 2], ids=["empty-diff", "no-quiz-dict"])
def test_quiz_columns_are_text_even_without_a_dict(tmp_path: Path, rows: int) -> None:
    """A diff with no quiz dict on a side still types the column as text, not null/double."""
    path = tmp_path / "diff.parquet"
    write_diff(_diff([None] * rows, [float("nan")] * rows), path)
    schema = pq.read_schema(path)
    assert schema.field("local_quiz_scores").type == pa.large_string()
    assert schema.field("backend_quiz_scores").type == pa.large_string()
    assert len(read_diff(path)) == rows


def test_row_groups_share_one_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first group with no chapter list still types the column as a list of text."""
    from reconcile.outputs import diff_file

    monkeypatch.setattr(diff_file, "ROW_GROUP", 2)
    frame = _diff([None] * 5, [{"q": 1}] * 5)
    frame["local_completed_chapters"] = pd.Series([None, None, ("c1",), (), (HOSTILE,)])
    frame["backend_completed_chapters"] = pd.Series([None] * 4 + [("c2", "c1")])
    path = tmp_path / "diff.parquet"
    write_diff(frame, path)
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    back = read_diff(path)
    assert back["local_completed_chapters"].tolist() == [None, None, ("c1",), (), (HOSTILE,)]
    assert back["backend_completed_chapters"].tolist() == [None] * 4 + [("c2", "c1")]
    assert back["user_id"].tolist() == frame["user_id"].tolist()
