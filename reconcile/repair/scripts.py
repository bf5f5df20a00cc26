"""Repair SQL from a diff frame: ``repair.sql``, ``rollback.sql`` and ``review.sql`` (SPEC 3, 4).

Pure: no database connection. Data never meets hand-written escaping: each batch of input
rows travels as one JSON document (``orjson``) inside one SQL string literal quoted by
psycopg (``sql.Literal(...).as_string(None)``) and is expanded on the server with
``jsonb_to_recordset``. Identifiers go through ``sql.Identifier``. The merge itself (SPEC 3)
is computed in SQL against the row as it is when the repair runs, so the script is
idempotent and never lowers progress, even on rows changed after the run read them.

The scripts run with ``psql -v ON_ERROR_STOP=1 -f`` (no meta-commands) and through
:func:`reconcile.repair.apply.apply_repair`, which runs the lines between :data:`BEGIN_LINE` and
:data:`COMMIT_LINE` in its own transaction and reads the outcome from the temporary tables
:data:`INPUT_TABLE` and :data:`RESULT_TABLE`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from string import Template
from typing import Any

import numpy as np
import orjson
import pandas as pd
from psycopg import sql

from reconcile.model import (
    ACTION_BY_STATUS,
    BACKEND_EXTRA_COLUMNS,
    PROGRESS_COLUMNS,
    PROGRESS_FIELDS,
    TIMESTAMP_COLUMNS,
    Action,
    Status,
)
from reconcile.sources.backend import qualified_table

FORMAT = "1"
BATCH_ROWS = 1000
BEGIN_LINE = "BEGIN ISOLATION LEVEL READ COMMITTED;"
COMMIT_LINE = "COMMIT;"
INPUT_TABLE = "reconcile_repair_input"
RESULT_TABLE = "reconcile_repair_result"
MERGE_TABLE = "reconcile_repair_merge"
BACKUP_PREFIX = "reconcile_backup_"
#: Outcomes recorded in :data:`RESULT_TABLE`; keys absent from it were left alone.
INSERTED, MERGED = "inserted", "merged"

#: Every column of the SPEC table, in its order (the backup restores all of them).
TABLE_COLUMNS = (BACKEND_EXTRA_COLUMNS[0], *PROGRESS_COLUMNS, *BACKEND_EXTRA_COLUMNS[1:])
#: Columns the merge may change (``total_chapters`` and ``certificate_earned`` never change).
MERGED_COLUMNS = (
    "completed_chapters",
    "chapters_completed",
    "completion_percentage",
    "quiz_scores",
    "total_watch_time",
    *TIMESTAMP_COLUMNS,
)
#: The input rows as they travel in JSON and sit in :data:`INPUT_TABLE`.
_INPUT_COLUMNS = (
    ("n", "integer"),
    ("action", "text"),
    ("user_id", "text"),
    ("tutorial_id", "text"),
    ("completed_chapters", "text[]"),
    ("chapters_completed", "integer"),
    ("total_chapters", "integer"),
    ("quiz_scores", "jsonb"),
    ("total_watch_time", "integer"),
    *((c, "timestamptz") for c in TIMESTAMP_COLUMNS),
)

_INPUT_CONSTRAINTS = {
    "n": " PRIMARY KEY",
    "action": " NOT NULL",
    "user_id": " NOT NULL",
    "tutorial_id": " NOT NULL",
}


@dataclass(frozen=True)
class RepairScripts:
    """The three SQL files of a run and how many keys each action covers."""

    repair: str
    rollback: str
    review: str
    counts: dict[str, int]  # {"insert", "merge", "review", "certificate_review"}


# --------------------------------------------------------------------------- names and text


def backup_table_name(run_id: str) -> str:
    """``reconcile_backup_<run id as [a-z0-9_]>``, at most 63 bytes (a PostgreSQL name)."""
    clean = re.sub(r"[^a-z0-9_]", "_", run_id.lower()).strip("_")
    room = 63 - len(BACKUP_PREFIX)
    if not clean or len(clean) > room:
        digest = hashlib.sha1(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        clean = f"{clean[: room - 9]}_{digest}".strip("_")
    return BACKUP_PREFIX + clean


def printable(text: str, *, ascii_only: bool = False) -> str:
    """``text`` with each non-printable (or, if asked, non-ASCII) character as ``\\uXXXX``.

    The result holds no line break of any kind, so it cannot end a ``--`` comment, and no
    terminal control character.
    """
    return "".join(
        ch if ch.isprintable() and (ch.isascii() or not ascii_only) else _u_escape(ch)
        for ch in text
    )


def show(value: object) -> str:
    """A value for people (reports, comments): JSON-quoted, every non-printable escaped."""
    return printable(json.dumps(value, ensure_ascii=False, default=str))


def target_display(schema: str, table: str) -> str:
    """The target table as it appears in the scripts' headers (compared by ``apply``)."""
    return printable(qualified_table(schema, table).as_string(None), ascii_only=True)


def read_header(text: str) -> dict[str, str]:
    """The ``-- name: value`` fields of a script's leading comment block."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        match = re.match(r"^-- ([a-z][a-z ]*[a-z]): +(.*)$", line)
        if match:
            fields.setdefault(match.group(1), match.group(2).strip())
    return fields


def _u_escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _literal(value: str) -> str:
    """A SQL string literal quoted by psycopg (``E''`` form whenever a backslash occurs)."""
    return sql.Literal(value).as_string(None).strip()


def _ident(*names: str) -> str:
    return sql.Identifier(*names).as_string(None)


def _comment_literal(value: str) -> str:
    """A SQL expression for ``value`` that is safe inside a ``--`` comment line."""
    plain = _literal(value)
    if plain.isprintable():
        return plain
    # ASCII-only JSON (DEL is the one non-printable ASCII character JSON leaves raw).
    encoded = json.dumps([value], ensure_ascii=True).replace("\x7f", "\\u007f")
    return f"({_literal(encoded)}::jsonb ->> 0)"


# --------------------------------------------------------------------------- input rows


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, dicts, arrays
        return False


def _int(value: Any) -> int | None:
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else int(value)
    return None if _missing(value) else int(value)


def _timestamps(values: pd.Series) -> list[str | None]:
    """ISO-8601 UTC text to the microsecond (PostgreSQL's precision), ``None`` for NaT."""
    stamps = pd.to_datetime(values, utc=True, errors="coerce")
    text = stamps.dt.floor("us").dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return [None if missing else t for missing, t in zip(stamps.isna(), text, strict=True)]


def _chapters(value: Any) -> list[str] | None:
    if value is None or isinstance(value, float):  # None / NaN: only a count is known
        return None
    return sorted({c if isinstance(c, str) else str(c) for c in value if not _missing_id(c)})


def _missing_id(value: Any) -> bool:
    return not isinstance(value, str) and _missing(value)


def _scores(value: Any) -> dict[str, int | float]:
    out: dict[str, int | float] = {}
    for quiz, score in (value or {}).items():
        try:
            number = float(score)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[str(quiz)] = int(number) if number.is_integer() else number
    return out


def _input_rows(repairs: pd.DataFrame) -> list[dict[str, Any]]:
    """The JSON-ready input rows, numbered in the frame's order."""
    column = {name: repairs[name].tolist() for name in repairs.columns}
    converters: dict[str, Any] = {
        "completed_chapters": _chapters,
        "chapters_completed": _int,
        "total_chapters": _int,
        "quiz_scores": _scores,
        "total_watch_time": _int,
        **dict.fromkeys(TIMESTAMP_COLUMNS, lambda text: text),  # text already, see _split
    }
    fields = {f: [convert(v) for v in column[f"local_{f}"]] for f, convert in converters.items()}
    return [
        {
            "n": i + 1,
            "action": str(column["action"][i]),
            "user_id": str(column["user_id"][i]),
            "tutorial_id": str(column["tutorial_id"][i]),
            **{f: values[i] for f, values in fields.items()},
        }
        for i in range(len(repairs))
    ]


def _batches(rows: list[dict[str, Any]]) -> Iterator[str]:
    """One ``INSERT ... jsonb_to_recordset`` statement per :data:`BATCH_ROWS` rows."""
    columns = ", ".join(f"{name} {kind}" for name, kind in _INPUT_COLUMNS)
    for start in range(0, len(rows), BATCH_ROWS):
        chunk = rows[start : start + BATCH_ROWS]
        document = "[\n" + ",\n".join(orjson.dumps(r).decode() for r in chunk) + "\n]"
        yield (
            f"INSERT INTO pg_temp.{INPUT_TABLE}\n"
            f"SELECT * FROM jsonb_to_recordset({_literal(document)}::jsonb)\n"
            f"    AS r({columns});\n"
        )


# --------------------------------------------------------------------------- repair.sql

_REPAIR_HEADER = """\
-- reconcile repair.sql
-- format:       $format
-- run id:       $run_id
-- target table: $target
-- backup table: $backup
-- insert:       $n_insert keys (missing_in_backend)
-- merge:        $n_merge keys (local_ahead, diverged)
-- review:       $n_review keys and $n_cert certificate claims: see review.sql (not changed here)
--
-- One transaction. It loads the keys and their merged local progress into a temporary
-- table, then:
--   1. inserts the missing keys (certificate_earned = false) and records them in the backup
--      table as "did not exist"; a key the app inserted meanwhile is merged in step 3;
--   2. locks the existing rows of the other keys (SELECT ... FOR UPDATE, in id order): no
--      concurrent change can slip between the merge, the backup and the update;
--   3. merges local progress into each row as it is now (SPEC 3): union of chapter ids,
--      per-quiz maximum, maximum watch time, chapters_completed = size of the union (never
--      lower), completion_percentage recomputed from it (never lower), earliest started_at,
--      latest last_accessed_at, completed_at kept if set; total_chapters and
--      certificate_earned never change;
--   4. backs up every row the merge changes (all columns, before the first application)
--      into the backup table, then updates those rows only (updated_at = now());
--   5. prints how many keys were inserted, merged and left unchanged.
-- Applying it again changes nothing: no row, no updated_at, no backup row.
--
-- Apply:     psql -v ON_ERROR_STOP=1 -f repair.sql "$$DATABASE_URL"
--            or: reconcile apply RUN_DIR [--dry-run]  (adds lock_timeout/statement_timeout)
-- Roll back: psql -v ON_ERROR_STOP=1 -f rollback.sql "$$DATABASE_URL"
-- The backup table stays after the run; drop it once the repair is accepted.
"""

_SETUP = """\
CREATE TEMP TABLE $input (
$columns,
    UNIQUE (user_id, tutorial_id)
) ON COMMIT DROP;
CREATE TEMP TABLE $result (
    user_id     text NOT NULL,
    tutorial_id text NOT NULL,
    outcome     text NOT NULL
) ON COMMIT DROP;
"""

_BACKUP_DDL = """\
CREATE TABLE IF NOT EXISTS $backup (
    user_id      text        NOT NULL,
    tutorial_id  text        NOT NULL,
    existed      boolean     NOT NULL,  -- false: the repair inserted this key
    original     jsonb,                 -- the whole row before the first repair (to_jsonb)
    backed_up_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, tutorial_id)
);
"""

_STEPS = """\
ANALYZE pg_temp.$input;

-- 1. Insert missing keys; record them as "did not exist" in the backup.
WITH inserted AS (
    INSERT INTO $table AS t (
           user_id, tutorial_id, completed_chapters, chapters_completed, total_chapters,
           completion_percentage, quiz_scores, total_watch_time, certificate_earned,
           started_at, completed_at, last_accessed_at)
    SELECT i.user_id, i.tutorial_id, COALESCE(i.completed_chapters, '{}'), k.n,
           i.total_chapters,
           GREATEST(0, LEAST(100, COALESCE(
               round(100.0 * k.n / NULLIF(i.total_chapters, 0), 2), 0))),
           COALESCE(i.quiz_scores, '{}'), GREATEST(0, COALESCE(i.total_watch_time, 0)), false,
           i.started_at, i.completed_at, i.last_accessed_at
      FROM pg_temp.$input AS i
     CROSS JOIN LATERAL (SELECT GREATEST(0, i.chapters_completed,
                                         cardinality(i.completed_chapters)) AS n) AS k
     WHERE i.action = 'insert'
     ORDER BY i.n
        ON CONFLICT (user_id, tutorial_id) DO NOTHING
    RETURNING t.user_id, t.tutorial_id
), recorded AS (
    INSERT INTO $backup (user_id, tutorial_id, existed)
    SELECT user_id, tutorial_id, false FROM inserted
        ON CONFLICT (user_id, tutorial_id) DO NOTHING
)
INSERT INTO pg_temp.$result (user_id, tutorial_id, outcome)
SELECT user_id, tutorial_id, '$inserted' FROM inserted;

-- 2. Lock the existing rows of the other keys, in id order.
SELECT count(*) AS locked_rows
  FROM (SELECT 1
          FROM $table AS t
          JOIN pg_temp.$input AS i ON t.user_id = i.user_id AND t.tutorial_id = i.tutorial_id
         WHERE NOT EXISTS (SELECT 1 FROM pg_temp.$result AS r
                            WHERE r.user_id = i.user_id AND r.tutorial_id = i.tutorial_id)
         ORDER BY t.id
           FOR UPDATE OF t) AS locked;

-- 3. Merge (SPEC 3) against the locked rows as they are now.
CREATE TEMP TABLE $merge ON COMMIT DROP AS
SELECT t.id, m.*,
       ROW($current) IS DISTINCT FROM ROW($merged) AS changes
  FROM pg_temp.$input AS i
  JOIN $table AS t ON t.user_id = i.user_id AND t.tutorial_id = i.tutorial_id
 CROSS JOIN LATERAL (
       SELECT CASE WHEN i.completed_chapters IS NULL
                     OR t.completed_chapters @> i.completed_chapters
                   THEN t.completed_chapters
                   ELSE ARRAY(SELECT DISTINCT u.c COLLATE "C"
                                FROM unnest(t.completed_chapters || i.completed_chapters) AS u(c)
                               ORDER BY 1)
              END AS completed_chapters
       OFFSET 0) AS c  -- OFFSET 0: compute the union once, not once per use
 CROSS JOIN LATERAL (
       SELECT GREATEST(t.chapters_completed, i.chapters_completed,
                       cardinality(c.completed_chapters)) AS chapters_completed) AS k
 CROSS JOIN LATERAL (
       SELECT c.completed_chapters,
              k.chapters_completed,
              GREATEST(t.completion_percentage,
                       LEAST(100, round(100.0 * k.chapters_completed
                                        / NULLIF(t.total_chapters, 0), 2)))
                AS completion_percentage,
              CASE WHEN jsonb_typeof(t.quiz_scores) = 'object'
                   THEN t.quiz_scores || COALESCE((
                        SELECT jsonb_object_agg(l.key, l.value)
                          FROM jsonb_each(i.quiz_scores) AS l
                         WHERE CASE WHEN t.quiz_scores -> l.key IS NULL THEN true
                                    WHEN jsonb_typeof(t.quiz_scores -> l.key) = 'number'
                                     AND jsonb_typeof(l.value) = 'number'
                                    THEN l.value::numeric > (t.quiz_scores -> l.key)::numeric
                                    ELSE false END), '{}')
                   ELSE t.quiz_scores
              END AS quiz_scores,
              GREATEST(t.total_watch_time, i.total_watch_time) AS total_watch_time,
              LEAST(t.started_at, i.started_at) AS started_at,
              COALESCE(t.completed_at, i.completed_at) AS completed_at,
              GREATEST(t.last_accessed_at, i.last_accessed_at) AS last_accessed_at) AS m
 WHERE NOT EXISTS (SELECT 1 FROM pg_temp.$result AS r
                    WHERE r.user_id = i.user_id AND r.tutorial_id = i.tutorial_id);

-- 4. Back up the rows the merge changes (the first backup of a key wins), then update them.
INSERT INTO $backup (user_id, tutorial_id, existed, original)
SELECT t.user_id, t.tutorial_id, true, to_jsonb(t)
  FROM pg_temp.$merge AS m
  JOIN $table AS t ON t.id = m.id
 WHERE m.changes
    ON CONFLICT (user_id, tutorial_id) DO NOTHING;

WITH merged AS (
    UPDATE $table AS t
       SET $assignments,
           updated_at = now()
      FROM pg_temp.$merge AS m
     WHERE t.id = m.id AND m.changes
    RETURNING t.user_id, t.tutorial_id
)
INSERT INTO pg_temp.$result (user_id, tutorial_id, outcome)
SELECT user_id, tutorial_id, '$merged_outcome' FROM merged;
"""

_SUMMARY = """\
-- 5. What happened, per planned action.
SELECT i.action AS planned, COALESCE(r.outcome, 'unchanged') AS outcome, count(*) AS keys
  FROM pg_temp.$input AS i
  LEFT JOIN pg_temp.$result AS r ON r.user_id = i.user_id AND r.tutorial_id = i.tutorial_id
 GROUP BY 1, 2
 ORDER BY 1, 2;
"""


def _repair_sql(rows: list[dict[str, Any]], names: dict[str, str], header: dict[str, Any]) -> str:
    values = {
        **names,
        **header,
        "columns": ",\n".join(
            f"    {name:<18} {kind}{_INPUT_CONSTRAINTS.get(name, '')}"
            for name, kind in _INPUT_COLUMNS
        ),
        "current": ", ".join(f"t.{c}" for c in MERGED_COLUMNS),
        "merged": ", ".join(f"m.{c}" for c in MERGED_COLUMNS),
        "assignments": ",\n           ".join(f"{c} = m.{c}" for c in MERGED_COLUMNS),
        "inserted": INSERTED,
        "merged_outcome": MERGED,
    }
    parts = [
        Template(_REPAIR_HEADER).substitute(values),
        "\nSET client_encoding = 'UTF8';\n",
        BEGIN_LINE + "\n\n",
        Template(_SETUP).substitute(values),
    ]
    if rows:
        parts.append("\n-- Input: the keys and their merged local progress.\n")
        parts.extend(_batches(rows))
        parts.append("\n" + Template(_BACKUP_DDL).substitute(values) + "\n")
        parts.append(Template(_STEPS).substitute(values))
    else:
        parts.append("\n-- Nothing to repair in this run.\n")
    parts.append("\n" + Template(_SUMMARY).substitute(values) + "\n" + COMMIT_LINE + "\n")
    return "".join(parts)


# --------------------------------------------------------------------------- rollback.sql

_ROLLBACK_HEADER = """\
-- reconcile rollback.sql
-- format:       $format
-- run id:       $run_id
-- target table: $target
-- backup table: $backup
--
-- Returns every key that repair.sql changed to its state before repair.sql was FIRST applied:
--   * rows repair.sql inserted are deleted;
--   * rows it merged get every column back (id, progress, created_at, updated_at);
--   * a merged row deleted since then is inserted again.
-- Changes made to those keys AFTER the repair (by users or the app) are LOST. Keys the
-- repair did not change are not touched. Running it twice changes nothing the second time.
-- If the backup table does not exist (repair.sql was never applied, or the backup was
-- dropped) it stops with an error and changes nothing.
--
-- Run: psql -v ON_ERROR_STOP=1 -f rollback.sql "$$DATABASE_URL"
-- The backup table is kept; once satisfied: DROP TABLE $backup;
"""

_ROLLBACK = """\
$check;

SELECT count(*) AS locked_rows
  FROM (SELECT 1
          FROM $table AS t
          JOIN $backup AS b ON t.user_id = b.user_id AND t.tutorial_id = b.tutorial_id
         ORDER BY t.id
           FOR UPDATE OF t) AS locked;

-- Rows the repair inserted.
DELETE FROM $table AS t
 USING $backup AS b
 WHERE NOT b.existed AND t.user_id = b.user_id AND t.tutorial_id = b.tutorial_id;

-- Rows the repair merged: every column from the backup.
UPDATE $table AS t
   SET ($all) = ($restored)
  FROM $backup AS b
 CROSS JOIN LATERAL jsonb_populate_record(NULL::$table, b.original) AS r
 WHERE b.existed AND t.user_id = b.user_id AND t.tutorial_id = b.tutorial_id
   AND ROW($current_all) IS DISTINCT FROM ROW($restored);

-- Merged rows deleted since the repair.
INSERT INTO $table
SELECT r.*
  FROM $backup AS b
 CROSS JOIN LATERAL jsonb_populate_record(NULL::$table, b.original) AS r
 WHERE b.existed
   AND NOT EXISTS (SELECT 1 FROM $table AS t
                    WHERE t.user_id = b.user_id AND t.tutorial_id = b.tutorial_id)
 ORDER BY r.id;
"""


def _rollback_sql(has_rows: bool, names: dict[str, str], header: dict[str, Any]) -> str:
    values = {**names, **header}
    parts = [Template(_ROLLBACK_HEADER).substitute(values), "\nSET client_encoding = 'UTF8';\n"]
    if not has_rows:
        parts.append("-- repair.sql had nothing to do in this run: nothing to roll back.\n")
        return "".join(parts)
    message = (
        f"reconcile rollback: backup table {header['backup']} does not exist: repair.sql "
        "was never applied (or its backup was dropped); nothing was rolled back"
    )
    body = (
        f"BEGIN IF to_regclass({_literal(names['backup'])}) IS NULL THEN "
        f"RAISE EXCEPTION USING MESSAGE = {_literal(message)}; END IF; END"
    )
    values["check"] = f"DO {_literal(body)}"
    values["all"] = ", ".join(TABLE_COLUMNS)
    values["restored"] = ", ".join(f"r.{c}" for c in TABLE_COLUMNS)
    values["current_all"] = ", ".join(f"t.{c}" for c in TABLE_COLUMNS)
    parts += [BEGIN_LINE, "\n\n", Template(_ROLLBACK).substitute(values), "\n", COMMIT_LINE, "\n"]
    return "".join(parts)


# --------------------------------------------------------------------------- review.sql

_REVIEW_HEADER = """\
-- reconcile review.sql
-- format:       $format
-- run id:       $run_id
-- target table: $target
-- entries:      $n_review keys to review, $n_cert certificate claims
--
-- Nothing in this file runs: every line is a comment. For each entry read the reason,
-- look at the row (and the user's local export) and, only if the suggested fix is right,
-- copy the statement without its leading "-- " and run it yourself.
-- Ids are SQL literals; an id holding line breaks or other invisible characters is written
-- as (E'["..."]'::jsonb ->> 0), which yields the exact id.
"""

_RECOMPUTE = "LEAST(100, round(100.0 * {count} / NULLIF(total_chapters, 0), 2))"
_CLAMP_QUIZ = (
    "(SELECT COALESCE(jsonb_object_agg(key, LEAST(100, GREATEST(0, value::numeric))), '{}')"
    " FROM jsonb_each(quiz_scores))"
)


def _float(value: Any) -> float | None:
    return None if _missing(value) else float(value)


def _where(row: dict[str, Any]) -> str:
    key = (
        f"user_id = {_comment_literal(str(row['user_id']))}"
        f" AND tutorial_id = {_comment_literal(str(row['tutorial_id']))}"
    )
    backend_id = _int(row.get("backend_id"))
    return key if backend_id is None else f"id = {backend_id} AND {key}"


def _update(table: str, sets: list[str], where: str) -> list[str]:
    lines = [f"UPDATE {table}", "   SET " + ",\n       ".join([*sets, "updated_at = now()"])]
    return [*"\n".join(lines).splitlines(), f" WHERE {where};"]


def _backend_fixes(row: dict[str, Any]) -> tuple[list[str], list[str]]:
    """SET clauses and notes for an invalid backend row, from its values."""
    sets: list[str] = []
    notes: list[str] = []
    watch = _int(row["backend_total_watch_time"])
    if watch is not None and watch < 0:
        sets.append("total_watch_time = 0")
        notes.append("negative total_watch_time: set it to 0")
    chapters = row["backend_completed_chapters"]
    count = _int(row["backend_chapters_completed"])
    count_sql = "chapters_completed"
    if isinstance(chapters, list | tuple) and chapters and count != len(chapters):
        sets.append("chapters_completed = cardinality(completed_chapters)")
        notes.append("chapters_completed does not match the chapter list: count the list")
        count, count_sql = len(chapters), "cardinality(completed_chapters)"
    total = _int(row["backend_total_chapters"])
    percent = _float(row["backend_completion_percentage"])
    if total is not None and total > 0 and count is not None:
        expected = min(100.0, round(100.0 * count / total, 2))
        if percent is None or abs(percent - expected) > 0.01:
            sets.append(f"completion_percentage = {_RECOMPUTE.format(count=count_sql)}")
            notes.append("completion_percentage disagrees with the chapters: recompute it")
        if count > total:
            notes.append("chapters_completed exceeds total_chapters: check the real chapter count")
    elif percent is not None and not 0 <= percent <= 100:
        sets.append(f"completion_percentage = {100 if percent > 100 else 0}")
        notes.append("completion_percentage outside 0..100: clamp it")
    scores = row["backend_quiz_scores"] or {}
    if any(not (isinstance(v, int | float) and 0 <= v <= 100) for v in scores.values()):
        sets.append(f"quiz_scores = {_CLAMP_QUIZ}")
        notes.append("a quiz score outside 0..100: clamp it")
    started, completed = row["backend_started_at"], row["backend_completed_at"]
    if not _missing(started) and not _missing(completed) and completed < started:
        notes.append("completed_at is before started_at: check the timestamps")
    return sets, notes


def _review_entry(row: dict[str, Any], table: str, *, certificate: bool) -> list[str]:
    backend_id = _int(row.get("backend_id"))
    label = "certificate claim" if certificate else str(row["status"])
    lines = [
        f"[{label}] user_id {show(str(row['user_id']))}, tutorial_id "
        f"{show(str(row['tutorial_id']))}"
        + (f", backend id {backend_id}" if backend_id is not None else ""),
    ]
    where = _where(row)
    if certificate:
        lines += [
            "reason: a local record says certificateEarned = true, the backend row does not;"
            " a repair never grants a certificate.",
            "fix: only after a person has checked that the user earned it:",
            *_update(table, ["certificate_earned = true"], f"{where} AND NOT certificate_earned"),
        ]
        return lines
    lines.append(f"reason: {printable(str(row.get('reason') or 'not given'))}")
    local_total = _int(row["local_total_chapters"])
    backend_total = _int(row["backend_total_chapters"])
    sets: list[str] = []
    if row["status"] == Status.INVALID_BACKEND.value:
        sets, notes = _backend_fixes(row)
        lines += [f"note: {n}" for n in notes]
    elif (
        row["status"] == Status.CONFLICT.value
        and local_total is not None
        and backend_total is not None
        and local_total != backend_total
        and local_total > 0
    ):
        lines.append(
            f"note: total_chapters is {backend_total} in the backend and {local_total} locally;"
            " if the local value is right, set it and recompute completion, then let the next"
            " run merge the rest"
        )
        sets = [
            f"total_chapters = {local_total}",
            "completion_percentage = "
            f"LEAST(100, round(100.0 * chapters_completed / {local_total}, 2))",
        ]
    if sets:
        lines += ["fix:", *_update(table, sets, where)]
    else:
        lines += [
            "fix: no automatic fix; compare the row with the local record:",
            f"SELECT * FROM {table} WHERE {where};",
        ]
    return lines


def _review_sql(
    reviews: list[dict[str, Any]],
    claims: list[dict[str, Any]],
    *,
    table: str,
    header: dict[str, Any],
) -> str:
    entries = [_review_entry(r, table, certificate=False) for r in reviews]
    entries += [_review_entry(r, table, certificate=True) for r in claims]
    out = [Template(_REVIEW_HEADER).substitute(header)]
    if not entries:
        out.append("\n-- Nothing to review in this run.\n")
    for lines in entries:
        out.append("\n" + "".join(f"-- {line}\n" for line in lines))
    return "".join(out)


# --------------------------------------------------------------------------- entry point


def _split(diff: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows to repair (sorted, one per key, timestamps as text), to review, and claims."""
    if diff.empty:
        return diff.iloc[0:0], [], []
    action = diff["action"].astype(str)
    expected = (
        diff["status"].astype(str).map({s.value: a.value for s, a in ACTION_BY_STATUS.items()})
    )
    writable = action.isin([Action.INSERT.value, Action.MERGE.value]) & (expected == action)
    no_total = writable & (action == Action.INSERT.value) & diff["local_total_chapters"].isna()
    wanted = ["action", "user_id", "tutorial_id", *(f"local_{f}" for f in PROGRESS_FIELDS)]
    repairs = (
        diff.loc[writable & ~no_total, wanted]
        .sort_values(["action", "user_id", "tutorial_id"], kind="stable")
        .drop_duplicates(["user_id", "tutorial_id"])
        .copy()
    )
    for column in TIMESTAMP_COLUMNS:
        repairs[f"local_{column}"] = _timestamps(repairs[f"local_{column}"])
    reviews = diff[(action == Action.REVIEW.value) & (expected == action)].to_dict("records")
    for row in diff[no_total].to_dict("records"):
        reason = f"cannot insert: total_chapters is unknown. {row.get('reason') or ''}"
        reviews.append({**row, "action": Action.REVIEW.value, "reason": reason.strip()})
    claimed = diff["certificate_claim"].map(lambda v: v is True or v is np.True_)
    return repairs, reviews, diff[claimed].to_dict("records")


def build_repair_scripts(
    diff: pd.DataFrame, *, run_id: str, schema: str, table: str
) -> RepairScripts:
    """The repair, rollback and review SQL for one run's diff frame (pure, no connection).

    Only keys whose action is ``insert`` (``missing_in_backend``) or ``merge``
    (``local_ahead``, ``diverged``) are written; quarantined, foreign and invalid records
    never reach ``repair.sql``. Conflicts, invalid backend rows, certificate claims and
    inserts that lack ``total_chapters`` go to ``review.sql`` as comments.
    """
    repairs, reviews, claims = _split(diff)
    rows = _input_rows(repairs)

    backup = backup_table_name(run_id)
    names = {
        "table": qualified_table(schema, table).as_string(None),
        "backup": _ident(schema, backup),
        "input": INPUT_TABLE,
        "result": RESULT_TABLE,
        "merge": MERGE_TABLE,
    }
    counts = {
        "insert": sum(1 for r in rows if r["action"] == Action.INSERT.value),
        "merge": sum(1 for r in rows if r["action"] == Action.MERGE.value),
        "review": len(reviews),
        "certificate_review": len(claims),
    }
    header = {
        "format": FORMAT,
        "run_id": printable(run_id, ascii_only=True),
        "target": target_display(schema, table),
        "backup": printable(names["backup"], ascii_only=True),
        "n_insert": counts["insert"],
        "n_merge": counts["merge"],
        "n_review": counts["review"],
        "n_cert": counts["certificate_review"],
    }
    return RepairScripts(
        repair=_repair_sql(rows, names, header),
        rollback=_rollback_sql(bool(rows), names, header),
        review=_review_sql(reviews, claims, table=names["table"], header=header),
        counts=counts,
    )
