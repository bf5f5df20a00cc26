"""``review.sql``: what a person must decide, as commented-out statements with reasons.

Nothing in the file runs. Each entry names the key (ids as SQL literals that are safe in
a comment), says why it needs a person and, where a fix follows from the row, gives it.
"""

from __future__ import annotations

from typing import Any

from reconcile.model import Status
from reconcile.repair.quoting import as_int, comment_literal, missing, printable, show
from reconcile.repair.templates import render
from reconcile.rules import completion

_RECOMPUTE = "LEAST(100, round(100.0 * {count} / NULLIF(total_chapters, 0), 2))"
_CLAMP_QUIZ = (
    "(SELECT COALESCE(jsonb_object_agg(key, LEAST(100, GREATEST(0, value::numeric))), '{}')"
    " FROM jsonb_each(quiz_scores))"
)


def _float(value: Any) -> float | None:
    return None if missing(value) else float(value)


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


def _backend_fixes(row: dict[str, Any]) -> tuple[list[str], list[str]]:
    """SET clauses and notes for an invalid backend row, from its values."""
    sets: list[str] = []
    notes: list[str] = []
    watch = as_int(row["backend_total_watch_time"])
    if watch is not None and watch < 0:
        sets.append("total_watch_time = 0")
        notes.append("negative total_watch_time: set it to 0")
    chapters = row["backend_completed_chapters"]
    count = as_int(row["backend_chapters_completed"])
    count_sql = "chapters_completed"
    if isinstance(chapters, list | tuple) and chapters and count != len(chapters):
        sets.append("chapters_completed = cardinality(completed_chapters)")
        notes.append("chapters_completed does not match the chapter list: count the list")
        count, count_sql = len(chapters), "cardinality(completed_chapters)"
    total = as_int(row["backend_total_chapters"])
    percent = _float(row["backend_completion_percentage"])
    if total is not None and total > 0 and count is not None:
        expected = completion(count, total)
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
    if not missing(started) and not missing(completed) and completed < started:
        notes.append("completed_at is before started_at: check the timestamps")
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
