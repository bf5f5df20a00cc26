"""repair.sql, rollback.sql and review.sql against a real PostgreSQL.

Diff frames are built by hand with :func:`diff_row` (every column of ``DIFF_COLUMNS``);
backend rows are inserted with psycopg parameters. ``psql`` runs the files the way the
header tells a person to, and :func:`reconcile.repair.apply.apply_repair` runs them the way
``reconcile apply`` does.
"""

from __future__ import annotations

import math
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from reconcile.config import Config
from reconcile.db import libpq_url
from reconcile.model import DIFF_COLUMNS, PROGRESS_FIELDS, TIMESTAMP_COLUMNS, Status
from reconcile.outputs.diff_file import write_diff
from reconcile.quoting import backup_table_name, read_header, target_display
from reconcile.repair.apply import apply_repair
from reconcile.repair.scripts import RepairScripts, build_repair_scripts
from reconcile.rules import completion
from reconcile.sources.backend import create_table
from reconcile.validate import records

TABLE = "tutorial_progress"
RUN_ID = "20260120T080000Z-3f9a"
BACKUP = backup_table_name(RUN_ID)
T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
HOSTILE_IDS = [
    "o'hara\"; DROP TABLE tutorial_progress; --",
    "back\\slash\\n and $$dollar$$ $tag$ ; semi",
    "line\nbreak\r\ncrlf */ /* -- \\",
    "cr\ronly*/--",
    "unicode ✓ é 日本 \U0001f600 \u2028sep\u2029 \x85nel \x7fdel \x1bESC \u202eRTL",
    ":var :'var' :\"var\" %s %(x)s {}",
    "\\copy x from program 'rm -rf /'",
]

# --------------------------------------------------------------------------- helpers


def diff_row(
    user_id: str,
    tutorial_id: str,
    status: Status | str,
    *,
    local: dict[str, Any] | None = None,
    backend: dict[str, Any] | None = None,
    backend_id: int | None = None,
    certificate_claim: bool = False,
    reason: str = "",
    failed_checks: str = "",
) -> dict[str, Any]:
    """One diff row: ``local``/``backend`` hold progress fields by their canonical names."""
    from reconcile.model import ACTION_BY_STATUS

    status = Status(status)
    row: dict[str, Any] = dict.fromkeys(DIFF_COLUMNS)
    row.update(
        user_id=user_id,
        tutorial_id=tutorial_id,
        status=status.value,
        action=ACTION_BY_STATUS[status].value,
        reason=reason,
        differences="",
        certificate_claim=certificate_claim,
        local_records=1 if local else 0,
        quarantined_records=0,
        foreign_records=0,
        backend_id=backend_id,
        failed_checks=failed_checks,
    )
    for side, values in (("local", local or {}), ("backend", backend or {})):
        for name in PROGRESS_FIELDS:
            default = pd.NaT if name in TIMESTAMP_COLUMNS else None
            value = values.get(name, default)
            if name == "completed_chapters" and isinstance(value, list):
                value = tuple(value)
            if name in TIMESTAMP_COLUMNS and value is not None and value is not pd.NaT:
                value = pd.Timestamp(value)
            row[f"{side}_{name}"] = value
    return row


def diff_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(DIFF_COLUMNS))


def progress(chapters: list[str] | None, total: int = 4, **extra: Any) -> dict[str, Any]:
    """Progress fields with a consistent count and percentage."""
    count = len(chapters) if chapters is not None else extra.pop("chapters_completed")
    values = {
        "completed_chapters": chapters,
        "chapters_completed": count,
        "total_chapters": total,
        "completion_percentage": completion(count, total),
        "quiz_scores": {},
        "total_watch_time": 60 * count,
        "certificate_earned": False,
        "started_at": None,
        "completed_at": None,
        "last_accessed_at": None,
    }
    values.update(extra)
    return values


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(libpq_url(url), autocommit=True)


def make_table(url: str, schema: str = "public", table: str = TABLE) -> None:
    with connect(url) as conn:
        create_table(conn, schema, table)


def insert_backend(url: str, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Insert ``(user_id, tutorial_id, progress)`` rows; a list of ``None`` chapters is ``{}``."""
    with connect(url) as conn:
        for user_id, tutorial_id, p in rows:
            conn.execute(
                f"INSERT INTO {TABLE} (user_id, tutorial_id, completed_chapters,"
                " chapters_completed, total_chapters, completion_percentage, quiz_scores,"
                " total_watch_time, certificate_earned, started_at, completed_at,"
                " last_accessed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    user_id,
                    tutorial_id,
                    p["completed_chapters"] or [],
                    p["chapters_completed"],
                    p["total_chapters"],
                    Decimal(str(p["completion_percentage"])),
                    Jsonb(p["quiz_scores"]),
                    p["total_watch_time"],
                    p["certificate_earned"],
                    p["started_at"],
                    p["completed_at"],
                    p["last_accessed_at"],
                ),
            )


def dump(url: str, table: str = TABLE, order: str = "id") -> list[str]:
    """Every column of every row, as PostgreSQL's own text of the row."""
    with connect(url) as conn:
        query = f'SELECT t::text FROM public."{table}" AS t ORDER BY {order}'
        return [r[0] for r in conn.execute(query)]


def rows_by_key(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    with connect(url) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        return {(r["user_id"], r["tutorial_id"]): r for r in cur.execute(f"SELECT * FROM {TABLE}")}


def relations(url: str) -> set[tuple[str, str, str]]:
    """Every table, view and sequence outside the system and temporary schemas."""
    with connect(url) as conn:
        return set(
            conn.execute(
                "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
                " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                " AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'"
            ).fetchall()
        )


def write_run(folder: Path, rows: list[dict[str, Any]], table: str = TABLE) -> Path:
    """A run folder as the pipeline writes it: the diff and its three scripts."""
    folder.mkdir(parents=True, exist_ok=True)
    write_diff(diff_frame(rows), folder / "diff.parquet")
    scripts = scripts_for(rows, table=table)
    for name in ("repair", "rollback", "review"):
        (folder / f"{name}.sql").write_text(getattr(scripts, name), encoding="utf-8")
    return folder


def psql(url: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path), libpq_url(url)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def psql_ok(url: str, path: Path) -> str:
    done = psql(url, path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def scripts_for(rows: list[dict[str, Any]], table: str = TABLE) -> RepairScripts:
    return build_repair_scripts(diff_frame(rows), run_id=RUN_ID, schema="public", table=table)


# --------------------------------------------------------------------------- pure


def test_every_status_lands_in_the_right_script() -> None:
    rows = [
        diff_row(f"u-{s.value}", "t", s, local=progress(["c1", "c2"]), backend=progress(["c1"]))
        for s in Status
    ]
    scripts = scripts_for(rows)
    assert scripts.counts == {"insert": 1, "merge": 2, "review": 2, "certificate_review": 0}
    written = {s.value for s in Status if f'"u-{s.value}"' in scripts.repair}
    assert written == {"missing_in_backend", "local_ahead", "diverged"}
    reviewed = {s.value for s in Status if f"[{s.value}]" in scripts.review}
    assert reviewed == {"conflict", "invalid_backend"}


def test_headers_say_what_a_person_needs() -> None:
    scripts = scripts_for([diff_row("u", "t", "missing_in_backend", local=progress(["c1"]))])
    header = read_header(scripts.repair)
    assert header["run id"] == RUN_ID
    assert (
        header["target table"] == target_display("public", TABLE) == '"public"."tutorial_progress"'
    )
    assert header["backup table"] == f'"public"."{BACKUP}"'
    assert header["insert"].startswith("1 ")
    assert header["merge"].startswith("0 ")
    assert "psql -v ON_ERROR_STOP=1 -f repair.sql" in scripts.repair
    assert "rollback.sql" in scripts.repair
    assert read_header(scripts.rollback)["target table"] == header["target table"]
    assert "LOST" in scripts.rollback and "does not exist" in scripts.rollback


def test_backup_table_names_are_plain_and_short() -> None:
    assert backup_table_name("20260120T080000Z-3f9a") == "reconcile_backup_20260120t080000z_3f9a"
    for weird in ("", "é", "x" * 200, 'a"; DROP TABLE t; --'):
        name = backup_table_name(weird)
        assert len(name) <= 63
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789_")


def test_huge_repairs_are_batched_into_short_statements() -> None:
    rows = [
        diff_row(f"u{i}", "t", "missing_in_backend", local=progress(["c1"])) for i in range(2500)
    ]
    repair = scripts_for(rows).repair
    assert repair.count("jsonb_to_recordset(") == 3
    assert max(len(line) for line in repair.splitlines()) < 1000


@settings(max_examples=60, deadline=None)
@given(
    user=st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00")),
    reason=st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00")),
)
@example(user="a\nb\rc*/d\u2028", reason="x\r\n-- y */")
def test_review_is_only_comments_whatever_the_ids(user: str, reason: str) -> None:
    rows = [
        diff_row(
            user,
            user,
            "conflict",
            local=progress(["c1"], total=5),
            backend=progress(["c1"]),
            backend_id=1,
            reason=reason,
        ),
        diff_row(
            user,
            "t",
            "invalid_backend",
            backend=progress(["c1"], total_watch_time=-1, completion_percentage=120),
            backend_id=2,
            reason=reason,
            certificate_claim=True,
        ),
    ]
    review = scripts_for(rows).review
    for line in review.splitlines():
        assert line == "" or line.startswith("--"), repr(line)
    assert all(line.isprintable() for line in review.splitlines())


# --------------------------------------------------------------------------- database


def test_empty_repair_is_a_valid_file_that_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    make_table(database_url)
    insert_backend(database_url, [("u", "t", progress(["c1"]))])
    before, tables = dump(database_url), relations(database_url)
    rows = [diff_row("u", "t", "in_sync", local=progress(["c1"]))]
    assert scripts_for(rows).counts == {
        "insert": 0,
        "merge": 0,
        "review": 0,
        "certificate_review": 0,
    }
    folder = write_run(tmp_path, rows)
    for name in ("repair.sql", "rollback.sql", "review.sql", "repair.sql"):
        psql_ok(database_url, folder / name)
    assert dump(database_url) == before
    assert relations(database_url) == tables


def test_merge_follows_spec_3(database_url: str, tmp_path: Path) -> None:
    make_table(database_url)
    backend = progress(
        ["c1", "c2"],
        quiz_scores={"q1": 50, "q2": 90},
        total_watch_time=300,
        started_at=T0,
        last_accessed_at=T0,
        certificate_earned=False,
    )
    insert_backend(database_url, [("u", "t", backend)])
    local = progress(
        ["c3", "c1"],
        total=99,
        quiz_scores={"q1": 70.5, "q2": 10, "q3": 0},
        total_watch_time=100,
        started_at=T0 - timedelta(days=3),
        completed_at=T0,
        last_accessed_at=T0 + timedelta(days=1),
        certificate_earned=True,
    )
    missing = progress(
        ["b", "a"], total=3, quiz_scores={"q": 20}, started_at=T0, certificate_earned=True
    )
    rows = [
        diff_row("u", "t", "diverged", local=local, backend=backend, certificate_claim=True),
        diff_row("new", "t", "missing_in_backend", local=missing, certificate_claim=True),
    ]
    psql_ok(database_url, write_run(tmp_path, rows) / "repair.sql")
    got = rows_by_key(database_url)
    merged = got["u", "t"]
    assert merged["completed_chapters"] == ["c1", "c2", "c3"]
    assert merged["chapters_completed"] == 3
    assert merged["total_chapters"] == 4  # the backend's, never the local 99
    assert merged["completion_percentage"] == Decimal("75.00")
    assert merged["quiz_scores"] == {"q1": 70.5, "q2": 90, "q3": 0}
    assert merged["total_watch_time"] == 300
    assert merged["started_at"] == T0 - timedelta(days=3)
    assert merged["completed_at"] == T0
    assert merged["last_accessed_at"] == T0 + timedelta(days=1)
    assert merged["certificate_earned"] is False  # never granted
    inserted = got["new", "t"]
    assert inserted["completed_chapters"] == ["a", "b"]
    assert inserted["completion_percentage"] == Decimal("66.67")
    assert inserted["certificate_earned"] is False


def test_count_only_records_never_lower_the_count(database_url: str, tmp_path: Path) -> None:
    make_table(database_url)
    backend = progress(None, chapters_completed=3)  # count-only row: {} and 3
    insert_backend(database_url, [("u", "t", backend), ("v", "t", progress(["c1", "c2"]))])
    rows = [
        diff_row("u", "t", "local_ahead", local=progress(["c1"]), backend=backend),
        diff_row(
            "v",
            "t",
            "local_ahead",
            local=progress(None, chapters_completed=3),
            backend=progress(["c1", "c2"]),
        ),
    ]
    psql_ok(database_url, write_run(tmp_path, rows) / "repair.sql")
    got = rows_by_key(database_url)
    assert (got["u", "t"]["completed_chapters"], got["u", "t"]["chapters_completed"]) == (["c1"], 3)
    assert got["v", "t"]["completed_chapters"] == ["c1", "c2"]
    assert got["v", "t"]["chapters_completed"] == 3
    assert got["v", "t"]["completion_percentage"] == Decimal("75.00")


def _scenario(url: str) -> list[dict[str, Any]]:
    """A backend with three rows and a diff that inserts two keys and merges two."""
    make_table(url)
    ahead = progress(["c1"], quiz_scores={"q": 50}, last_accessed_at=T0)
    div = progress(["c1", "c2"], started_at=T0)
    insert_backend(url, [("ahead", "t", ahead), ("div", "t", div), ("sync", "t", progress(["c1"]))])
    return [
        diff_row(
            "ahead",
            "t",
            "local_ahead",
            backend=ahead,
            local=progress(["c1", "c2"], quiz_scores={"q": 60}, last_accessed_at=T0),
        ),
        diff_row("div", "t", "diverged", backend=div, local=progress(["c1", "c3"])),
        diff_row("sync", "t", "in_sync", backend=progress(["c1"]), local=progress(["c1"])),
        diff_row("new1", "t", "missing_in_backend", local=progress(["c1"])),
        diff_row("new2", "t", "missing_in_backend", local=progress(None, chapters_completed=2)),
    ]


def test_second_application_changes_nothing(database_url: str, tmp_path: Path) -> None:
    folder = write_run(tmp_path, _scenario(database_url))
    psql_ok(database_url, folder / "repair.sql")
    after_first, backup_first = dump(database_url), dump(database_url, BACKUP, "user_id")
    tables = relations(database_url)
    assert len(backup_first) == 4
    time.sleep(0.01)  # a rewrite would show in updated_at
    psql_ok(database_url, folder / "repair.sql")
    report = apply_repair(database_url, folder, dry_run=False, config=Config())
    assert (report.inserted, report.merged, report.unchanged) == (0, 0, 4)
    assert dump(database_url) == after_first
    assert dump(database_url, BACKUP, "user_id") == backup_first
    assert relations(database_url) == tables


def test_rollback_restores_the_table_exactly(database_url: str, tmp_path: Path) -> None:
    rows = _scenario(database_url)
    before, tables = dump(database_url), relations(database_url)
    folder = write_run(tmp_path, rows)
    psql_ok(database_url, folder / "repair.sql")
    assert len(dump(database_url)) == len(before) + 2
    psql_ok(database_url, folder / "repair.sql")  # a second application is still undone
    psql_ok(database_url, folder / "rollback.sql")
    assert dump(database_url) == before
    psql_ok(database_url, folder / "rollback.sql")  # twice: nothing more
    assert dump(database_url) == before
    assert relations(database_url) - tables == {("public", BACKUP, "r")}


def test_rollback_restores_a_merged_row_deleted_since(database_url: str, tmp_path: Path) -> None:
    rows = _scenario(database_url)
    before = dump(database_url)
    folder = write_run(tmp_path, rows)
    psql_ok(database_url, folder / "repair.sql")
    with connect(database_url) as conn:
        conn.execute(f"DELETE FROM {TABLE} WHERE user_id = 'div'")
    psql_ok(database_url, folder / "rollback.sql")
    assert dump(database_url) == before


def test_rollback_refuses_without_a_backup(database_url: str, tmp_path: Path) -> None:
    rows = _scenario(database_url)
    before, tables = dump(database_url), relations(database_url)
    done = psql(database_url, write_run(tmp_path, rows) / "rollback.sql")
    assert done.returncode != 0
    assert "does not exist" in done.stderr and "nothing was rolled back" in done.stderr
    assert dump(database_url) == before
    assert relations(database_url) == tables


def test_a_row_changed_after_the_run_keeps_its_newer_progress(
    database_url: str, tmp_path: Path
) -> None:
    make_table(database_url)
    seen = progress(["c1"], quiz_scores={"q1": 40}, total_watch_time=60)
    insert_backend(database_url, [("u", "t", seen)])
    local = progress(["c1", "c2"], quiz_scores={"q1": 70, "q2": 50}, total_watch_time=120)
    rows = [
        diff_row("u", "t", "local_ahead", local=local, backend=seen),
        diff_row("late", "t", "missing_in_backend", local=progress(["c1", "c2"])),
    ]
    folder = write_run(tmp_path, rows)
    # The app moves on after the run read the table: new chapter, better quiz, more time,
    # and a row for the key the run found missing.
    with connect(database_url) as conn:
        conn.execute(
            f"UPDATE {TABLE} SET completed_chapters = '{{c1,c3}}', chapters_completed = 2,"
            " completion_percentage = 50, quiz_scores = '{\"q1\": 95}', total_watch_time = 900"
        )
    insert_backend(database_url, [("late", "t", progress(["c3"], quiz_scores={"q": 1}))])
    app_rows = dump(database_url)
    psql_ok(database_url, folder / "repair.sql")
    got = rows_by_key(database_url)
    assert got["u", "t"]["completed_chapters"] == ["c1", "c2", "c3"]
    assert got["u", "t"]["chapters_completed"] == 3
    assert got["u", "t"]["completion_percentage"] == Decimal("75.00")
    assert got["u", "t"]["quiz_scores"] == {"q1": 95, "q2": 50}
    assert got["u", "t"]["total_watch_time"] == 900
    assert got["late", "t"]["completed_chapters"] == ["c1", "c2", "c3"]
    assert got["late", "t"]["quiz_scores"] == {"q": 1}
    assert len(got) == 2
    psql_ok(database_url, folder / "rollback.sql")  # back to what the app had written
    assert dump(database_url) == app_rows


def test_a_concurrent_writer_is_waited_for_and_merged(database_url: str, tmp_path: Path) -> None:
    make_table(database_url)
    seen = progress(["c1"])
    insert_backend(database_url, [("u", "t", seen)])
    folder = write_run(
        tmp_path, [diff_row("u", "t", "local_ahead", local=progress(["c1", "c2"]), backend=seen)]
    )
    with connect(database_url) as app:
        app.execute("BEGIN")
        app.execute(
            f"UPDATE {TABLE} SET completed_chapters = '{{c1,c4}}', chapters_completed = 2,"
            " total_watch_time = 999"
        )
        outcome: dict[str, Any] = {}
        worker = threading.Thread(
            target=lambda: outcome.update(
                report=apply_repair(database_url, folder, dry_run=False, config=Config())
            )
        )
        worker.start()
        time.sleep(0.5)  # the repair is now waiting for the app's row lock
        assert worker.is_alive()
        app.execute("COMMIT")
        worker.join(60)
    assert outcome["report"].merged == 1
    row = rows_by_key(database_url)["u", "t"]
    assert row["completed_chapters"] == ["c1", "c2", "c4"]
    assert row["total_watch_time"] == 999


def test_review_sql_is_a_no_op_and_its_statements_hit_the_exact_row(
    database_url: str, tmp_path: Path
) -> None:
    make_table(database_url)
    bad = progress(["c1"], total_watch_time=-5, completion_percentage=120)
    insert_backend(database_url, [(h, h, bad) for h in HOSTILE_IDS])
    ids = {k: r["id"] for k, r in rows_by_key(database_url).items()}
    rows = [
        diff_row(
            h,
            h,
            "invalid_backend",
            backend=bad,
            backend_id=ids[h, h],
            reason=h,
            failed_checks=f"{records.WATCH_TIME_RANGE};{records.COMPLETION_RANGE}",
            local=progress(["c1"], certificate_earned=True),
            certificate_claim=True,
        )
        for h in HOSTILE_IDS
    ]
    review = scripts_for(rows).review
    before, tables = dump(database_url), relations(database_url)
    path = write_run(tmp_path, rows) / "review.sql"
    psql_ok(database_url, path)
    assert dump(database_url) == before and relations(database_url) == tables
    # A person uncomments the suggested statements: they change exactly their rows.
    statements = _uncommented_statements(review)
    assert len(statements) == 2 * len(HOSTILE_IDS)
    with connect(database_url) as conn:
        for statement in statements:
            assert conn.execute(statement).rowcount == 1
    for row in rows_by_key(database_url).values():
        assert row["total_watch_time"] == 0
        assert row["completion_percentage"] == Decimal("25.00")
        assert row["certificate_earned"] is True


def _uncommented_statements(review: str) -> list[str]:
    statements: list[str] = []
    current: list[str] = []
    for line in review.splitlines():
        text = line[3:] if line.startswith("-- ") else ""
        if text.startswith("UPDATE ") or current:
            current.append(text)
            if text.endswith(";"):
                statements.append("\n".join(current))
                current = []
    return statements


# --------------------------------------------------------------------------- properties

ID_TEXT = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=12
) | st.sampled_from(HOSTILE_IDS)


def _reset(url: str) -> None:
    with connect(url) as conn:
        for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'reconcile_backup%'"
        ).fetchall():
            conn.execute(f'DROP TABLE public."{name}"')
        conn.execute(f"TRUNCATE {TABLE} RESTART IDENTITY")


@st.composite
def hostile_cases(draw: st.DrawFn) -> list[tuple[str, str, bool, list[str], list[str], dict]]:
    keys = draw(st.lists(st.tuples(ID_TEXT, ID_TEXT), min_size=1, max_size=4, unique=True))
    chapters = st.lists(ID_TEXT, max_size=4, unique=True)
    return [
        (
            user,
            tutorial,
            draw(st.booleans()),
            draw(chapters),
            draw(chapters),
            draw(st.dictionaries(ID_TEXT, st.integers(0, 100), max_size=3)),
        )
        for user, tutorial in keys
    ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cases=hostile_cases())
def test_any_text_round_trips_through_psql_and_apply(
    database_url: str,
    tmp_path: Path,
    cases: list[tuple[str, str, bool, list[str], list[str], dict]],
) -> None:
    if not relations(database_url):
        make_table(database_url)
    rows, backend, expected = [], [], {}
    for user, tutorial, exists, stored, local_chapters, quizzes in cases:
        local = progress(local_chapters, total=9, quiz_scores=quizzes)
        if exists:
            seen = progress(stored, total=9)
            backend.append((user, tutorial, seen))
            rows.append(diff_row(user, tutorial, "diverged", local=local, backend=seen))
            union = (
                stored if set(local_chapters) <= set(stored) else sorted({*stored, *local_chapters})
            )
        else:
            rows.append(diff_row(user, tutorial, "missing_in_backend", local=local))
            union = sorted(set(local_chapters))
        expected[user, tutorial] = (union, quizzes)
    folder = write_run(tmp_path / "hyp", rows)
    for runner in ("psql", "apply"):
        _reset(database_url)
        insert_backend(database_url, backend)
        tables = relations(database_url)
        if runner == "psql":
            psql_ok(database_url, folder / "repair.sql")
        else:
            apply_repair(database_url, folder, dry_run=False, config=Config())
        got = {
            k: (r["completed_chapters"], r["quiz_scores"])
            for k, r in rows_by_key(database_url).items()
        }
        assert got == expected, runner
        assert relations(database_url) - tables == {("public", BACKUP, "r")}
        assert tables <= relations(database_url)


# Reference merge of SPEC 3, written independently of the SQL.


def pg_round2(value: Fraction) -> Decimal:
    """PostgreSQL's ``round(numeric, 2)``: half away from zero."""
    scaled = math.floor(abs(value) * 100 + Fraction(1, 2))
    return (Decimal(scaled if value >= 0 else -scaled) / 100).quantize(Decimal("0.01"))


def reference_merge(backend: dict[str, Any] | None, local: dict[str, Any]) -> dict[str, Any]:
    """The row SPEC 3 says the repair leaves (``backend`` None: the row it inserts)."""
    lc = local["completed_chapters"]
    if backend is None:
        chapters = sorted(set(lc or []))
        count = max(0, local["chapters_completed"] or 0, len(chapters))
        total = local["total_chapters"]
        percent = max(Decimal(0), min(Decimal(100), pg_round2(Fraction(100 * count, total))))
        return {
            "completed_chapters": chapters,
            "chapters_completed": count,
            "total_chapters": total,
            "completion_percentage": percent,
            "quiz_scores": dict(local["quiz_scores"]),
            "total_watch_time": max(0, local["total_watch_time"]),
            "certificate_earned": False,
            "started_at": local["started_at"],
            "completed_at": local["completed_at"],
            "last_accessed_at": local["last_accessed_at"],
        }
    stored = backend["completed_chapters"]
    chapters = stored if lc is None or set(lc) <= set(stored) else sorted({*stored, *lc})
    count = max(backend["chapters_completed"], local["chapters_completed"], len(chapters))
    percent = min(Decimal(100), pg_round2(Fraction(100 * count, backend["total_chapters"])))
    quizzes = dict(backend["quiz_scores"])
    for quiz, score in local["quiz_scores"].items():
        if quiz not in quizzes or score > quizzes[quiz]:
            quizzes[quiz] = score

    def pick(f: Any, a: Any, b: Any) -> Any:
        known = [v for v in (a, b) if v is not None]
        return f(known) if known else None

    return {
        "completed_chapters": chapters,
        "chapters_completed": count,
        "total_chapters": backend["total_chapters"],
        "completion_percentage": percent,
        "quiz_scores": quizzes,
        "total_watch_time": max(backend["total_watch_time"], local["total_watch_time"]),
        "certificate_earned": backend["certificate_earned"],
        "started_at": pick(min, backend["started_at"], local["started_at"]),
        "completed_at": pick(min, backend["completed_at"], local["completed_at"]),
        "last_accessed_at": pick(max, backend["last_accessed_at"], local["last_accessed_at"]),
    }


CHAPTER = st.sampled_from(["c1", "c2", "c3", "c4", "c5", "c6"])
SCORES = st.dictionaries(
    st.sampled_from(["q1", "q2", "q3"]),
    st.sampled_from([0, 1, 12.5, 49, 50, 50.5, 99.9, 100]),
    max_size=3,
)
MOMENT = st.none() | st.sampled_from(
    [T0 + timedelta(days=d, seconds=s) for d in (-30, -1, 0, 2) for s in (0, 1)]
)


@st.composite
def progress_pairs(draw: st.DrawFn) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    backend = None
    if draw(st.booleans()):
        chapters = draw(st.lists(CHAPTER, unique=True, max_size=6))
        backend = {
            "completed_chapters": chapters,
            "chapters_completed": draw(st.sampled_from([len(chapters), draw(st.integers(0, 9))])),
            "total_chapters": draw(st.integers(1, 12)),
            "completion_percentage": draw(st.decimals(0, 100, places=2)),
            "quiz_scores": draw(SCORES),
            "total_watch_time": draw(st.integers(-10, 5000)),
            "certificate_earned": draw(st.booleans()),
            "started_at": draw(MOMENT),
            "completed_at": draw(MOMENT),
            "last_accessed_at": draw(MOMENT),
        }
    chapters = draw(st.none() | st.lists(CHAPTER, unique=True, max_size=6))
    local = {
        "completed_chapters": chapters,
        "chapters_completed": len(chapters) if chapters is not None else draw(st.integers(0, 9)),
        "total_chapters": draw(st.integers(1, 12)),
        "completion_percentage": 0.0,
        "quiz_scores": draw(SCORES),
        "total_watch_time": draw(st.integers(0, 5000)),
        "certificate_earned": draw(st.booleans()),
        "started_at": draw(MOMENT),
        "completed_at": draw(MOMENT),
        "last_accessed_at": draw(MOMENT),
    }
    if backend is not None and draw(st.booleans()):  # scores just around the backend's
        local["quiz_scores"] = {
            quiz: score + draw(st.sampled_from([-1, -0.5, 0, 0.5]))
            for quiz, score in backend["quiz_scores"].items()
        }
    return backend, local


def _assert_not_lower(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert set(before["completed_chapters"]) <= set(after["completed_chapters"])
    for name in ("chapters_completed", "total_watch_time"):
        assert after[name] >= before[name], name
    for quiz, score in before["quiz_scores"].items():
        assert after["quiz_scores"][quiz] >= score
    if before["last_accessed_at"] is not None:
        assert after["last_accessed_at"] >= before["last_accessed_at"]
    if before["completed_at"] is not None:
        assert after["completed_at"] <= before["completed_at"]
    assert after["certificate_earned"] == before["certificate_earned"]
    assert after["total_chapters"] == before["total_chapters"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=st.lists(progress_pairs(), min_size=1, max_size=6))
@example(
    pairs=[
        (
            {**progress(["c1"], quiz_scores={"q1": 50, "q2": 10}), "started_at": T0},
            progress(None, chapters_completed=3, quiz_scores={"q1": 49.5, "q2": 10.5}),
        ),
        (None, progress(None, chapters_completed=2, total=3)),
    ]
)
def test_repair_never_lowers_progress_and_equals_the_reference_merge(
    database_url: str, tmp_path: Path, pairs: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> None:
    if not relations(database_url):
        make_table(database_url)
    _reset(database_url)
    keys = [(f"u{i}", "t") for i in range(len(pairs))]
    backend_rows = [(u, t, b) for (u, t), (b, _) in zip(keys, pairs, strict=True) if b is not None]
    insert_backend(database_url, backend_rows)
    before = rows_by_key(database_url)
    rows = [
        diff_row(u, t, "missing_in_backend" if b is None else "diverged", local=loc, backend=b)
        for (u, t), (b, loc) in zip(keys, pairs, strict=True)
    ]
    folder = write_run(tmp_path / "mono", rows)
    apply_repair(database_url, folder, dry_run=False, config=Config())
    after = rows_by_key(database_url)
    assert set(after) == set(keys)
    for key, (backend, local) in zip(keys, pairs, strict=True):
        expected = reference_merge(backend, local)
        got = {name: after[key][name] for name in expected}
        assert got == expected, key
        if key in before:
            _assert_not_lower(before[key], after[key])
            fields = list(expected)
            changed = any(before[key][f] != after[key][f] for f in fields)
            assert (after[key]["updated_at"] != before[key]["updated_at"]) == changed


def test_every_rule_of_the_record_gate_has_a_review_suggestion() -> None:
    """review.sql's fixes are keyed by the gate's rules: a new rule needs its suggestion."""
    from reconcile.repair.review import FIXES

    backend_rules = set(records.RULES) - {records.KEY_PRESENT}  # a table row has its key
    assert backend_rules <= set(FIXES)
    assert set(FIXES) <= set(records.RULES)


def test_review_follows_the_rules_the_row_broke_not_its_values() -> None:
    bad = progress(["c1"], total_watch_time=-5, completion_percentage=120)
    row = diff_row(
        "u",
        "t",
        "invalid_backend",
        backend=bad,
        backend_id=1,
        failed_checks=records.COMPLETION_RANGE,
    )
    review = scripts_for([row]).review
    assert "completion_percentage = CASE WHEN total_chapters > 0" in review
    assert "total_watch_time = 0" not in review  # the gate did not say so: no second copy
