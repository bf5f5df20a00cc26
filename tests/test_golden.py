"""Golden files: what a run over the small documented fixture writes, byte for byte.

The run is pinned (clock and run id); only what must vary from one machine or run to the
next is normalised: stage timings, start and finish times, the test database's address
and the temporary folder. A change to the SQL scripts or ``summary.json`` fails here
with a unified diff; when the change is meant, regenerate the files and review them in
``git diff``::

    RECONCILE_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import difflib
import os
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from reconcile.config import Config
from reconcile.db import libpq_url
from reconcile.outputs.result import RunResult
from reconcile.pipeline import run_job
from tests import small_fixture

GOLDEN = Path(__file__).parent / "golden"
FILES = ("repair.sql", "review.sql", "rollback.sql", "summary.json")
UPDATE = os.environ.get("RECONCILE_UPDATE_GOLDEN") == "1"

NOW = datetime(2026, 1, 20, 8, 0, tzinfo=UTC)
RUN_ID = "20260120T080000Z-0001"

#: summary.json lines whose value varies (indentation as written: 2 spaces a level): the
#: times, and the database (an embedded server's socket and a fresh database per test, or
#: whatever RECONCILE_TEST_DATABASE_URL names; its redaction is tested in test_db.py).
_VARYING_LINES = re.compile(r'^(  "(?:started_at|finished_at)"|    "database"): ".*"(,?)$', re.M)
_TIMINGS = re.compile(r'^  "timings_seconds": \{.*?^  \}', re.M | re.S)
_SECONDS = re.compile(r"(: )\d+(?:\.\d+)?")


def normalise(name: str, data: bytes, tmp: Path) -> bytes:
    """``data`` with what varies between runs replaced by placeholders."""
    text = data.decode("utf-8").replace(str(tmp), "<tmp>")
    if name == "summary.json":
        text = _VARYING_LINES.sub(r'\1: "<varies>"\2', text)
        text = _TIMINGS.sub(lambda m: _SECONDS.sub(r"\g<1>0.0", m.group(0)), text)
    return text.encode("utf-8")


def first_difference(expected: dict[str, bytes], got: dict[str, bytes]) -> str | None:
    """A unified diff of the first file whose bytes differ, or None when all match."""
    for name in FILES:
        if expected[name] == got[name]:
            continue
        before = expected[name].decode("utf-8", "replace").splitlines(keepends=True)
        after = got[name].decode("utf-8", "replace").splitlines(keepends=True)
        diff = "".join(
            difflib.unified_diff(before, after, f"tests/golden/{name}", f"this run's {name}")
        )
        # Same text, different bytes (line endings, a trailing newline): show the reprs.
        return diff or f"{name}: {expected[name]!r:.200} != {got[name]!r:.200}"
    return None


def pin_row_times(database_url: str) -> None:
    """Give the fixture's rows fixed ``created_at`` / ``updated_at`` before :data:`NOW`
    (the table's defaults are the wall clock, which the pinned run would see as future)."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            "UPDATE tutorial_progress SET created_at = started_at, updated_at = last_accessed_at"
        )


def pinned_fixture_run(database_url: str, tmp_path: Path) -> RunResult:
    """The small fixture run at :data:`NOW` as :data:`RUN_ID`, into ``tmp_path / "out"``."""
    small_fixture.write_backend(database_url)
    pin_row_times(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    return run_job(
        database_url=database_url,
        exports=[exports],
        out=tmp_path / "out",
        config=Config(),
        now=NOW,
        run_id=RUN_ID,
    )


def test_the_fixture_run_writes_the_golden_files(database_url: str, tmp_path: Path) -> None:
    result = pinned_fixture_run(database_url, tmp_path)
    documented = Counter(c.status for c in small_fixture.CASES)
    assert {s: result.counts[s] for s in documented} == documented  # the pinned run is sound
    got = {name: normalise(name, (result.run_dir / name).read_bytes(), tmp_path) for name in FILES}
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        for name, data in got.items():
            (GOLDEN / name).write_bytes(data)
    missing = [name for name in FILES if not (GOLDEN / name).is_file()]
    assert not missing, f"no golden {missing}: run RECONCILE_UPDATE_GOLDEN=1 pytest {__file__}"
    expected = {name: (GOLDEN / name).read_bytes() for name in FILES}
    difference = first_difference(expected, got)
    if difference:
        pytest.fail(
            "the run's files differ from tests/golden/ (if meant, regenerate with "
            f"RECONCILE_UPDATE_GOLDEN=1):\n{difference}",
            pytrace=False,
        )
