"""CSV files a spreadsheet opens safely: formula cells prefixed, numbers numbers, ids exact."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.config import Config
from reconcile.model import RUN_QUARANTINE_COLUMNS
from reconcile.outputs.artifacts import load_run
from reconcile.outputs.csv_safe import FORMULA_STARTS, read_csv, write_csv
from reconcile.pipeline import run_job
from tests import small_fixture

HOSTILE = [
    '=HYPERLINK("http://evil","x")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
    "\0=1",
    "'=already quoted",
    "''@twice",
    '=a,b\r\nc"d',
]
HARMLESS = ["u-42", "", "'", "'quoted", " =leading space", "a=b", "tutorial_progress_x_=y", "é"]


def _quarantine(texts: list[str]) -> pd.DataFrame:
    """A frame in the run's quarantine columns: every text column holds ``texts``."""
    n = len(texts)
    frame = pd.DataFrame({name: texts for name in RUN_QUARANTINE_COLUMNS})
    frame["line"] = pd.array([-(i + 1) if i % 3 else None for i in range(n)], dtype="Int64")
    return frame


def _cells(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _expected(text: str) -> str:
    """One more quote before a cell whose first character after any quotes starts a formula."""
    rest = text.lstrip("'")
    return "'" + text if rest and rest[0] in FORMULA_STARTS else text


@pytest.mark.parametrize("text", HOSTILE + HARMLESS)
def test_a_formula_cell_is_prefixed_and_others_are_unchanged(text: str, tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    write_csv(_quarantine([text]), path)
    (row,) = _cells(path)
    for name in RUN_QUARANTINE_COLUMNS:
        if name != "line":
            assert row[name] == _expected(text)
    if text in HOSTILE:
        assert row["key"] == "'" + text
    else:
        assert row["key"] == text


def test_numbers_stay_numbers(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    write_csv(_quarantine(HOSTILE), path)
    lines = [row["line"] for row in _cells(path)]
    assert lines == ["", "-2", "-3", "", "-5", "-6", "", "-8", "-9", ""]
    assert pd.read_csv(path)["line"].dropna().lt(0).all()


@given(texts=st.lists(st.text(), min_size=1, max_size=5))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
def test_every_cell_is_safe_and_reads_back_exactly(tmp_path: Path, texts: list[str]) -> None:
    path = tmp_path / "q.csv"  # rewritten by every example
    frame = _quarantine(texts)
    write_csv(frame, path)
    rows = _cells(path)
    assert len(rows) == len(texts)
    for row, text in zip(rows, texts, strict=True):
        cell = row["reason"]
        assert cell[:1] not in set(FORMULA_STARTS)
        assert cell == _expected(text)
    back = read_csv(path)
    assert back["reason"].tolist() == texts
    assert back["user_id"].tolist() == texts


def test_a_run_neutralises_a_hostile_id_in_quarantine_csv(
    database_url: str, tmp_path: Path
) -> None:
    """A user id and tutorial id that are formulas, in a record that is quarantined (its
    completion is 150 %): quarantine.csv prefixes them, diff.parquet and load_run keep
    them exact."""
    user, tutorial = '=HYPERLINK("http://evil","x")', "@SUM(1+1)"
    small_fixture.write_backend(database_url)
    case = small_fixture.Case(
        user,
        tutorial,
        "invalid_local",
        "a formula id, rejected for its 150 %",
        None,
        [small_fixture.row(["c1"], completion_percentage=150)],
    )
    exports = tmp_path / "exports"
    exports.mkdir()
    envelopes = small_fixture.exports([case])
    (exports / "night.json").write_text(json.dumps(envelopes), encoding="utf-8")

    result = run_job(
        database_url=database_url, exports=[exports], out=tmp_path / "o", config=Config()
    )

    rows = [r for r in _cells(result.run_dir / "quarantine.csv") if user in r["user_id"]]
    assert len(rows) == 1
    assert rows[0]["user_id"] == "'" + user
    assert rows[0]["tutorial_id"] == "'" + tutorial
    assert rows[0]["key"] == f"tutorial_progress_{tutorial}_{user}"  # starts with a letter
    assert rows[0]["line"].isdigit() or rows[0]["line"] == ""

    diff = pd.read_parquet(result.run_dir / "diff.parquet")
    assert user in set(diff["user_id"]) and tutorial in set(diff["tutorial_id"])
    quarantine = load_run(result.run_dir).quarantine
    assert user in set(quarantine["user_id"]) and tutorial in set(quarantine["tutorial_id"])
