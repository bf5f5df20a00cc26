"""Seeded, realistic data for ``reconcile demo``: a migrated backend and the browsers' exports.

Pure and deterministic: the same seed and ``now`` give the same rows, exports and intended
statuses on any machine (one ``random.Random(seed)``, nothing iterated in hash order).

The story: a learning site moved tutorial progress from localStorage to PostgreSQL in the
fortnight before ``now`` (default 2026-01-20T08:00Z). Most users were migrated intact, many
kept learning on the backend afterwards (``backend_ahead``), and about one user in eight
with local data lost something, so the migration success rate lands just under the guide's
90% bar. This module holds the catalogue, the :class:`Builder` and that background;
:mod:`reconcile.demo.cases` plants every status and bad input on top of it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from reconcile.model import AT_RISK, PROGRESS_COLUMNS, Status
from reconcile.rules import completion

Key = tuple[str, str]

#: The demo's default clock: the morning after the migration finished.
DEFAULT_NOW = datetime(2026, 1, 20, 8, 0, tzinfo=UTC)
#: Planted "in the future" timestamps.
FAR_FUTURE = datetime(2099, 1, 1, 12, 0, tzinfo=UTC)
#: Share of users with local data whose migration lost nothing (the guide's bar is 90%).
TARGET_MIGRATION_RATE = 0.88

#: Columns the demo writes to the table (the SPEC's, but ``id``): one name each, from model.
BACKEND_COLUMNS: tuple[str, ...] = (*PROGRESS_COLUMNS, "created_at", "updated_at")
_TIMESTAMPS = ("started_at", "completed_at", "last_accessed_at", "created_at", "updated_at")

USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
)


@dataclass(frozen=True)
class Tutorial:
    """One course: a fixed number of chapters, each with a typical watch time, and quizzes."""

    id: str
    total: int
    prefixed: bool  # chapter ids "intro-to-rag/ch-03" rather than "ch-03"
    seconds: tuple[int, ...]
    quiz_every: int = 4

    def chapter(self, n: int) -> str:
        return f"{self.id}/ch-{n:02d}" if self.prefixed else f"ch-{n:02d}"

    def quizzes(self) -> dict[str, int]:
        """Quiz id -> the chapter that unlocks it (every few chapters, and the last)."""
        ends = sorted({*range(self.quiz_every, self.total + 1, self.quiz_every), self.total})
        if self.prefixed:
            return {f"{self.id}/quiz-{k}": end for k, end in enumerate(ends, 1)}
        return {f"quiz-{k:02d}": end for k, end in enumerate(ends, 1)}


def tutorial(tid: str, total: int, prefixed: bool = False, minutes: int = 8) -> Tutorial:
    """A tutorial whose chapter lengths depend only on its id (not on the seed)."""
    rng = random.Random(f"catalog:{tid}")
    return Tutorial(
        tid, total, prefixed, tuple(int(minutes * rng.uniform(36, 90)) for _ in range(total))
    )


#: The catalogue and how popular each tutorial is.
CATALOG: dict[str, Tutorial] = {
    t.id: t
    for t in (
        tutorial("intro-to-rag", 12, True, 9),
        tutorial("prompt-engineering-101", 8, False, 7),
        tutorial("vector-databases", 10, True, 11),
        tutorial("fine-tuning-llms", 15, False, 14),
        tutorial("agents_and_tools", 9, True, 12),
        tutorial("evals-in-practice", 6, False, 8),
        tutorial("embeddings-deep-dive", 11, True, 10),
        tutorial("llm-security", 7, False, 9),
    )
}
POPULARITY: tuple[int, ...] = (30, 25, 15, 10, 10, 5, 8, 7)  # in CATALOG order


@dataclass(frozen=True)
class Progress:
    """One side's progress on one tutorial, before it becomes a row or a localStorage value."""

    tutorial: Tutorial
    chapters: tuple[int, ...]
    quiz: dict[str, float]
    watch: int
    speed: float  # watch time per chapter relative to the chapter's typical length
    started: datetime
    last: datetime
    total: int

    @property
    def count(self) -> int:
        return len(self.chapters)

    @property
    def complete(self) -> bool:
        return self.count >= self.total

    @property
    def chapter_ids(self) -> list[str]:
        return [self.tutorial.chapter(n) for n in self.chapters]


def percent(count: int, total: int) -> float:
    """What the backend stores: SPEC 3's completion (:func:`reconcile.rules.completion`)."""
    return completion(count, total)


def iso_ms(moment: datetime) -> str:
    """Like ``Date.prototype.toISOString()``: UTC, milliseconds, ``Z``."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def storage_key(tutorial_id: str, user_id: str) -> str:
    return f"tutorial_progress_{tutorial_id}_{user_id}"


@dataclass(frozen=True)
class DemoDataset:
    """Backend rows, export envelopes and the status each key should get.

    ``expected`` covers the planted keys (``notes`` says what each shows), ``background``
    the ordinary users' keys. Both assume the exports are written by
    :func:`reconcile.demo.write_exports`, whose damaged files lose some exports on purpose.
    """

    backend: pd.DataFrame
    exports: list[dict[str, Any]]
    expected: dict[Key, str]
    background: dict[Key, str] = field(default_factory=dict)
    notes: dict[Key, str] = field(default_factory=dict)


class Builder:
    """Collects backend rows, localStorage values and intended statuses as cases are made."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.start = now - timedelta(days=141)  # 2025-09-01 for the default clock
        self.rows: list[dict[str, Any]] = []
        #: (envelope user, browser) -> localStorage; insertion order is the export order.
        self.storage: dict[tuple[str, int], dict[str, str]] = {}
        self.agents: dict[tuple[str, int], tuple[datetime, str]] = {}
        self.migrations: dict[str, datetime] = {}
        self.expected: dict[Key, str] = {}
        self.background: dict[Key, str] = {}
        self.notes: dict[Key, str] = {}

    # ---------------------------------------------------------------- time and scores

    def moment(self, low: datetime, high: datetime) -> datetime:
        """A random instant in ``[low, high]``, to the millisecond."""
        span = max(0, int((high - low).total_seconds() * 1000))
        return low + timedelta(milliseconds=self.rng.randint(0, span))

    def migrated(self, user: str) -> datetime:
        """When the user's first visit after the release copied their progress (once each)."""
        if user not in self.migrations:
            self.migrations[user] = self.moment(
                self.now - timedelta(days=15), self.now - timedelta(days=1)
            )
        return self.migrations[user]

    def after(self, moment: datetime, *, offline: bool = False) -> datetime:
        """Progress after ``moment``: before the export (offline) or up to an hour ago."""
        until = self.now - timedelta(hours=9 if offline else 1)
        return self.moment(moment + timedelta(minutes=30), until)

    def score(self) -> float:
        value = float(self.rng.randint(45, 100))
        return value - 0.5 if value > 45 and self.rng.random() < 0.15 else value

    # ---------------------------------------------------------------- progress

    def progress(
        self, t: Tutorial, chapters: Iterable[int], *, before: datetime, total: int = 0
    ) -> Progress:
        """Progress made before ``before``: the quizzes of those chapters, watch time to match."""
        started = self.moment(self.start, before - timedelta(days=3))
        last = self.moment(started + timedelta(hours=1), before - timedelta(hours=1))
        speed = round(self.rng.uniform(0.8, 1.5), 3)
        empty = Progress(t, (), {}, 0, speed, started, last, total or t.total)
        return self.advance(empty, chapters, last=last)

    def advance(self, p: Progress, extra: Iterable[int], *, last: datetime) -> Progress:
        """``p`` plus chapters ``extra`` (their quizzes and watch time), last seen at ``last``."""
        added = sorted(set(extra) - set(p.chapters))
        quiz = dict(p.quiz)
        for quiz_id, unlock in p.tutorial.quizzes().items():
            if unlock in added and quiz_id not in quiz:
                quiz[quiz_id] = self.score()
        seconds = sum(p.tutorial.seconds[n - 1] for n in added if n <= len(p.tutorial.seconds))
        return replace(
            p,
            chapters=tuple(sorted({*p.chapters, *added})),
            quiz=quiz,
            watch=p.watch + round(seconds * p.speed),
            last=max(last, p.last),
        )

    def base(self, user: str, t: Tutorial, n: int) -> Progress:
        """Chapters 1..n, all done before the user's migration."""
        return self.progress(t, range(1, n + 1), before=self.migrated(user))

    def later(self, user: str, p: Progress, chapters: list[int], offline: bool = False) -> Progress:
        """``p`` plus ``chapters`` done after the user's migration."""
        return self.advance(p, chapters, last=self.after(self.migrated(user), offline=offline))

    def first(self, t: Tutorial, n: int, *, before: datetime) -> Progress:
        """About the first ``n`` chapters; now and then one skipped and the next one done."""
        chapters = list(range(1, n + 1))
        if 2 <= n < t.total and self.rng.random() < 0.15:
            chapters[-2] = n + 1
        return self.progress(t, chapters, before=before)

    # ---------------------------------------------------------------- outputs

    def backend(self, user: str, p: Progress, *, count_only: bool = False, **override: Any) -> None:
        """A ``tutorial_progress`` row from the user's migration; ``override`` plants anomalies."""
        created = override.pop("created_at", None) or self.migrated(user)
        self.rows.append(
            {
                "user_id": user,
                "tutorial_id": p.tutorial.id,
                "completed_chapters": [] if count_only else p.chapter_ids,
                "chapters_completed": p.count,
                "total_chapters": p.total,
                "completion_percentage": percent(p.count, p.total),
                "quiz_scores": dict(p.quiz),
                "total_watch_time": p.watch,
                "certificate_earned": p.complete,
                "started_at": p.started,
                "completed_at": p.last if p.complete else None,
                "last_accessed_at": p.last,
                "created_at": created,
                "updated_at": max(created, p.last),
                **override,
            }
        )

    def value(self, user: str, p: Progress, style: str = "modern", **override: Any) -> str:
        """The string a client build wrote with ``localStorage.setItem(key, JSON.stringify(...))``.

        ``modern``: every field, ISO timestamps. ``legacy``: an older build, a chapter count
        only and epoch-millisecond timestamps. ``strings``: numbers as strings. ``bare``: no
        ids inside the value. ``override`` sets fields (``None`` drops one); ``encode=2``
        double-encodes the value.
        """
        encode = override.pop("encode", 1)
        obj: dict[str, Any] = {"tutorialId": p.tutorial.id, "userId": user}
        if style != "legacy":
            obj["completedChapters"] = p.chapter_ids
        obj["chaptersCompleted"] = p.count
        obj["totalChapters"] = p.total
        exact = 100 * p.count / p.total
        obj["completionPercentage"] = percent(p.count, p.total) if style == "legacy" else exact
        obj["quizScores"] = dict(p.quiz)
        obj["totalWatchTime"] = p.watch
        obj["certificateEarned"] = p.complete
        if style == "legacy":
            obj["startedAt"], obj["lastAccessedAt"] = epoch_ms(p.started), epoch_ms(p.last)
        else:
            obj["startedAt"] = iso_ms(p.started)
            obj["completedAt"] = iso_ms(p.last) if p.complete else None
            obj["lastAccessedAt"] = iso_ms(p.last)
        if style == "strings":
            for name in ("chaptersCompleted", "totalChapters", "totalWatchTime"):
                obj[name] = str(obj[name])
            obj["completionPercentage"] = f"{exact:.2f}"
            obj["quizScores"] = {q: f"{s:g}" for q, s in p.quiz.items()}
        if style == "bare":
            del obj["tutorialId"], obj["userId"]
        for name, setting in override.items():
            if setting is None:
                obj.pop(name, None)
            else:
                obj[name] = setting
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        for _ in range(encode - 1):
            text = json.dumps(text, ensure_ascii=False)
        return text

    def local(self, owner: str, key_user: str, tid: str, value: str, browser: int = 0) -> None:
        """Put ``value`` under ``key_user``'s key in ``owner``'s export from ``browser``."""
        self.envelope(owner, browser)[storage_key(tid, key_user)] = value

    def envelope(self, owner: str, browser: int = 0) -> dict[str, str]:
        slot = (owner, browser)
        if slot not in self.storage:
            self.storage[slot] = {}
            exported = self.moment(self.now - timedelta(hours=8), self.now - timedelta(minutes=5))
            self.agents[slot] = (exported, USER_AGENTS[(len(self.storage) + browser) % 6])
        return self.storage[slot]

    def expect(self, user: str, tid: str, status: Status, note: str = "") -> None:
        """Record the status a key should get: planted (with a note) or background."""
        if note:
            self.expected[(user, tid)] = status.value
            self.notes[(user, tid)] = note
        else:
            self.background[(user, tid)] = status.value

    def noise(self, storage: dict[str, str], index: int) -> None:
        """The other keys a real localStorage holds: counted and ignored by the job."""
        storage.setdefault("theme", self.rng.choice(("dark", "light", "system")))
        if self.rng.random() < 0.6:
            storage["ainative:lastVisited"] = "/tutorials/" + self.rng.choice(list(CATALOG))
        if self.rng.random() < 0.4:
            storage["cookie-consent"] = json.dumps({"analytics": self.rng.random() < 0.5})
        if self.rng.random() < 0.3:
            storage["tutorial_sidebar_width"] = str(self.rng.choice((240, 280, 320)))
        if index % 97 == 13:  # a flag an old build wrote: looks like progress, is not
            storage["tutorial_progress_migrated"] = "true"

    def dataset(self) -> DemoDataset:
        exports = []
        for index, (slot, storage) in enumerate(self.storage.items()):
            exported, agent = self.agents[slot]
            self.noise(storage, index)
            exports.append(
                {
                    "userId": slot[0],
                    "exportedAt": iso_ms(exported),
                    "userAgent": agent,
                    "localStorage": storage,
                }
            )
        frame = pd.DataFrame(self.rows, columns=list(BACKEND_COLUMNS))
        for column in _TIMESTAMPS:
            frame[column] = pd.to_datetime(frame[column], utc=True)
        frame = frame.sort_values("created_at", kind="stable", ignore_index=True)
        return DemoDataset(frame, exports, self.expected, self.background, self.notes)


# --------------------------------------------------------------------------- background


def _user_ids(rng: random.Random, count: int) -> list[str]:
    """Ids as an auth provider hands them out: mostly ``u-<n>``, some uuids and handles."""
    ids: dict[str, None] = {}
    while len(ids) < count:
        roll = rng.random()
        if roll < 0.7:
            uid = f"u-{rng.randint(10_000, 999_999)}"
        elif roll < 0.9:
            h = f"{rng.getrandbits(128):032x}"
            uid = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"
        else:
            uid = f"usr_{rng.getrandbits(40):010x}"
        ids[uid] = None
    return list(ids)


def _enrolments(rng: random.Random) -> list[Tutorial]:
    k = rng.choices((1, 2, 3, 4, 5), weights=(35, 30, 20, 10, 5))[0]
    chosen: dict[str, None] = {}
    while len(chosen) < k:
        chosen[rng.choices(list(CATALOG), weights=POPULARITY)[0]] = None
    return [CATALOG[t] for t in chosen]


@dataclass
class _Plan:
    user: str
    tutorial: Tutorial
    status: Status
    legacy: bool = False  # an older client build: counts only, and so is the migrated row
    exported: bool = False


def background(b: Builder, users: int) -> None:
    """Ordinary users: most migrated intact; enough lost something to miss the 90% bar."""
    plans: list[_Plan] = []
    exporters: list[str] = []
    for user in _user_ids(b.rng, users):
        roll, tutorials = b.rng.random(), _enrolments(b.rng)
        if roll < 0.62:  # used the site before the release; the collector has an export
            exporters.append(user)
            legacy = b.rng.random() < 0.12
            for n, t in enumerate(tutorials):
                r = b.rng.random()
                status = (
                    Status.IN_SYNC if r < 0.55 or n == 0
                    else Status.BACKEND_AHEAD if r < 0.85
                    else Status.BACKEND_ONLY  # started after the release: backend only
                )  # fmt: skip
                plans.append(_Plan(user, t, status, legacy, exported=True))
        else:  # no export collected, or signed up after the release
            plans.extend(_Plan(user, t, Status.BACKEND_ONLY) for t in tutorials)
            if roll > 0.93:  # a post-release browser: an export without progress keys
                b.envelope(user)
    planted = {u for (u, _), s in b.expected.items() if s not in _NO_LOCAL_DATA}
    planted_lost = {u for (u, _), s in b.expected.items() if Status(s) in AT_RISK}
    quota = round((1 - TARGET_MIGRATION_RATE) * (len(exporters) + len(planted))) - len(planted_lost)
    lost = set(b.rng.sample(exporters, max(0, min(len(exporters), quota))))
    for user, own in _by_user(plans).items():
        if user in lost:
            _lose_something(b.rng, own)
    for plan in plans:
        _materialize(b, plan)


_NO_LOCAL_DATA = {Status.BACKEND_ONLY, Status.FOREIGN_USER, Status.INVALID_LOCAL}


def _by_user(plans: list[_Plan]) -> dict[str, list[_Plan]]:
    out: dict[str, list[_Plan]] = {}
    for plan in plans:
        out.setdefault(plan.user, []).append(plan)
    return out


def _lose_something(rng: random.Random, plans: list[_Plan]) -> None:
    """Turn one of a user's keys (or, for some, every one) into a migration miss."""
    local = [p for p in plans if p.status is not Status.BACKEND_ONLY]
    roll = rng.random()
    if roll < 0.2:  # the migration never ran for this user
        for p in local:
            p.status = Status.MISSING_IN_BACKEND
        return
    victim = rng.choice(local)
    if roll < 0.55:
        victim.status = Status.MISSING_IN_BACKEND
    elif roll < 0.85 or victim.legacy:
        victim.status = Status.LOCAL_AHEAD  # kept learning offline: the API fallback
    else:
        victim.status = Status.DIVERGED  # two devices went two ways


def _materialize(b: Builder, plan: _Plan) -> None:
    user, t, status = plan.user, plan.tutorial, plan.status
    migrated = b.migrated(user)
    b.expect(user, t.id, status)
    if status is Status.BACKEND_ONLY:
        if plan.exported or b.rng.random() < 0.5:  # started after the release
            p = b.first(t, b.rng.randint(1, t.total), before=b.now)
            started = b.moment(migrated, b.now - timedelta(hours=3))
            p = replace(p, started=started, last=b.after(started))
            b.backend(user, p, created_at=started)
        else:  # migrated from a browser the collector never saw
            b.backend(user, b.first(t, b.rng.randint(1, t.total), before=migrated))
        return
    room = {Status.BACKEND_AHEAD: 3, Status.LOCAL_AHEAD: 2, Status.DIVERGED: 2}.get(status, 0)
    base = b.first(t, b.rng.randint(1, t.total - room), before=migrated)
    todo = [n for n in range(1, t.total + 1) if n not in base.chapters]
    local = backend = base
    if status is Status.BACKEND_AHEAD:
        backend = b.advance(base, todo[: b.rng.randint(1, 3)], last=b.after(migrated))
    elif status is Status.LOCAL_AHEAD:
        extra = todo[: b.rng.randint(1, 2)]
        local = b.advance(base, extra, last=b.after(migrated, offline=True))
    elif status is Status.DIVERGED:
        local = b.advance(base, todo[1:2], last=b.after(migrated, offline=True))
        backend = b.advance(base, todo[:1], last=b.after(migrated))
    if status is not Status.MISSING_IN_BACKEND:
        b.backend(user, backend, count_only=plan.legacy)
    b.local(user, user, t.id, b.value(user, local, "legacy" if plan.legacy else "modern"))
