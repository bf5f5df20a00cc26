"""Render the support report (``index.html``) from a :class:`RunResult`.

Jinja2 with autoescaping does all escaping: ids are untrusted text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from reconcile.model import ACTION_BY_STATUS, Status
from reconcile.outputs.result import STATUS_HELP, RunResult

#: Keys listed in the report at most; the full list is diff.parquet.
MAX_ROWS = 20_000

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("reconcile.outputs.report", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)
_ENV.filters["blank"] = lambda value: "" if _missing(value) else value

#: The diff columns a listed key shows (its timestamps are not boxed for nothing).
_SIDE_FIELDS = (
    "completed_chapters",
    "chapters_completed",
    "total_chapters",
    "completion_percentage",
    "quiz_scores",
    "total_watch_time",
    "certificate_earned",
)
_READ = [
    *("user_id", "tutorial_id", "status", "action", "reason", "differences"),
    *("certificate_claim", "local_records", "backend_id"),
    *(f"{side}_{f}" for side in ("local", "backend") for f in _SIDE_FIELDS),
]

_REPAIR_TEXT = {
    "insert": "insert the local progress as a new row",
    "merge": "merge: add the local chapters, better quiz scores and watch time to the row",
    "review": "a person reviews it (review.sql)",
    "none": "nothing",
}


def render_report(result: RunResult, *, docs_link: Path | None = None) -> str:
    """The self-contained HTML report of one run."""
    diff = result.diff
    # Positions of the listed keys first: only those rows are copied out of the diff.
    shown = np.flatnonzero((diff["status"] != Status.BACKEND_ONLY.value).to_numpy(dtype=bool))
    truncated = len(shown) > MAX_ROWS
    listed = diff.iloc[shown[:MAX_ROWS]][_READ]
    rows = [_row(r) for r in listed.to_dict("records")]
    statuses = [
        {
            "name": s.value,
            "count": result.counts[s.value],
            "help": STATUS_HELP[s],
            "action": ACTION_BY_STATUS[s].value,
        }
        for s in Status
    ]
    reasons = (
        result.quarantine["reason"].value_counts().head(20).items()
        if not result.quarantine.empty
        else []
    )
    return _ENV.get_template("report.html").render(
        r=result,
        summary=result.summary,
        statuses=statuses,
        rows=rows,
        truncated=truncated,
        max_rows=MAX_ROWS,
        quarantine=result.quarantine.head(500).to_dict("records"),
        quarantine_reasons=list(reasons),
        docs_link=str(docs_link) if docs_link else None,
    )


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": row["user_id"],
        "tutorial_id": row["tutorial_id"],
        "status": row["status"],
        "repair": _REPAIR_TEXT[row["action"]],
        "local": _side(row, "local") if row["local_records"] else "—",
        "backend": _side(row, "backend") if pd.notna(row["backend_id"]) else "no row",
        "why": "; ".join(x for x in (row["reason"], row["differences"]) if x),
        "certificate_claim": bool(row["certificate_claim"]),
    }


def _side(row: dict[str, Any], side: str) -> str:
    chapters = row[f"{side}_completed_chapters"]
    count = row[f"{side}_chapters_completed"]
    total = row[f"{side}_total_chapters"]
    quizzes = row[f"{side}_quiz_scores"] or {}
    listed = f" [{', '.join(chapters)}]" if isinstance(chapters, tuple) and chapters else ""
    quiz_text = ", ".join(f"{q}: {s:g}" for q, s in sorted(quizzes.items()))
    return (
        f"{_show(count)}/{_show(total)} chapters{listed}; "
        f"{_show(row[f'{side}_completion_percentage'])}%; "
        f"quizzes {{{quiz_text}}}; {_show(row[f'{side}_total_watch_time'])} s watched"
        + ("; certificate" if row[f"{side}_certificate_earned"] is True else "")
    )


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str | tuple | dict) and bool(pd.isna(value)))


def _show(value: Any) -> str:
    return "?" if _missing(value) else str(value)
