"""The planted cases of ``reconcile demo``: every status of SPEC 2, every bad input of SPEC 1.2.

Each planted key sits on a user whose id says what it shows (``p-...``) or on a hostile id;
:data:`NOTES` says why each gets its status. Some of these users' exports are written into
damaged files by :func:`reconcile.demo.write_exports` (the ``*_USER`` and ``*_KEPT``
names below), which is part of what they show.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from reconcile.demo.data import CATALOG, FAR_FUTURE, Builder, Progress, Tutorial, epoch_ms, tutorial
from reconcile.model import Status

S = Status

#: Users whose exports :func:`reconcile.demo.write_exports` puts into damaged files.
BROKEN_FILE_USER = "p-broken-file"  # the only export of a file of broken JSON
ARRAY_KEPT = ("p-array-kept-1", "p-array-kept-2")  # before the cut of a truncated array
ARRAY_CUT_USER = "p-array-cut"  # the array element cut in half
GZ_KEPT_USER = "p-gz-kept"  # first line of a truncated .ndjson.gz
GZ_CUT_USER = "p-gz-cut"  # the line the truncation cuts
LINE_KEPT = ("p-line-before", "p-line-after")  # around a broken line
BROKEN_LINE_USER = "p-broken-line"  # the broken line itself
UTF8_KEPT = ("p-utf8-before", "p-utf8-after")  # around a line with an invalid UTF-8 byte
BAD_UTF8_USER = "p-bad-utf8"  # that line
DUPLICATE_USER = "p-duplicate-upload"  # exported once, uploaded twice

_LOST = "its only export is lost to a damaged file (quarantined); the backend row stands alone"
_KEPT = "read from a damaged file: the exports before (or around) the damage are kept"
_FORGED = "a forged key in p-forger's export for a user with no data of their own"

#: Why each planted user's key gets its status.
NOTES: dict[str, str] = {
    "p-in-sync": "same chapters, quizzes and watch time on both sides",
    "p-backend-ahead": "two chapters done on the backend after the migration (normal)",
    "p-backend-only": "a backend row the user's export knows nothing of",
    "p-missing": "progress in the browser, no backend row: the migration lost it",
    "p-missing-everything": "the migration never ran for this user: no backend row at all",
    "p-missing-certificate": "completed with certificateEarned in the browser only: inserted "
    "without the certificate, the claim goes to review",
    "p-local-ahead-chapters": "chapters 5-6 done offline after the migration (API fallback)",
    "p-local-ahead-quiz": "quiz-01 retaken offline: 95 in the browser, 60 in the backend",
    "p-local-ahead-watch": "same chapters, 15 more minutes watched in the browser",
    "p-diverged": "chapter 5 only in the browser, chapter 4 only in the backend",
    "p-diverged-quiz": "a better quiz score in the browser, one more chapter in the backend",
    "p-conflict-total": "totalChapters 12 in the browser (the course before it was "
    "restructured), 15 in the backend",
    "p-conflict-browsers": "two browsers disagree on totalChapters (8 and 10)",
    "p-bad-percent": "backend completion_percentage 150.00",
    "p-bad-count": "backend chapters_completed 14 > total_chapters 10 (a count-only row)",
    "p-bad-watch": "backend total_watch_time -1800",
    "p-bad-updated": "backend updated_at three days before created_at",
    "p-bad-certificate": "backend certificate_earned at 42.86 % completion",
    "p-bad-future": "backend last_accessed_at and updated_at in 2099 (the browser is ahead "
    "too, but the row needs review first)",
    "p-bad-huge-watch": "backend total_watch_time 2,000,000,000 s (63 years)",
    "p-invalid-nan": "the only local record has chaptersCompleted NaN (not JSON)",
    "p-invalid-negative": "the only local record has chaptersCompleted -3",
    "p-invalid-garbage": 'the only local record has chaptersCompleted "\u22123 chapters"',
    "p-invalid-no-total": "the only local record lacks totalChapters",
    "p-invalid-broken": "the only local record is broken JSON (cut off)",
    "p-invalid-undefined": 'the only local record is "undefined" (setItem(key, undefined))',
    "p-invalid-null": 'the only local record is "null"',
    "p-invalid-huge": "the only local record has totalWatchTime 10^12",
    "p-invalid-over": "the only local record has chaptersCompleted 15 > totalChapters 9",
    "p-ids-disagree-user": "the only local record's userId (u-someone-else) disagrees with "
    "its key and envelope",
    "p-second-browser-bad": "a second browser's record is quarantined (negative watch time); "
    "the good one still counts",
    "p-ids-disagree": "a second browser holds this key with tutorialId llm-security in the "
    "value (quarantined); the good record counts",
    "p-shared-guest": "found only in p-shared-host's export (a shared computer): set aside, "
    "never repaired",
    "p-shared-sibling": "an older copy also sits in p-shared-host's export; only the "
    "sibling's own record counts",
    "u-victim-404": _FORGED,
    "admin'--": _FORGED,
    "p-legacy-sync": "older client build: a chapter count only, on both sides",
    "p-legacy-ahead": "older client build: count 6 in the browser, 4 chapter ids in the backend:"
    " a merge cannot name the 2 extra chapters, so a person reviews it",
    "p-legacy-missing": "older client build, never migrated",
    "p-numbers-as-strings": 'numbers as strings ("7", "1830")',
    "p-double-encoded": "the value is JSON-encoded twice",
    "p-epoch-ms": "timestamps as epoch milliseconds; the backend moved on (normal)",
    "p-bare_value": "no ids inside the value: the key "
    "tutorial_progress_agents_and_tools_p-bare_value is split by the envelope's userId",
    "p-certificate-claim": "certificateEarned in the browser, not in the backend: a review "
    "entry, never a status change",
    "p-two-browsers": "two browsers (chapters 1-4 and 1-3 + 5) merge to one chapter more "
    "than the backend's 1-4",
    "p-two-browsers-synced": "two browsers (chapters 1-3 and 1, 2, 4) merge to exactly the "
    "backend row",
    DUPLICATE_USER: "the same export uploaded twice: merged once",
    **dict.fromkeys(
        (BROKEN_FILE_USER, ARRAY_CUT_USER, GZ_CUT_USER, BROKEN_LINE_USER, BAD_UTF8_USER), _LOST
    ),
    **dict.fromkeys((*ARRAY_KEPT, GZ_KEPT_USER, *LINE_KEPT, *UTF8_KEPT), _KEPT),
}

#: Tutorial ids as hostile as the user ids.
HOSTILE_TUTORIALS: tuple[Tutorial, ...] = (
    tutorial('o\'reilly "quotes" \\ $$ ; --', 5),
    tutorial("<img src=x onerror=alert(1)>", 4),
)

#: (user id, tutorial id, status): ids that break naive SQL, HTML, CSV, psql and key parsing.
HOSTILE_CASES: tuple[tuple[str, str, Status], ...] = (
    ("o'brien", "intro-to-rag", S.MISSING_IN_BACKEND),
    ('user "quoted"', "vector-databases", S.LOCAL_AHEAD),
    ("back\\slash\\\\user\\", "prompt-engineering-101", S.DIVERGED),
    ("$$dollar$$ $tag$ quoting", "evals-in-practice", S.MISSING_IN_BACKEND),
    ("semi;colon; SELECT 1;", "llm-security", S.IN_SYNC),
    ("<script>alert(1)</script>", "intro-to-rag", S.LOCAL_AHEAD),
    ("'); DROP TABLE tutorial_progress; --", "fine-tuning-llms", S.MISSING_IN_BACKEND),
    ("line\nbreak\r\ttab", "embeddings-deep-dive", S.MISSING_IN_BACKEND),
    ("🦄 unicorn-用户-ユーザー", "agents_and_tools", S.LOCAL_AHEAD),
    ("\u202eevil-rtl-משתמש", "evals-in-practice", S.DIVERGED),
    ("مستخدم_عربي", "prompt-engineering-101", S.IN_SYNC),
    ("user_with_underscores-and-dashes", "agents_and_tools", S.MISSING_IN_BACKEND),
    ("psql :'var' :\"ident\" \\gexec", "llm-security", S.MISSING_IN_BACKEND),
    ("p-hostile-tutorials", HOSTILE_TUTORIALS[0].id, S.MISSING_IN_BACKEND),
    ("p-hostile-tutorials", HOSTILE_TUTORIALS[1].id, S.LOCAL_AHEAD),
)

RAG, PE, VDB, FT, AGENTS, EVALS, EMB, SEC = CATALOG.values()


def plant(b: Builder) -> None:
    """Put every planted case into ``b``."""
    for group in (_healthy, _losses, _conflicts, _invalid_backend, _invalid_local, _foreign):
        group(b)
    for group in (_client_builds, _browsers, _damaged, _hostile):
        group(b)


def simple(
    b: Builder,
    user: str,
    t: Tutorial,
    status: Status,
    *,
    note: str | None = None,
    n: int = 0,
    style: str = "modern",
    browser: int = 0,
) -> Progress:
    """A key whose status follows from chapters alone; returns the backend's progress.

    ``note=""`` makes it a background key of a planted user (not in ``expected``).
    """
    migrated = b.migrated(user)
    n = n or max(1, t.total // 2 - 1)
    p = b.progress(t, range(1, n + 1), before=migrated)
    local = backend = p
    if status is S.LOCAL_AHEAD:
        local = b.later(user, p, [n + 1, n + 2], offline=True)
    elif status is S.BACKEND_AHEAD:
        backend = b.later(user, p, [n + 1, n + 2])
    elif status is S.DIVERGED:
        local = b.later(user, p, [n + 2], offline=True)
        backend = b.later(user, p, [n + 1])
    if status is not S.MISSING_IN_BACKEND:
        b.backend(user, backend, count_only=style == "legacy")
    if status is not S.BACKEND_ONLY:
        b.local(user, user, t.id, b.value(user, local, style), browser)
    b.expect(user, t.id, status, NOTES[user] if note is None else note)
    return backend


def pair(
    b: Builder,
    user: str,
    t: Tutorial,
    status: Status,
    local: Progress | None,
    backend: Progress | None,
    **row: Any,
) -> None:
    """A planted key with the given sides; ``row`` overrides backend columns."""
    if backend is not None:
        b.backend(user, backend, **row)
    if local is not None:
        b.local(user, user, t.id, b.value(user, local))
    b.expect(user, t.id, status, NOTES[user])


def _healthy(b: Builder) -> None:
    simple(b, "p-in-sync", RAG, S.IN_SYNC)
    simple(b, "p-backend-ahead", PE, S.BACKEND_AHEAD)
    simple(b, "p-backend-only", RAG, S.IN_SYNC, note="")
    simple(b, "p-backend-only", VDB, S.BACKEND_ONLY)


def _losses(b: Builder) -> None:
    simple(b, "p-missing", RAG, S.MISSING_IN_BACKEND, n=7)
    simple(b, "p-missing", PE, S.IN_SYNC, note="")
    for t in (VDB, FT):
        simple(b, "p-missing-everything", t, S.MISSING_IN_BACKEND)
    u = "p-missing-certificate"
    pair(b, u, EVALS, S.MISSING_IN_BACKEND, b.base(u, EVALS, EVALS.total), None)
    u = "p-local-ahead-chapters"
    p = b.base(u, RAG, 4)
    pair(b, u, RAG, S.LOCAL_AHEAD, b.later(u, p, [5, 6], offline=True), p)
    u = "p-local-ahead-quiz"
    p = replace(b.base(u, PE, 4), quiz={"quiz-01": 60.0})
    pair(b, u, PE, S.LOCAL_AHEAD, replace(p, quiz={"quiz-01": 95.0}), p)
    u = "p-local-ahead-watch"
    p = b.base(u, FT, 6)
    pair(b, u, FT, S.LOCAL_AHEAD, replace(p, watch=p.watch + 900), p)
    u = "p-diverged"
    p = b.base(u, VDB, 3)
    pair(b, u, VDB, S.DIVERGED, b.later(u, p, [5], offline=True), b.later(u, p, [4]))
    u = "p-diverged-quiz"
    p = replace(b.base(u, RAG, 4), quiz={"intro-to-rag/quiz-1": 70.0})
    local = replace(p, quiz={"intro-to-rag/quiz-1": 90.0})
    pair(b, u, RAG, S.DIVERGED, local, b.later(u, p, [5]))


def _conflicts(b: Builder) -> None:
    u = "p-conflict-total"
    p = b.base(u, FT, 6)
    pair(b, u, FT, S.CONFLICT, replace(p, total=12), p)
    u = "p-conflict-browsers"
    p = b.base(u, PE, 5)
    pair(b, u, PE, S.CONFLICT, p, p)
    b.local(u, u, PE.id, b.value(u, replace(p, total=10)), browser=1)


def _invalid_backend(b: Builder) -> None:
    """Backend rows that fail validation: review, whatever the browser says."""
    anomalies: tuple[tuple[str, Tutorial, int, dict[str, Any], bool], ...] = (
        ("p-bad-percent", RAG, 6, {"completion_percentage": 150.0}, True),
        ("p-bad-count", VDB, 6, {"chapters_completed": 14, "completion_percentage": 100.0}, True),
        ("p-bad-watch", PE, 3, {"total_watch_time": -1800}, True),
        (
            "p-bad-updated",
            EVALS,
            2,
            {"updated_at": b.migrated("p-bad-updated") - timedelta(3)},
            False,
        ),
        ("p-bad-certificate", SEC, 3, {"certificate_earned": True}, True),
        ("p-bad-future", EMB, 5, {"last_accessed_at": FAR_FUTURE, "updated_at": FAR_FUTURE}, True),
        ("p-bad-huge-watch", AGENTS, 4, {"total_watch_time": 2_000_000_000}, False),
    )
    for user, t, n, row, has_local in anomalies:
        p = b.base(user, t, n)
        local = b.later(user, p, [n + 1], offline=True) if user == "p-bad-future" else p
        if user == "p-bad-count":
            row = {**row, "completed_chapters": []}
        pair(b, user, t, S.INVALID_BACKEND, local if has_local else None, p, **row)


def _invalid_local(b: Builder) -> None:
    """Keys whose only local record is quarantined (some with a backend row, some without)."""

    def bad(
        user: str, t: Tutorial, text: str | None = None, *, backend: bool, **fields: Any
    ) -> None:
        p = b.base(user, t, 3)
        if backend:
            b.backend(user, p)
        b.local(user, user, t.id, b.value(user, p, **fields) if text is None else text)
        b.expect(user, t.id, S.INVALID_LOCAL, NOTES[user])

    bad("p-invalid-nan", RAG, backend=True, chaptersCompleted=float("nan"))
    bad("p-invalid-negative", PE, backend=False, chaptersCompleted=-3, completedChapters=[])
    bad("p-invalid-garbage", VDB, backend=True, chaptersCompleted="\u22123 chapters")
    bad("p-invalid-no-total", FT, backend=False, totalChapters=None)
    u = "p-invalid-broken"
    bad(u, EVALS, b.value(u, b.base(u, EVALS, 3))[:61], backend=True)
    bad("p-invalid-undefined", SEC, "undefined", backend=False)
    bad("p-invalid-null", EMB, "null", backend=True)
    bad("p-invalid-huge", AGENTS, backend=False, totalWatchTime=10**12)
    bad("p-invalid-over", AGENTS, backend=False, chaptersCompleted=15)
    bad("p-ids-disagree-user", PE, backend=True, userId="u-someone-else")
    # A bad record beside a good one costs nothing.
    u = "p-second-browser-bad"
    p = simple(b, u, RAG, S.IN_SYNC, n=5)
    b.local(u, u, RAG.id, b.value(u, p, totalWatchTime=-5), browser=1)
    u = "p-ids-disagree"
    p = simple(b, u, VDB, S.IN_SYNC, n=4, browser=1)
    b.local(u, u, VDB.id, b.value(u, p, tutorialId="llm-security"))


def _foreign(b: Builder) -> None:
    """Keys found in another user's export: a shared computer, a forged key."""
    host, guest, sibling, forger = "p-shared-host", "p-shared-guest", "p-shared-sibling", "p-forger"
    simple(b, host, PE, S.BACKEND_AHEAD, note="")
    simple(b, guest, SEC, S.IN_SYNC, note="")
    p = b.base(guest, RAG, 6)
    pair(b, guest, RAG, S.FOREIGN_USER, None, p)
    b.local(host, guest, RAG.id, b.value(guest, replace(p, chapters=p.chapters[:5])))
    p = simple(b, sibling, EVALS, S.IN_SYNC)
    b.local(host, sibling, EVALS.id, b.value(sibling, replace(p, chapters=p.chapters[:1])))
    simple(b, forger, FT, S.IN_SYNC, note="")
    for victim, t in (("u-victim-404", FT), ("admin'--", RAG)):
        b.local(forger, victim, t.id, b.value(victim, b.base(forger, t, t.total)))
        b.expect(victim, t.id, S.FOREIGN_USER, NOTES[victim])


def _client_builds(b: Builder) -> None:
    """Client builds and encodings the loader must take in its stride."""
    simple(b, "p-legacy-sync", PE, S.IN_SYNC, n=5, style="legacy")
    u = "p-legacy-ahead"
    p = b.base(u, RAG, 4)
    pair(b, u, RAG, S.CONFLICT, None, p)
    b.local(u, u, RAG.id, b.value(u, b.later(u, p, [5, 6], offline=True), "legacy"))
    simple(b, "p-legacy-missing", VDB, S.MISSING_IN_BACKEND, style="legacy")
    simple(b, "p-numbers-as-strings", FT, S.IN_SYNC, n=7, style="strings")
    u = "p-double-encoded"
    p = b.base(u, AGENTS, 5)
    pair(b, u, AGENTS, S.IN_SYNC, None, p)
    b.local(u, u, AGENTS.id, b.value(u, p, encode=2))
    u = "p-epoch-ms"
    p = b.base(u, EMB, 4)
    pair(b, u, EMB, S.BACKEND_AHEAD, None, b.later(u, p, [5, 6]))
    started, last = epoch_ms(p.started), epoch_ms(p.last)
    value = b.value(u, p, completedAt=None, startedAt=started, lastAccessedAt=last)
    b.local(u, u, EMB.id, value)
    simple(b, "p-bare_value", AGENTS, S.IN_SYNC, style="bare")
    u = "p-certificate-claim"
    p = b.base(u, EVALS, EVALS.total)
    pair(b, u, EVALS, S.IN_SYNC, p, p, certificate_earned=False)


def _browsers(b: Builder) -> None:
    """One user, several browsers or uploads: the valid records of a key merge."""
    u = "p-two-browsers"
    p = b.base(u, RAG, 3)
    first = b.advance(p, [4], last=p.last)
    pair(b, u, RAG, S.LOCAL_AHEAD, first, first)
    b.local(u, u, RAG.id, b.value(u, b.later(u, p, [5], offline=True)), browser=1)
    u = "p-two-browsers-synced"
    p = b.base(u, VDB, 2)
    one, two = b.advance(p, [3], last=p.last), b.advance(p, [4], last=p.last)
    merged = replace(
        one, chapters=(1, 2, 3, 4), quiz={**one.quiz, **two.quiz}, watch=max(one.watch, two.watch)
    )
    pair(b, u, VDB, S.IN_SYNC, one, merged)
    b.local(u, u, VDB.id, b.value(u, two), browser=1)
    simple(b, DUPLICATE_USER, SEC, S.MISSING_IN_BACKEND)


def _damaged(b: Builder) -> None:
    """Users whose exports write_exports puts into damaged files."""
    lost = ((BROKEN_FILE_USER, RAG), (ARRAY_CUT_USER, VDB), (GZ_CUT_USER, VDB))
    for user, t in (*lost, (BROKEN_LINE_USER, FT), (BAD_UTF8_USER, RAG)):
        p = b.base(user, t, 4)
        pair(b, user, t, S.BACKEND_ONLY, p, p)
    simple(b, ARRAY_KEPT[0], PE, S.MISSING_IN_BACKEND)
    simple(b, ARRAY_KEPT[1], EVALS, S.IN_SYNC)
    simple(b, GZ_KEPT_USER, EVALS, S.MISSING_IN_BACKEND)
    simple(b, LINE_KEPT[0], RAG, S.MISSING_IN_BACKEND)
    simple(b, LINE_KEPT[1], PE, S.LOCAL_AHEAD)
    simple(b, UTF8_KEPT[0], SEC, S.MISSING_IN_BACKEND)
    simple(b, UTF8_KEPT[1], VDB, S.BACKEND_AHEAD)


def _hostile(b: Builder) -> None:
    """Ids that break naive SQL, HTML, CSV, psql and key parsing."""
    tutorials = {t.id: t for t in (*CATALOG.values(), *HOSTILE_TUTORIALS)}
    for user, tid, status in HOSTILE_CASES:
        simple(b, user, tutorials[tid], status, note=f"hostile id: {status.value} all the same")
