"""Render the support report (``index.html``) from a :class:`RunResult`.

One self-contained file: CSS and JavaScript inline (``static/``), allowed by their
SHA-256 in a Content-Security-Policy that permits nothing else. The headline, charts
(inline SVG), checks and the migration guide's dashboard are HTML from Jinja2, whose
autoescaping escapes every value. What a support agent looks up (every user of the run,
the card of each user with something to see, the worklists) is data: one JSON document,
column-wise and dictionary-encoded, gzip-compressed and base64-encoded into a
``<script type="application/octet-stream">`` block (base64 has no character HTML or
JavaScript could read as markup). The page's script decodes it with the browser's own
``DecompressionStream`` and renders the card of one user on demand, with ``textContent``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import jinja2
import pandas as pd
from markupsafe import Markup

from reconcile.model import (
    ACTION_BY_STATUS,
    DIFF,
    FOREIGN,
    QUARANTINE,
    REPAIR,
    REVIEW,
    ROLLBACK,
    Status,
)
from reconcile.outputs.report import charts, embed
from reconcile.outputs.result import STATUS_HELP, RunResult

#: Actions of repair.sql; the others are for review.sql.
_REPAIRS: Final = ("insert", "merge")
_WORKLISTS: Final = (
    {
        "name": "risk",
        "title": "At risk of data loss",
        "help": "missing_in_backend, then local_ahead, then diverged: repair.sql restores them.",
        "columns": ("user", "tutorial", "status", "what the repair does"),
    },
    {
        "name": "review",
        "title": "For review",
        "help": "conflict, invalid_backend and certificate claims: review.sql lists them "
        "for a person; nothing changes them automatically.",
        "columns": ("user", "tutorial", "status", "what happens"),
    },
    {
        "name": "quarantine",
        "title": "Quarantined records",
        "help": "Records of the exports that failed validation, with the reason.",
        "columns": ("user", "file", "line", "reason"),
    },
)

_STATIC = resources.files("reconcile.outputs.report") / "static"
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("reconcile.outputs.report", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class _Assets:
    script: Markup
    style: Markup
    csp: str


def _assets() -> _Assets:
    """The inline script and style (our own files) and the policy that allows only them."""
    script = (_STATIC / "report.js").read_text(encoding="utf-8")
    style = (_STATIC / "report.css").read_text(encoding="utf-8")
    for text in (script, style):
        if "</" in text:  # would end the element early
            raise ValueError("report static files must not contain '</'")
    csp = (
        "default-src 'none'; "
        f"script-src {_sha256(script)}; style-src {_sha256(style)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    return _Assets(Markup(script), Markup(style), csp)


def _sha256(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


def render_report(result: RunResult, *, docs_link: Path | None = None) -> str:
    """The self-contained HTML report of one run."""
    assets = _assets()
    counts = result.counts
    statuses = [
        {
            "name": s.value,
            "count": counts[s.value],
            "help": STATUS_HELP[s],
            "action": ACTION_BY_STATUS[s].value,
        }
        for s in Status
    ]
    quarantine = result.quarantine
    reasons = list(quarantine["reason"].value_counts().head(30).items()) if len(quarantine) else []
    data, quarantine_note = embed.payload(result)
    return _ENV.get_template("report.html").render(
        r=result,
        summary=result.summary,
        head=_headline(result),
        trend=charts.trend(_history(result)),
        charts=charts.run_charts(result),
        dash=_dashboard(result.dashboard),
        statuses=statuses,
        worklists=_WORKLISTS,
        quarantine_note=quarantine_note,
        quarantine_reasons=reasons,
        files=(REPAIR, REVIEW, ROLLBACK, DIFF, QUARANTINE, FOREIGN),
        docs_link=str(docs_link) if docs_link else None,
        docs_pages=dict(result.docs_pages),
        payload=embed.pack(data),
        script=assets.script,
        style=assets.style,
        csp=assets.csp,
    )


# ---------------------------------------------------------------------------------------
# The headline, the history and the dashboard


def _headline(result: RunResult) -> dict[str, Any]:
    seconds = max(0, round((result.finished_at - result.started_at).total_seconds()))
    repairs = {name: n for name, n in result.actions.items() if name in _REPAIRS}
    reviews = {name: n for name, n in result.actions.items() if name not in _REPAIRS and n}
    rate = result.totals.migration_success_rate
    return {
        "started": f"{result.started_at:%Y-%m-%d %H:%M:%S} UTC",
        "finished": f"{result.finished_at:%H:%M:%S}",
        "took": f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s",
        "rate": f"{100 * rate:.1f}%",
        "rate_ok": rate >= 0.9,
        "checks_passed": sum(c.success for c in result.checks),
        "repairs": sum(repairs.values()),
        "repairs_text": _listed(repairs) or "none",
        "reviews_text": _listed(reviews),
    }


def _listed(counts: dict[str, int]) -> str:
    """``{"insert": 3, "merge": 1}`` as ``3 insert · 1 merge``."""
    return " · ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in counts.items())


def _history(result: RunResult) -> list[dict[str, Any]]:
    """Earlier nights of the output folder (``history.jsonl``), then this run.

    The report is written before the run records its own night, so this run's figures
    come from the result; a night of the same run id already recorded is not repeated.
    """
    from reconcile.outputs.artifacts import load_history

    nights: list[dict[str, Any]] = []
    try:
        frame = load_history(result.run_dir.parent)
    except (OSError, ValueError):  # the trend is a nicety: a damaged history never stops it
        frame = pd.DataFrame()
    wanted = ("run_id", "migration_success_rate", "at_risk")
    if not frame.empty and all(c in frame.columns for c in wanted):
        for night in frame[list(wanted)].to_dict("records"):
            if night["run_id"] != result.run_id:
                nights.append(night)
    nights.append(
        {
            "run_id": result.run_id,
            "migration_success_rate": result.totals.migration_success_rate,
            "at_risk": result.totals.at_risk,
        }
    )
    return nights[-30:]


def _dashboard(dash: dict[str, Any]) -> dict[str, Any] | None:
    if not dash:
        return None
    health = dash.get("health", {})
    labels = {
        "total_records": "backend records",
        "unique_users": "distinct users",
        "unique_tutorials": "distinct tutorials",
        "avg_completion": "average completion %",
        "total_certificates": "certificates",
    }
    criteria = [
        {
            **c,
            "value": f"{100 * c['value']:.1f}%" if isinstance(c["value"], float) else c["value"],
            "bar": f"{100 * c['bar']:.0f}%" if isinstance(c["bar"], float) else c["bar"],
        }
        for c in dash.get("success_criteria", [])
    ]
    return {
        "health": [(label, _number(health.get(k))) for k, label in labels.items()],
        "criteria": criteria,
        "days": dash.get("per_day", {}).get("days", []),
        "tutorials": [
            {**t, "avg": _number(t.get("avg_completion"))} for t in dash.get("per_tutorial", [])
        ],
    }


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"
