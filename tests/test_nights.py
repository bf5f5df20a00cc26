"""Night over night through the whole job on a real PostgreSQL: counts, regressions, suites."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from reconcile.cli import main
from reconcile.config import DEFAULT_EXPECTATIONS_DIR
from reconcile.db import libpq_url
from reconcile.sources.backend import create_table
from tests.sources.test_exports import export, key, progress

USERS = 100


@pytest.fixture
def clean_db(database_url: str) -> str:
    """100 users x 2 tutorials, every row valid; u000's exports match (see :func:`night`)."""
    insert_clean_rows(database_url, USERS)
    return database_url


def insert_clean_rows(url: str, users: int) -> None:
    """``users`` users x 2 tutorials (rag, agents), each row what :func:`in_sync_export` holds."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        create_table(conn, "public", "tutorial_progress")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO tutorial_progress (user_id, tutorial_id, completed_chapters,"
                " chapters_completed, total_chapters, completion_percentage, quiz_scores,"
                " total_watch_time, created_at, updated_at)"
                " VALUES (%s, %s, %s, 2, 4, 50, '{\"q1\": 70}', 600,"
                " '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z')",
                [(f"u{i:03d}", t, ["c1", "c2"]) for i in range(users) for t in ("rag", "agents")],
            )


def in_sync_export(user: str) -> dict:
    """One browser's export of ``user``, holding what the backend holds: both keys in_sync."""
    same = {"completedChapters": ["c1", "c2"], "totalChapters": 4, "completionPercentage": 50}
    unset = dict.fromkeys(("certificateEarned", "startedAt", "lastAccessedAt"))
    storage = {
        key(t, user): progress(t, user, **same, quizScores={"q1": 70}, **unset)
        for t in ("rag", "agents")
    }
    return export(user, storage)


def night(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    """One run; the exports hold u000's in-sync progress (an empty local side is an anomaly)."""
    exports = tmp_path / "exports"
    exports.mkdir(exist_ok=True)
    (exports / "u000.json").write_text(json.dumps(in_sync_export("u000")))
    code = main(
        ["run", "--database-url", url, "--exports", str(exports), "--out", str(tmp_path / "out")]
    )
    run_dir = Path(capsys.readouterr().out.strip())
    return code, json.loads((run_dir / "summary.json").read_text())


def failed(summary: dict) -> dict[str, dict]:
    return {c["name"]: c for c in summary["checks"] if not c["success"]}


def execute(url: str, statement: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(statement)


def test_a_clean_night_passes_every_check(clean_db: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, summary = night(clean_db, tmp_path, capsys)
    assert failed(summary) == {}
    assert code == 0


def test_losing_20_percent_of_rows_fails_the_count_checks(
    clean_db: str, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    assert night(clean_db, tmp_path, capsys)[0] == 0
    execute(clean_db, "DELETE FROM tutorial_progress WHERE id % 5 = 0")
    code, summary = night(clean_db, tmp_path, capsys)
    assert code == 1
    bad = failed(summary)
    assert "backend_progress.expect_table_row_count_to_be_between" in bad
    assert bad["backend.rows_vanished"]["unexpected_count"] == 2 * USERS // 5

    # The rows come back (a restore): tonight is compared with the last good night, not
    # with the failed one, and passes.
    execute(
        clean_db,
        "INSERT INTO tutorial_progress (user_id, tutorial_id, completed_chapters,"
        " chapters_completed, total_chapters, completion_percentage, quiz_scores,"
        " total_watch_time, created_at, updated_at)"
        " SELECT u, t, '{c1,c2}', 2, 4, 50, '{\"q1\": 70}', 600, '2026-01-01T00:00:00Z',"
        " '2026-01-02T00:00:00Z' FROM (SELECT format('u%s', lpad(i::text, 3, '0')) AS u"
        " FROM generate_series(0, 99) i) users, (VALUES ('rag'), ('agents')) ts(t)"
        " ON CONFLICT DO NOTHING",
    )
    code, summary = night(clean_db, tmp_path, capsys)
    assert failed(summary) == {}
    assert code == 0


def test_progress_going_backward_names_the_key(clean_db: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert night(clean_db, tmp_path, capsys)[0] == 0
    execute(
        clean_db,
        "UPDATE tutorial_progress SET completed_chapters = '{c1}', chapters_completed = 1,"
        " completion_percentage = 25 WHERE user_id = 'u042' AND tutorial_id = 'rag'",
    )
    code, summary = night(clean_db, tmp_path, capsys)
    assert code == 1
    regression = failed(summary)["backend.progress_regression"]
    assert regression["unexpected_count"] == 1
    assert "u042" in regression["details"] and "rag" in regression["details"]


@pytest.mark.parametrize("database", ["reachable", "unreachable"])
def test_a_misspelled_expectation_is_a_configuration_error(
    clean_db: str, tmp_path: Path, capsys, database: str
) -> None:  # type: ignore[no-untyped-def]
    """Exit 2 naming the file, before anything is written; even when the database is down."""
    suites = tmp_path / "suites"
    shutil.copytree(DEFAULT_EXPECTATIONS_DIR, suites)
    path = suites / "backend_progress.json"
    path.write_text(
        path.read_text().replace(
            "expect_column_values_to_be_between", "expect_column_values_to_be_betwen", 1
        )
    )
    config = tmp_path / "reconcile.toml"
    config.write_text(f'[validation]\nexpectations_dir = "{suites}"\n')
    exports = tmp_path / "exports"
    exports.mkdir()
    code = main(
        [
            "run",
            "--database-url",
            clean_db if database == "reachable" else f"postgresql://nobody@/db?host={tmp_path}",
            "--exports",
            str(exports),
            "--out",
            str(tmp_path / "out"),
            "--config",
            str(config),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "expect_column_values_to_be_betwen" in err and "backend_progress.json" in err
    assert err.count("\n") == 1
    assert not [p for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")]
