"""A small documented fixture holding every status of SPEC 2.

Each :class:`Case` is one key with its backend row (or none), its local records (each
becomes one localStorage value in some user's export) and the status it must get. The
differences that decide the status are spelled out in ``why``.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from reconcile.db import libpq_url
from reconcile.sources.backend import create_table

T = "intro-to-rag"  # 4 chapters
HOSTILE = "o'hara\"; DROP TABLE tutorial_progress; --<script>alert(1)</script>_x\\n$$"


@dataclass(frozen=True)
class Case:
    user: str
    tutorial: str
    status: str
    why: str
    backend: dict[str, Any] | None = None
    local: list[dict[str, Any]] = field(default_factory=list)
    exporter: str | None = None  # the envelope's user, when not ``user`` (foreign keys)


def row(chapters: list[str], total: int = 4, **extra: Any) -> dict[str, Any]:
    """A backend row (or local record) with consistent count and percentage."""
    base = {
        "completed_chapters": chapters,
        "chapters_completed": len(chapters),
        "total_chapters": total,
        "completion_percentage": round(100 * len(chapters) / total, 2),
        "quiz_scores": {},
        "total_watch_time": 60 * len(chapters),
        "certificate_earned": False,
    }
    base.update(extra)
    return base


CASES: list[Case] = [
    Case(
        "u-sync",
        T,
        "in_sync",
        "identical on both sides",
        row(["c1", "c2"], quiz_scores={"q1": 80}),
        [row(["c1", "c2"], quiz_scores={"q1": 80})],
    ),
    Case(
        "u-missing", T, "missing_in_backend", "local progress, no backend row", None, [row(["c1"])]
    ),
    Case(
        "u-ahead",
        T,
        "local_ahead",
        "local has chapter c2 the backend lacks",
        row(["c1"]),
        [row(["c1", "c2"], total_watch_time=60)],
    ),
    Case(
        "u-quiz",
        T,
        "local_ahead",
        "same chapters, local quiz score higher",
        row(["c1"], quiz_scores={"q1": 50}),
        [row(["c1"], quiz_scores={"q1": 90})],
    ),
    Case(
        "u-old-build",
        T,
        "conflict",
        "count-only local record (3) above backend's list of 2: which chapters? (review)",
        row(["c1", "c2"]),
        [{"chaptersCompleted": 3, "totalChapters": 4, "totalWatchTime": 120}],
    ),
    Case(
        "u-behind",
        T,
        "backend_ahead",
        "backend has c2, c3 the local lacks",
        row(["c1", "c2", "c3"]),
        [row(["c1"])],
    ),
    Case(
        "u-watch",
        T,
        "backend_ahead",
        "backend watched longer, nothing else differs",
        row(["c1"], total_watch_time=900),
        [row(["c1"], total_watch_time=100)],
    ),
    Case(
        "u-div",
        T,
        "diverged",
        "backend has c2, local has c3",
        row(["c1", "c2"]),
        [row(["c1", "c3"])],
    ),
    Case("u-bonly", T, "backend_only", "no local record", row(["c1"])),
    Case(
        "u-conf",
        T,
        "conflict",
        "total_chapters 4 in the backend, 5 locally",
        row(["c1"]),
        [row(["c1", "c2"], total=5)],
    ),
    Case(
        "u-badlocal",
        T,
        "invalid_local",
        "the only local record says 150 %",
        row(["c1"]),
        [row(["c1"], completion_percentage=150)],
    ),
    Case(
        "u-badback",
        T,
        "invalid_backend",
        "backend completion_percentage 120",
        row(["c1"], completion_percentage=120),
        [row(["c1", "c2"])],
    ),
    Case(
        "u-overcount",
        T,
        "invalid_backend",
        "backend chapters_completed 9 > total 4",
        row([], chapters_completed=9),
        [],
    ),
    Case(
        "u-guest",
        T,
        "foreign_user",
        "only found in u-host's export",
        None,
        [row(["c1"])],
        exporter="u-host",
    ),
    Case(
        "u-two",
        T,
        "in_sync",
        "two browsers (c1 / c2) merge to the backend's c1, c2",
        row(["c1", "c2"]),
        [row(["c1"], total_watch_time=120), row(["c2"], total_watch_time=120)],
    ),
    Case(
        "u-cert",
        T,
        "in_sync",
        "local claims a certificate the backend lacks (review only)",
        row(["c1", "c2", "c3", "c4"]),
        [row(["c1", "c2", "c3", "c4"], certificate_earned=True)],
    ),
    Case(
        HOSTILE,
        "tut_with-under_scores",
        "missing_in_backend",
        "hostile ids survive",
        None,
        [row(["ch'1", 'ch"2'], total=3)],
    ),
]


def _camel(record: dict[str, Any], user: str, tutorial: str) -> dict[str, Any]:
    names = {
        "completed_chapters": "completedChapters",
        "chapters_completed": "chaptersCompleted",
        "total_chapters": "totalChapters",
        "completion_percentage": "completionPercentage",
        "quiz_scores": "quizScores",
        "total_watch_time": "totalWatchTime",
        "certificate_earned": "certificateEarned",
    }
    out: dict[str, Any] = {"tutorialId": tutorial, "userId": user}
    out.update({names.get(k, k): v for k, v in record.items()})
    return out


def write_backend(url: str) -> None:
    """Create the SPEC table and insert every case's backend row."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        create_table(conn, "public", "tutorial_progress")
        for case in CASES:
            if case.backend is None:
                continue
            b = case.backend
            conn.execute(
                "INSERT INTO tutorial_progress (user_id, tutorial_id, completed_chapters,"
                " chapters_completed, total_chapters, completion_percentage, quiz_scores,"
                " total_watch_time, certificate_earned, started_at, last_accessed_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " '2025-12-01T10:00:00Z', '2026-01-10T10:00:00Z')",
                (
                    case.user,
                    case.tutorial,
                    b["completed_chapters"],
                    b["chapters_completed"],
                    b["total_chapters"],
                    b["completion_percentage"],
                    Jsonb(b["quiz_scores"]),
                    b["total_watch_time"],
                    b["certificate_earned"],
                ),
            )


def exports(cases: list[Case] = CASES) -> list[dict[str, Any]]:
    """One export per (exporter, record index): several browsers give several exports."""
    envelopes: list[dict[str, Any]] = []
    for case in cases:
        owner = case.exporter or case.user
        for i, record in enumerate(case.local):
            key = f"tutorial_progress_{case.tutorial}_{case.user}"
            value = json.dumps(_camel(record, case.user, case.tutorial))
            envelopes.append(
                {
                    "userId": owner,
                    "exportedAt": "2026-01-20T08:00:00Z",
                    "userAgent": f"browser-{i}",
                    "localStorage": {key: value, "theme": "dark"},
                }
            )
    return envelopes


def write_exports(folder: Path) -> Path:
    """Spread the exports over an NDJSON file, a JSON array, a gzipped single export and a
    duplicate upload of the first export (which must change nothing)."""
    folder.mkdir(parents=True, exist_ok=True)
    envelopes = exports()
    third = len(envelopes) // 3
    with (folder / "night.ndjson").open("w", encoding="utf-8") as handle:
        for env in envelopes[:third]:
            handle.write(json.dumps(env) + "\n")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "batch.json").write_text(json.dumps(envelopes[third:-1]), encoding="utf-8")
    with gzip.open(folder / "sub" / "last.json.gz", "wt", encoding="utf-8") as handle:
        json.dump(envelopes[-1], handle)
    (folder / "again.jsonl").write_text(json.dumps(envelopes[0]) + "\n", encoding="utf-8")
    return folder
