"""``review.sql``: what a person must decide, as commented-out statements with reasons.

Nothing in the file runs. Each entry names the key (ids as SQL literals that are safe in
a comment), says why it needs a person and, where a fix follows from the row, gives it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconcile.model import Status
from reconcile.quoting import as_int, comment_literal, printable, show
from reconcile.repair.templates import COMPLETION_SQL, render
from reconcile.validate import records

_CLAMP_QUIZ = (
    "(SELECT COALESCE(jsonb_object_agg(key, LEAST(100, GREATEST(0, value::numeric))), '{}')"
    " FROM jsonb_each(quiz_scores))"
)


def _where(row: dict[str, Any]) -> str:
    key = (
        f"user_id = {comment_literal(str(row['user_id']))}"
        f" AND tutorial_id = {comment_literal(str(row['tutorial_id']))}"
    )
    backend_id = as_int(row.get("backend_id"))
    return key if backend_id is None else f"id = {backend_id} AND {key}"


def _update(table: str, sets: list[str], where: str) -> list[str]:
    lines = [f"UPDATE {table}", "   SET " + ",\n       ".join([*sets, "updated_at = now()"])]
    return [*"\n".join(lines).splitlines(), f" WHERE {where};"]


def _recompute(count: str) -> str:
    return COMPLETION_SQL.format(total="total_chapters", count=count)


_COUNT_LIST = "cardinality(completed_chapters)"
_SET_COUNT = f"chapters_completed = {_COUNT_LIST}"


def _watch_fix(row: dict[str, Any]) -> Fix:
    watch = as_int(row["backend_total_watch_time"])
    if watch is not None and watch < 0:
        return ["total_watch_time = 0"], "negative total_watch_time: set it to 0"
    return [], "total_watch_time is beyond the configured cap: check the client that wrote it"


def _completion_fix(row: dict[str, Any]) -> Fix:
    return [f"completion_percentage = {_recompute('chapters_completed')}"], (
        "completion_percentage outside 0..100: recompute it from the chapters"
    )


def _count_fix(row: dict[str, Any]) -> Fix:
    chapters = row["backend_completed_chapters"]
    if isinstance(chapters, list | tuple) and chapters:
        return [_SET_COUNT, _RECOMPUTED_FROM_LIST], "count the chapter list, recompute completion"
    return [], "chapters_completed is negative and no chapter list is known: check the row"


def _note(text: str) -> Callable[[dict[str, Any]], Fix]:
    return lambda row: ([], text)


Fix = tuple[list[str], str]
_RECOMPUTED_FROM_LIST = f"completion_percentage = {_recompute(_COUNT_LIST)}"

#: A suggestion per rule of the record gate (:mod:`reconcile.validate.records`): the
#: rules a backend row broke (``failed_checks`` in the diff) decide what review.sql says.
FIXES: dict[str, Callable[[dict[str, Any]], Fix]] = {
    records.UNIQUE_KEY: _note(
        "several rows hold this key: keep the one with the most progress, delete the others"
    ),
    records.COMPLETION_RANGE: _completion_fix,
    records.QUIZ_RANGE: lambda row: (
        [f"quiz_scores = {_CLAMP_QUIZ}"],
        "a quiz score outside 0..100: clamp it",
    ),
    records.WATCH_TIME_RANGE: _watch_fix,
    records.TOTAL_POSITIVE: _note("total_chapters is not positive: set the tutorial's real count"),
    records.COMPLETED_NONNEGATIVE: _count_fix,
    records.COMPLETED_LE_TOTAL: _note(
        "chapters_completed exceeds total_chapters: check the tutorial's real chapter count"
    ),
    records.COMPLETED_MATCHES_LIST: lambda row: (
        [_SET_COUNT, _RECOMPUTED_FROM_LIST],
        "chapters_completed does not match the chapter list: count the list, recompute completion",
    ),
    records.NOT_IN_FUTURE: _note("a timestamp lies in the future: check the client's clock"),
    records.STARTED_LE_COMPLETED: _note("completed_at is before started_at: check the timestamps"),
    records.UPDATED_GE_CREATED: _note("updated_at is before created_at: check the timestamps"),
    records.CERTIFICATE_NEEDS_COMPLETION: _note(
        "a certificate below 100 % completion: check that the user earned it"
    ),
}


def _backend_fixes(row: dict[str, Any]) -> tuple[list[str], list[str]]:
    """SET clauses and notes for an invalid backend row, one per rule it broke."""
    sets: list[str] = []
    notes: list[str] = []
    for rule in str(row.get("failed_checks") or "").split(";"):
        fix = FIXES.get(rule.strip())
        if fix is None:
            continue
        clauses, note = fix(row)
        sets += [c for c in clauses if c.split(" = ")[0] not in {s.split(" = ")[0] for s in sets}]
        notes.append(note)
    return sets, notes


def _review_entry(row: dict[str, Any], table: str, *, certificate: bool) -> list[str]:
    backend_id = as_int(row.get("backend_id"))
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
    local_total = as_int(row["local_total_chapters"])
    backend_total = as_int(row["backend_total_chapters"])
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
            + COMPLETION_SQL.format(total=local_total, count="chapters_completed"),
        ]
    if sets:
        lines += ["fix:", *_update(table, sets, where)]
    else:
        lines += [
            "fix: no automatic fix; compare the row with the local record:",
            f"SELECT * FROM {table} WHERE {where};",
        ]
    return lines


def review_sql(
    reviews: list[dict[str, Any]],
    claims: list[dict[str, Any]],
    *,
    table: str,
    header: dict[str, Any],
) -> str:
    entries = [_review_entry(r, table, certificate=False) for r in reviews]
    entries += [_review_entry(r, table, certificate=True) for r in claims]
    out = [render("review_header", header)]
    if not entries:
        out.append("\n-- Nothing to review in this run.\n")
    for lines in entries:
        out.append("\n" + "".join(f"-- {line}\n" for line in lines))
    return "".join(out)
