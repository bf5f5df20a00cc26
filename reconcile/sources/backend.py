"""Read the backend ``tutorial_progress`` table into a progress frame.

One read-only REPEATABLE READ transaction, so every number of a run comes from one
snapshot. Rows travel as CSV through ``COPY ... TO STDOUT`` and are parsed by pyarrow:
about six times faster than ``pandas.read_sql`` on a million rows.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import orjson
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from reconcile.db import connect, redact
from reconcile.errors import SourceError
from reconcile.model import BACKEND_EXTRA_COLUMNS, BACKUP_PREFIX, PROGRESS_COLUMNS
from reconcile.quoting import qualified_table

log = logging.getLogger(__name__)

#: The SPEC's reference DDL (production has no CHECK constraints).
SPEC_DDL = """
CREATE TABLE {table} (
    id                    BIGSERIAL    PRIMARY KEY,
    user_id               TEXT         NOT NULL,
    tutorial_id           TEXT         NOT NULL,
    completed_chapters    TEXT[]       NOT NULL DEFAULT '{{}}',
    chapters_completed    INTEGER      NOT NULL DEFAULT 0,
    total_chapters        INTEGER      NOT NULL,
    completion_percentage NUMERIC(5,2) NOT NULL DEFAULT 0,
    quiz_scores           JSONB        NOT NULL DEFAULT '{{}}',
    total_watch_time      INTEGER      NOT NULL DEFAULT 0,
    certificate_earned    BOOLEAN      NOT NULL DEFAULT FALSE,
    started_at            TIMESTAMPTZ,
    completed_at          TIMESTAMPTZ,
    last_accessed_at      TIMESTAMPTZ,
    created_at            TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ  NOT NULL DEFAULT now(),
    UNIQUE (user_id, tutorial_id)
)
"""

_TS_COLUMNS = ("started_at", "completed_at", "last_accessed_at", "created_at", "updated_at")

# Timestamps leave the server as epoch microseconds: no time-zone text to parse.
_SELECT = """
SELECT id, user_id, tutorial_id,
       array_to_json(completed_chapters)::text AS completed_chapters,
       chapters_completed, total_chapters,
       completion_percentage::float8 AS completion_percentage,
       quiz_scores::text AS quiz_scores,
       total_watch_time, certificate_earned,
       {timestamps}
FROM {table}
"""

_ARROW_TYPES = {
    "id": pa.int64(),
    "user_id": pa.string(),
    "tutorial_id": pa.string(),
    "completed_chapters": pa.string(),
    "chapters_completed": pa.int64(),
    "total_chapters": pa.int64(),
    "completion_percentage": pa.float64(),
    "quiz_scores": pa.string(),
    "total_watch_time": pa.int64(),
    "certificate_earned": pa.bool_(),
    **{c: pa.int64() for c in _TS_COLUMNS},
}


#: Keys that a ``repair.sql`` inserted, from every backup table it left in the schema.
_REPAIR_BACKUPS = """
SELECT c.relname
  FROM pg_class AS c
  JOIN pg_namespace AS n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND starts_with(c.relname, %s)
   AND (SELECT count(*) FROM pg_attribute AS a
         WHERE a.attrelid = c.oid AND NOT a.attisdropped
           AND a.attname IN ('user_id', 'tutorial_id', 'existed')) = 3
 ORDER BY 1
"""


@dataclass(frozen=True)
class BackendLoad:
    """The backend as one snapshot saw it.

    ``frame`` is a progress frame with the backend's extra columns and
    ``inserted_by_repair``: the row's key was inserted by a reconcile ``repair.sql``
    (recorded in its backup table), so the count checks do not take the repair's own
    inserts for an anomaly.
    """

    frame: pd.DataFrame
    table: str


def create_table(conn: psycopg.Connection, schema: str, table: str) -> None:
    """Create the SPEC's ``tutorial_progress`` table (for the demo and the tests)."""
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL(SPEC_DDL).format(table=qualified_table(schema, table)))


def load_backend(url: str, schema: str, table: str) -> BackendLoad:
    """Read every row of ``schema.table`` in one read-only snapshot."""
    name = f"{schema}.{table}"
    timestamps = sql.SQL(", ").join(
        sql.SQL("floor(extract(epoch FROM {c}) * 1000000)::int8 AS {c}").format(c=sql.Identifier(c))
        for c in _TS_COLUMNS
    )
    query = sql.SQL(_SELECT).format(timestamps=timestamps, table=qualified_table(schema, table))
    copy = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(query)
    with connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        buffer = io.BytesIO()
        try:
            with conn.transaction():
                with conn.cursor().copy(copy) as stream:
                    for chunk in stream:
                        buffer.write(chunk)
                inserted = _repair_inserted(conn, schema)
        except psycopg.errors.UndefinedTable:
            raise SourceError(f"table {name} does not exist in {redact(url)}") from None
        except psycopg.errors.UndefinedColumn as exc:
            raise SourceError(
                f"table {name} lacks a SPEC column: {exc.diag.message_primary}"
            ) from None
        except psycopg.Error as exc:
            raise SourceError(f"cannot read {name}: {str(exc).strip().splitlines()[0]}") from None
    frame = _parse_csv(buffer.getvalue())
    keys = pd.MultiIndex.from_frame(frame[["user_id", "tutorial_id"]].astype(object))
    frame["inserted_by_repair"] = keys.isin(list(inserted)) if inserted else len(frame) * [False]
    log.info("backend: %d rows from %s", len(frame), name)
    return BackendLoad(frame=frame, table=name)


def _repair_inserted(conn: psycopg.Connection, schema: str) -> set[tuple[str, str]]:
    """Keys recorded as inserted (``existed = false``) in the repairs' backup tables."""
    tables = [r[0] for r in conn.execute(_REPAIR_BACKUPS, (schema, BACKUP_PREFIX))]
    if not tables:
        return set()
    query = sql.SQL(" UNION ").join(
        sql.SQL("SELECT user_id, tutorial_id FROM {} WHERE NOT existed").format(
            sql.Identifier(schema, t)
        )
        for t in tables
    )
    try:
        with conn.transaction():  # a savepoint: an odd table costs only this figure
            return {(u, t) for u, t in conn.execute(query)}
    except psycopg.Error as exc:
        log.warning("backend: cannot read the repairs' backup tables: %s", exc)
        return set()


def _parse_csv(data: bytes) -> pd.DataFrame:
    if not data:
        return empty_backend_frame()
    table = pacsv.read_csv(
        io.BytesIO(data),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=_ARROW_TYPES,
            true_values=["t"],
            false_values=["f"],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    raw = table.to_pandas()
    return _to_progress_frame(raw)


def _to_progress_frame(raw: pd.DataFrame) -> pd.DataFrame:
    counts = raw["chapters_completed"].astype("Int64")
    chapters = [
        _chapters(text, count)
        for text, count in zip(raw["completed_chapters"].tolist(), counts.tolist(), strict=True)
    ]
    quizzes = [_quizzes(text) for text in raw["quiz_scores"].tolist()]
    frame = pd.DataFrame(
        {
            "user_id": raw["user_id"].astype(object),
            "tutorial_id": raw["tutorial_id"].astype(object),
            "completed_chapters": pd.Series(chapters, dtype=object),
            "chapters_completed": counts,
            "total_chapters": raw["total_chapters"].astype("Int64"),
            "completion_percentage": raw["completion_percentage"].astype("float64"),
            "quiz_scores": pd.Series(quizzes, dtype=object),
            "total_watch_time": raw["total_watch_time"].astype("Int64"),
            "certificate_earned": raw["certificate_earned"].astype(bool),
            "id": raw["id"].astype("Int64"),
        }
    )
    for column in _TS_COLUMNS:
        frame[column] = pd.to_datetime(raw[column].astype("Int64"), unit="us", utc=True).astype(
            "datetime64[ns, UTC]"
        )
    return frame[[*PROGRESS_COLUMNS, *BACKEND_EXTRA_COLUMNS]]


def _chapters(text: str, count: object) -> tuple[str, ...] | None:
    items = orjson.loads(text) if text else None
    ids = tuple(sorted({str(i) for i in items if i is not None})) if items else ()
    if not ids and isinstance(count, int) and count > 0:
        return None  # a count-only row: the chapter list is unknown
    return ids


def _quizzes(text: str) -> dict[str, float]:
    value = orjson.loads(text) if text else {}
    if not isinstance(value, dict):
        return {"<not an object>": float("nan")}
    out: dict[str, float] = {}
    for quiz, score in value.items():
        try:
            out[str(quiz)] = float(score)
        except (TypeError, ValueError):
            out[str(quiz)] = float("nan")  # validation reports it
    return out


def empty_backend_frame() -> pd.DataFrame:
    """A zero-row backend frame with every canonical column and dtype."""
    return _to_progress_frame(
        pd.DataFrame({c: pd.Series([], dtype=_PANDAS_EMPTY.get(c, "int64")) for c in _ARROW_TYPES})
    )


_PANDAS_EMPTY = {
    "user_id": "object",
    "tutorial_id": "object",
    "completed_chapters": "object",
    "quiz_scores": "object",
    "completion_percentage": "float64",
    "certificate_earned": "bool",
}
