"""Repair SQL from a diff frame: ``repair.sql``, ``rollback.sql`` and ``review.sql`` (SPEC 3, 4).

Pure: no database connection. The statements are the templates of ``sql/`` rendered with
psycopg's ``sql`` composition. Data never meets hand-written escaping: each batch of input
rows travels as one JSON document (``orjson``) inside one SQL literal (``sql.Literal``) and
is expanded on the server with ``jsonb_to_recordset``; names go through ``sql.Identifier``.
The merge (SPEC 3) is generated from :data:`reconcile.rules.MERGE_RULES` and computed in
SQL against the row as it is when the repair runs, so the script is idempotent and keeps
progress made after the run read the table.

The scripts run with ``psql -v ON_ERROR_STOP=1 -f`` (no meta-commands) and through
:func:`reconcile.repair.apply.apply_repair`, which runs the same statements
(:attr:`RepairScripts.statements`) in a transaction of its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
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
)
from reconcile.quoting import (
    as_int,
    backup_table_name,
    literal,
    missing,
    printable,
    qualified_table,
    target_display,
)
from reconcile.repair.review import review_sql
from reconcile.repair.templates import COMPLETION_SQL, render
from reconcile.rules import MERGE_RULES, MERGED_FIELDS, Rule

FORMAT = "2"
BATCH_ROWS = 1000
BEGIN_LINE = "BEGIN ISOLATION LEVEL READ COMMITTED;"
COMMIT_LINE = "COMMIT;"
INPUT_TABLE = "reconcile_repair_input"
RESULT_TABLE = "reconcile_repair_result"
MERGE_TABLE = "reconcile_repair_merge"
#: Outcomes recorded in :data:`RESULT_TABLE`; keys absent from it were left alone.
INSERTED, MERGED = "inserted", "merged"

#: Every column of the SPEC table, in its order (the backup restores all of them).
TABLE_COLUMNS = (BACKEND_EXTRA_COLUMNS[0], *PROGRESS_COLUMNS, *BACKEND_EXTRA_COLUMNS[1:])
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

#: The SQL of each merge rule, against the locked row ``t`` and the input row ``i``; the
#: union of chapter ids is the lateral ``c`` and the merged count the lateral ``k`` (see
#: ``sql/repair_steps.sql``). KEEP_BACKEND fields are not written at all.
_RULE_SQL: dict[Rule, str] = {
    Rule.UNION: "c.{field}",
    Rule.COUNT: "k.{field}",
    Rule.RECOMPUTE: COMPLETION_SQL.format(total="t.total_chapters", count="k.chapters_completed"),
    Rule.MAX: "GREATEST(t.{field}, i.{field})",
    Rule.MIN: "LEAST(t.{field}, i.{field})",
    Rule.PER_KEY_MAX: """CASE WHEN jsonb_typeof(t.{field}) = 'object'
                   THEN t.{field} || COALESCE((
                        SELECT jsonb_object_agg(l.key, l.value)
                          FROM jsonb_each(i.{field}) AS l
                         WHERE CASE WHEN t.{field} -> l.key IS NULL THEN true
                                    WHEN jsonb_typeof(t.{field} -> l.key) = 'number'
                                     AND jsonb_typeof(l.value) = 'number'
                                    THEN l.value::numeric > (t.{field} -> l.key)::numeric
                                    ELSE false END), '{{}}')
                   ELSE t.{field}
              END""",
}


@dataclass(frozen=True)
class RepairScripts:
    """The three SQL files of a run and how many keys each action covers.

    ``statements`` is what ``repair.sql`` runs between its ``BEGIN`` and ``COMMIT``:
    ``reconcile apply`` runs exactly this text in a transaction of its own.
    """

    repair: str
    rollback: str
    review: str
    counts: dict[str, int]  # {"insert", "merge", "review", "certificate_review"}
    statements: str = ""


def merged_columns() -> str:
    """The select list of the merge: one expression per field a repair may change."""
    return ",\n              ".join(
        sql.SQL(_RULE_SQL[MERGE_RULES[f]] + " AS {field}")
        .format(field=sql.Identifier(f))
        .as_string(None)
        for f in MERGED_FIELDS
    )


# --------------------------------------------------------------------------- input rows


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
    return not isinstance(value, str) and missing(value)


def _scores(value: Any) -> dict[str, int | float]:
    """Finite scores by quiz id, in id order (the same script whatever the dict's order)."""
    out: dict[str, int | float] = {}
    for quiz, score in sorted((value or {}).items(), key=lambda item: str(item[0])):
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
        "chapters_completed": as_int,
        "total_chapters": as_int,
        "quiz_scores": _scores,
        "total_watch_time": as_int,
        **dict.fromkeys(TIMESTAMP_COLUMNS, lambda text: text),  # text already, see _split
    }
    names = ("n", "action", "user_id", "tutorial_id", *converters)
    columns = [
        range(1, len(repairs) + 1),
        map(str, column["action"]),
        map(str, column["user_id"]),
        map(str, column["tutorial_id"]),
        *(map(convert, column[f"local_{f}"]) for f, convert in converters.items()),
    ]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _batches(rows: list[dict[str, Any]]) -> Iterator[str]:
    """One ``INSERT ... jsonb_to_recordset`` statement per :data:`BATCH_ROWS` rows."""
    columns = ", ".join(f"{name} {kind}" for name, kind in _INPUT_COLUMNS)
    for start in range(0, len(rows), BATCH_ROWS):
        chunk = rows[start : start + BATCH_ROWS]
        document = "[\n" + ",\n".join(orjson.dumps(r).decode() for r in chunk) + "\n]"
        yield render(
            "repair_input",
            {
                "input": sql.Identifier(INPUT_TABLE),
                "document": literal(document),
                "columns": columns,
            },
        )


# --------------------------------------------------------------------------- repair.sql


def _repair_sql(
    rows: list[dict[str, Any]], names: dict[str, Any], header: dict[str, Any]
) -> tuple[str, str]:
    """``repair.sql`` and the statements it runs inside its transaction."""
    values = {
        **names,
        "columns": ",\n".join(
            f"    {name:<18} {kind}{_INPUT_CONSTRAINTS.get(name, '')}"
            for name, kind in _INPUT_COLUMNS
        ),
        "current": ", ".join(f"t.{c}" for c in MERGED_FIELDS),
        "merged": ", ".join(f"m.{c}" for c in MERGED_FIELDS),
        "assignments": ",\n           ".join(f"{c} = m.{c}" for c in MERGED_FIELDS),
        "merged_columns": merged_columns(),
        "insert_completion": COMPLETION_SQL.format(total="i.total_chapters", count="k.n"),
        "inserted": INSERTED,
        "merged_outcome": MERGED,
    }
    body = [render("repair_setup", values)]
    if rows:
        body.append("\n-- Input: the keys and their merged local progress.\n")
        body.extend(_batches(rows))
        body.append("\n" + render("repair_backup_table", values) + "\n")
        body.append(render("repair_steps", values))
    else:
        body.append("\n-- Nothing to repair in this run.\n")
    body.append("\n" + render("repair_outcome", values) + "\n")
    statements = "".join(body)
    text = "".join(
        [
            render("repair_header", header),
            "\nSET client_encoding = 'UTF8';\n",
            BEGIN_LINE + "\n\n",
            statements,
            COMMIT_LINE + "\n",
        ]
    )
    return text, statements


# --------------------------------------------------------------------------- rollback.sql


def _rollback_sql(has_rows: bool, names: dict[str, Any], header: dict[str, Any]) -> str:
    parts = [render("rollback_header", header), "\nSET client_encoding = 'UTF8';\n"]
    if not has_rows:
        parts.append("-- repair.sql had nothing to do in this run: nothing to roll back.\n")
        return "".join(parts)
    message = (
        f"reconcile rollback: backup table {header['backup']} does not exist: repair.sql "
        "was never applied (or its backup was dropped); nothing was rolled back"
    )
    backup = names["backup"].as_string(None)
    body = (
        f"BEGIN IF to_regclass({literal(backup)}) IS NULL THEN "
        f"RAISE EXCEPTION USING MESSAGE = {literal(message)}; END IF; END"
    )
    values = {
        **names,
        "check": f"DO {literal(body)}",
        "all": ", ".join(TABLE_COLUMNS),
        "restored": ", ".join(f"r.{c}" for c in TABLE_COLUMNS),
        "current_all": ", ".join(f"t.{c}" for c in TABLE_COLUMNS),
    }
    parts += [BEGIN_LINE, "\n\n", render("rollback_steps", values), "\n", COMMIT_LINE, "\n"]
    return "".join(parts)


# --------------------------------------------------------------------------- entry point


def _split(diff: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows to repair (sorted, one per key, timestamps as text), to review, and claims."""
    if diff.empty:
        return diff.iloc[0:0], [], []
    action = diff["action"].astype(str)
    status = diff["status"].astype(str)
    # The action matches the status's (ACTION_BY_STATUS), per action: no per-key mapping.
    expected = {
        a: action.eq(a.value)
        & status.isin([s.value for s, x in ACTION_BY_STATUS.items() if x == a])
        for a in Action
    }
    writable = expected[Action.INSERT] | expected[Action.MERGE]
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
    reviews = diff[expected[Action.REVIEW]].to_dict("records")
    for row in diff[no_total].to_dict("records"):
        reason = f"cannot insert: total_chapters is unknown. {row.get('reason') or ''}"
        reviews.append({**row, "action": Action.REVIEW.value, "reason": reason.strip()})
    claim = diff["certificate_claim"]
    # Only a real True claims (not 1, "yes" or NA): a bool column is that as it stands.
    claimed = claim if claim.dtype == bool else claim.map(lambda v: v is True or v is np.True_)
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

    names = {
        "table": qualified_table(schema, table),
        "backup": sql.Identifier(schema, backup_table_name(run_id)),
        "input": sql.Identifier(INPUT_TABLE),
        "result": sql.Identifier(RESULT_TABLE),
        "merge": sql.Identifier(MERGE_TABLE),
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
        "backup": printable(names["backup"].as_string(None), ascii_only=True),
        "n_insert": counts["insert"],
        "n_merge": counts["merge"],
        "n_review": counts["review"],
        "n_cert": counts["certificate_review"],
    }
    repair, statements = _repair_sql(rows, names, header)
    return RepairScripts(
        repair=repair,
        rollback=_rollback_sql(bool(rows), names, header),
        review=review_sql(reviews, claims, table=names["table"].as_string(None), header=header),
        counts=counts,
        statements=statements,
    )
