"""The whole nightly job on N keys, and its peers on the same data, in one run (not a test).

    python bench/bench_run.py [--keys 1000000] [--users 200000] [--cache DIR] [--workers W]

Data: the demo's planted users (every status and every bad input of SPEC 1.2, damaged files
included) plus a background population generated here with the demo's mix of statuses
(``reconcile.demo.data.background``: 62% of users exported, 12% of those on an older client
build, ~12% lost something in the migration) at ``--keys / --users`` keys a user, and bad
records on top (invalid, double-encoded and numbers-as-strings values, foreign keys, second
browsers, cut lines, backend anomalies). It is written once per (keys, users, seed) under
``--cache`` (default ``$XDG_CACHE_HOME/reconcile-bench`` or ``~/.cache/reconcile-bench``):
the exports folder and ``backend.csv``, which each run COPYs into a fresh embedded
PostgreSQL (or into schema ``reconcile_bench`` of ``$RECONCILE_BENCH_DATABASE_URL``).

Measured, each in a fresh child process (peak RSS is ``getrusage`` ``ru_maxrss``):
``run_job`` per stage (``RunResult.timings``) plus the child's start-up and imports; then
``load_backend`` against ``pandas.read_sql`` of the same table (SQLAlchemy + psycopg),
``load_exports`` against an orjson-only parse of every export and every progress value, and
the compare stage (``merge_local`` + ``build_diff``) against datacompy's ``PandasCompare``
(join on ``user_id, tutorial_id``) of the backend frame and the merged local frame. Prints
one Markdown table. Needs the ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

GENERATOR_VERSION = 2  # bump when the data changes: it names the cache folder
SCHEMA = "reconcile_bench"
EXPORTS_PER_FILE = 5_000
FORMATS = ("ndjson", "jsonl", "ndjson.gz", "json", "ndjson")  # one batch file each in turn
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
IN_SYNC, BACKEND_AHEAD, BACKEND_ONLY, MISSING, LOCAL_AHEAD, DIVERGED = range(6)


# --------------------------------------------------------------------------- the dataset


def dataset_folder(cache: Path, keys: int, users: int, seed: int) -> Path:
    """The cached dataset for these figures, generated on first use."""
    folder = cache / f"keys{keys}-users{users}-seed{seed}-v{GENERATOR_VERSION}"
    if (folder / "manifest.json").exists():
        print(f"dataset: reusing {folder}", file=sys.stderr)
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=cache))
    try:
        clock = time.perf_counter()
        manifest = generate(work, keys, users, seed)
        manifest["generated_seconds"] = round(time.perf_counter() - clock, 1)
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(folder, ignore_errors=True)  # a half-written one from a killed run
        work.chmod(0o755)
        work.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"dataset: generated {folder} in {manifest['generated_seconds']} s", file=sys.stderr)
    return folder


def generate(folder: Path, keys: int, users: int, seed: int) -> dict[str, Any]:
    """Write ``exports/`` and ``backend.csv`` (COPY csv, ``BACKEND_COLUMNS``) into ``folder``."""
    from reconcile.demo.run import build_dataset, write_exports

    planted = build_dataset(seed=seed, users=0)
    write_exports(folder / "exports" / "planted", planted)
    with open(folder / "backend.csv", "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerows(_planted_rows(planted.backend))
        population = _Population(seed, max(1, keys - len(planted.expected)), users)
        counts = population.write(folder / "exports" / "background", writer)
    counts["backend_rows"] += len(planted.backend)
    return {"keys": keys, "users": users, "seed": seed, **counts}


def _array_literal(items: Any) -> str:
    """A PostgreSQL ``text[]`` literal, every element quoted."""
    quoted = ('"' + str(i).replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items)
    return "{" + ",".join(quoted) + "}"


def _planted_rows(frame: Any) -> Iterator[list[Any]]:
    """The demo's planted backend rows as CSV fields (``None`` is NULL)."""
    import pandas as pd

    from reconcile.demo.data import BACKEND_COLUMNS

    for row in frame[list(BACKEND_COLUMNS)].itertuples(index=False):
        fields: list[Any] = []
        for name, value in zip(BACKEND_COLUMNS, row, strict=True):
            if name == "completed_chapters":
                value = _array_literal(value)
            elif name == "quiz_scores":
                value = json.dumps(value)
            elif name == "certificate_earned":
                value = "t" if value else "f"
            elif isinstance(value, pd.Timestamp) or value is pd.NaT:
                value = None if pd.isna(value) else value.isoformat()
            elif hasattr(value, "item"):
                value = value.item()
            fields.append(value)
        yield fields


class _Population:
    """The ordinary users: numpy draws up front, one Python pass to write the strings."""

    def __init__(self, seed: int, keys: int, users: int) -> None:
        import numpy as np

        from reconcile.demo.data import CATALOG, DEFAULT_NOW, POPULARITY, tutorial
        from reconcile.rules import completion

        self.rng = random.Random(seed)
        self.np = np.random.default_rng(seed)
        users = max(1, min(users, keys))
        tutorials = list(CATALOG.values())
        weights = list(POPULARITY)
        while len(tutorials) * users < keys:  # more keys a user than the catalogue holds
            tutorials.append(tutorial(f"course-{len(tutorials):03d}", 6 + len(tutorials) % 10))
            weights.append(3)
        self.tutorials = tutorials
        self.unlocks = {t.id: t.quizzes() for t in tutorials}
        self.chapter_ids = {
            t.id: [""] + [t.chapter(n) for n in range(1, t.total + 1)] for t in tutorials
        }
        self.completion = completion
        self.now = int(DEFAULT_NOW.timestamp() * 1000)
        self.per_user = self._keys_per_user(keys, users, len(tutorials))
        self.user_ids = self._user_ids(users)
        # Each user's tutorials: the top k of popularity-weighted Gumbel draws.
        scores = np.log(np.asarray(weights, float)) + self.np.gumbel(size=(users, len(weights)))
        order = np.argsort(-scores, axis=1)
        self.tut = order[np.arange(len(weights)) < self.per_user[:, None]]
        self.user = np.repeat(np.arange(users), self.per_user)

    def _keys_per_user(self, keys: int, users: int, most: int) -> Any:
        np = __import__("numpy")
        mean = keys / users
        per = 1 + self.np.binomial(most - 1, min(1.0, (mean - 1) / max(1, most - 1)), users)
        while (gap := keys - int(per.sum())) != 0:
            room = np.flatnonzero(per < most) if gap > 0 else np.flatnonzero(per > 1)
            pick = self.np.choice(room, min(abs(gap), len(room)), replace=False)
            per[pick] += 1 if gap > 0 else -1
        return per

    def _user_ids(self, users: int) -> list[str]:
        """Mostly ``u-<n>``, some uuids and handles, as an auth provider hands them out."""
        ids = []
        for i, roll in enumerate(self.np.random(users).tolist()):
            bits = self.rng.getrandbits(84)
            if roll < 0.7:
                ids.append(f"u-{100_000 + i}")
            elif roll < 0.9:
                h = f"{bits:021x}{i:011x}"
                ids.append(f"{h[:8]}-{h[8:12]}-4{h[12:15]}-a{h[15:18]}-{h[18:30]}")
            else:
                ids.append(f"usr_{bits & 0xFFFFF:05x}{i:07x}")
        return ids

    def _statuses(self) -> Any:
        """Each key's status, as ``reconcile.demo.data.background`` draws them."""
        np = __import__("numpy")
        users = len(self.per_user)
        roll = self.np.random(users)
        self.exporter = roll < 0.62
        self.empty_envelope = roll > 0.93
        self.legacy = self.exporter & (self.np.random(users) < 0.12)
        start = np.cumsum(self.per_user) - self.per_user
        first = np.zeros(len(self.user), bool)
        first[start] = True
        r = self.np.random(len(self.user))
        status = np.where(
            first | (r < 0.55), IN_SYNC, np.where(r < 0.85, BACKEND_AHEAD, BACKEND_ONLY)
        )
        status[~self.exporter[self.user]] = BACKEND_ONLY
        lost = np.flatnonzero(self.exporter & (self.np.random(users) < 0.12))
        for u in lost.tolist():  # one user in eight with local data lost something
            span = range(start[u], start[u] + self.per_user[u])
            local = [k for k in span if status[k] != BACKEND_ONLY]
            kind = self.rng.random()
            if kind < 0.2:  # the migration never ran for this user
                status[local] = MISSING
            else:
                victim = self.rng.choice(local)
                status[victim] = (
                    MISSING if kind < 0.55
                    else LOCAL_AHEAD if kind < 0.85 or self.legacy[u]
                    else DIVERGED
                )  # fmt: skip
        return status

    def _times(self) -> dict[str, list[Any]]:
        """Every key's instants as ISO strings and epoch ms, drawn and formatted at once."""
        np = __import__("numpy")
        n, now = len(self.user), self.now
        migrated = (now - 15 * DAY_MS + self.np.random(len(self.per_user)) * 14 * DAY_MS)[
            self.user
        ].astype(np.int64)
        start = now - 141 * DAY_MS
        started = start + self.np.random(n) * (migrated - 3 * DAY_MS - start)
        last = started + HOUR_MS + self.np.random(n) * (migrated - 2 * HOUR_MS - started)
        after = migrated + HOUR_MS // 2 + self.np.random(n) * (now - 2 * HOUR_MS - migrated)
        offline = migrated + HOUR_MS // 2 + self.np.random(n) * (now - 10 * HOUR_MS - migrated)
        new_start = migrated + self.np.random(n) * (now - 3 * HOUR_MS - migrated)
        new_last = new_start + HOUR_MS // 2 + self.np.random(n) * (now - 2 * HOUR_MS - new_start)
        exported = now - 8 * HOUR_MS + self.np.random(n) * (8 * HOUR_MS - 300_000)
        out: dict[str, list[Any]] = {}
        for name, ms in (
            ("migrated", migrated), ("started", started), ("last", last), ("after", after),
            ("offline", offline), ("new_start", new_start), ("new_last", new_last),
            ("exported", exported),
        ):  # fmt: skip
            stamps = ms.astype(np.int64)
            if name in ("started", "last", "offline"):  # epoch ms in legacy values
                out[name + "_ms"] = stamps.tolist()
            text = np.datetime_as_string(stamps.astype("datetime64[ms]"), unit="ms")
            out[name] = np.char.add(text, "Z").tolist()
        return out

    def write(self, folder: Path, backend: Any) -> dict[str, int]:
        """Write the exports under ``folder`` and the backend rows to ``backend``."""
        status = self._statuses()
        times = self._times()
        draws = self.np.random((len(self.user), 8)).tolist()
        batch = _Batches(folder, self.rng)
        counts = {"backend_rows": 0, "local_records": 0, "exports": 0}
        start = 0
        for u, many in enumerate(self.per_user.tolist()):
            user, storages = self.user_ids[u], [dict[str, str]()]
            if self.exporter[u] and self.rng.random() < 0.05:
                storages.append({})  # a second browser: an older copy of the same keys
            for k in range(start, start + many):
                t = self.tutorials[self.tut[k]]
                key = _Key(self, user, t, int(status[k]), draws[k], bool(self.legacy[u]))
                key.times = {name: values[k] for name, values in times.items()}
                row = key.backend_row(exporter=bool(self.exporter[u]))
                if row is not None:
                    backend.writerow(row)
                    counts["backend_rows"] += 1
                for browser, storage in enumerate(storages):
                    value = key.local_value(older=browser > 0)
                    if value is not None:
                        storage[f"tutorial_progress_{key.t.id}_{user}"] = value
            start += many
            if self.rng.random() < 0.002:  # a shared computer: another user's key
                self._foreign(storages[0])
            if not (self.exporter[u] or self.empty_envelope[u]):
                continue
            for storage in storages:
                counts["local_records"] += len(storage)
                counts["exports"] += 1
                batch.add(self._envelope(user, storage, times["exported"][start - 1]))
        batch.close()
        counts["files"] = batch.files
        return counts

    def _foreign(self, storage: dict[str, str]) -> None:
        """Put another user's progress key into ``storage`` (a shared computer)."""
        user, t = self.user_ids[self.rng.randrange(len(self.user_ids))], self.tutorials[0]
        value = {
            "tutorialId": t.id,
            "userId": user,
            "chaptersCompleted": 1,
            "totalChapters": t.total,
        }
        storage[f"tutorial_progress_{t.id}_{user}"] = json.dumps(value)

    def _envelope(self, user: str, storage: dict[str, str], exported: str) -> bytes:
        """One export line, with the other keys a real localStorage holds."""
        import orjson

        rng = self.rng
        storage["theme"] = rng.choice(("dark", "light", "system"))
        if rng.random() < 0.6:
            storage["ainative:lastVisited"] = "/tutorials/" + rng.choice(self.tutorials).id
        if rng.random() < 0.4:
            storage["cookie-consent"] = '{"analytics":true}'
        if rng.random() < 0.01:  # a flag an old build wrote: looks like progress, is not
            storage["tutorial_progress_migrated"] = "true"
        agent = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
        envelope = {"userId": user, "exportedAt": exported, "userAgent": agent}
        return orjson.dumps({**envelope, "localStorage": storage})


class _Key:
    """One background key: its chapters on each side, its backend row, its local value."""

    def __init__(
        self, pop: _Population, user: str, t: Any, status: int, draw: list[float], legacy: bool
    ) -> None:
        self.pop, self.user, self.t, self.status, self.draw = pop, user, t, status, draw
        self.legacy, self.unlocks, self.ids = legacy, pop.unlocks[t.id], pop.chapter_ids[t.id]
        self.times: dict[str, Any] = {}
        room = {BACKEND_AHEAD: 3, LOCAL_AHEAD: 2, DIVERGED: 2}.get(status, 0)
        n = 1 + int(draw[0] * (t.total - room))
        chapters = list(range(1, n + 1))
        if 2 <= n < t.total and draw[1] < 0.15:
            chapters[-2] = n + 1
        todo = [c for c in range(1, t.total + 1) if c not in chapters]
        extra = todo[: 1 + int(draw[2] * (3 if status == BACKEND_AHEAD else 2))]
        self.base = self.local = self.backend = chapters
        if status == BACKEND_AHEAD:
            self.backend = chapters + extra
        elif status == LOCAL_AHEAD:
            self.local = chapters + extra
        elif status == DIVERGED:
            self.local, self.backend = chapters + todo[1:2], chapters + todo[:1]
        self.scores: dict[str, float] = {}

    def quizzes(self, chapters: list[int]) -> dict[str, float]:
        done = set(chapters)
        for quiz, unlock in self.unlocks.items():
            if unlock in done and quiz not in self.scores:
                score = float(self.pop.rng.randint(45, 100))
                self.scores[quiz] = score - 0.5 if score > 45 and self.draw[3] < 0.15 else score
        return {q: s for q, s in self.scores.items() if self.unlocks[q] in done}

    def watch(self, chapters: list[int]) -> int:
        return round(sum(self.t.seconds[c - 1] for c in chapters) * (0.8 + 0.7 * self.draw[4]))

    def backend_row(self, *, exporter: bool) -> list[Any] | None:
        """The migrated row as COPY csv fields (``None``: the migration lost this key)."""
        if self.status == MISSING:
            return None
        tm, chapters, total = self.times, self.backend, self.t.total
        started, last, created = tm["started"], tm["last"], tm["migrated"]
        if self.backend is not self.base:
            last = tm["after"]
        if self.status == BACKEND_ONLY and (exporter or self.draw[5] < 0.5):
            started = created = tm["new_start"]  # started after the release
            last = tm["new_last"]
        complete = len(chapters) >= total
        ids = [] if self.legacy else [self.ids[c] for c in chapters]
        row = [
            self.user, self.t.id, _array_literal(ids),
            len(chapters), total, self.pop.completion(len(chapters), total),
            json.dumps(self.quizzes(chapters)), self.watch(chapters), "t" if complete else "f",
            started, last if complete else None, last, created, max(created, last),
        ]  # fmt: skip
        roll = self.draw[7]
        if roll > 0.999:  # backend anomalies the record gate reports
            row[5 if roll > 0.9997 else 7] = 150.0 if roll > 0.9997 else -1800
        return row

    def local_value(self, *, older: bool) -> str | None:
        """The localStorage value (``None``: this key has no local data)."""
        if self.status == BACKEND_ONLY:
            return None
        chapters, tm = (self.base if older else self.local), self.times
        last_ms = tm["offline_ms"] if chapters is not self.base else tm["last_ms"]
        total = self.t.total
        value: dict[str, Any] = {"tutorialId": self.t.id, "userId": self.user}
        if not self.legacy:
            value["completedChapters"] = [self.ids[c] for c in chapters]
        value["chaptersCompleted"] = len(chapters)
        value["totalChapters"] = total
        value["completionPercentage"] = 100 * len(chapters) / total
        value["quizScores"] = self.quizzes(chapters)
        value["totalWatchTime"] = self.watch(chapters)
        value["certificateEarned"] = len(chapters) >= total
        if self.legacy:
            value["startedAt"], value["lastAccessedAt"] = tm["started_ms"], last_ms
        else:
            last = tm["offline"] if chapters is not self.base else tm["last"]
            value["startedAt"], value["lastAccessedAt"] = tm["started"], last
        return _spoil(value, self.draw[6])


def _spoil(value: dict[str, Any], roll: float) -> str:
    """About 1.2% of values the way browsers get them wrong; the rest as written."""
    if roll < 0.004:  # invalid: quarantined
        kind = int(roll * 2000) % 6
        if kind == 0:
            return json.dumps(value)[:-9]
        if kind == 1:
            return "null"
        value.update(
            ({"chaptersCompleted": "several"}, {"totalChapters": None},
             {"startedAt": "last tuesday"}, {"totalWatchTime": 10**12})[kind - 2]
        )  # fmt: skip
        if value["totalChapters"] is None:
            del value["totalChapters"]
        return json.dumps(value)
    if roll < 0.008:  # numbers as strings
        value.update({k: str(value[k]) for k in ("chaptersCompleted", "totalWatchTime")})
    elif roll < 0.012:
        return json.dumps(json.dumps(value))  # double-encoded
    return json.dumps(value, separators=(",", ":"))


class _Batches:
    """Export lines into batch files of :data:`EXPORTS_PER_FILE`, in every accepted format."""

    def __init__(self, folder: Path, rng: random.Random) -> None:
        self.folder, self.rng, self.files = folder, rng, 0
        self.lines: list[bytes] = []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, line: bytes) -> None:
        self.lines.append(line)
        if len(self.lines) == EXPORTS_PER_FILE:
            self.flush()

    def flush(self) -> None:
        kind = FORMATS[self.files % len(FORMATS)]
        if kind.removesuffix(".gz") == "json":  # an array
            data = b"[" + b",\n".join(self.lines) + b"]\n"
        else:
            cut = [ln[: len(ln) // 2] if self.rng.random() < 0.0005 else ln for ln in self.lines]
            end = b"\r\n" if kind == "jsonl" else b"\n"  # Windows collectors write CRLF
            data = end.join(cut) + end  # a few lines cut short by the collector
        if kind.endswith(".gz"):
            data = gzip.compress(data, compresslevel=6, mtime=0)
        (self.folder / f"batch-{self.files:04d}.{kind}").write_bytes(data)
        self.files, self.lines = self.files + 1, []

    def close(self) -> None:
        if self.lines:
            self.flush()


# --------------------------------------------------------------------------- the database


def load_table(url: str, csv_path: Path) -> None:
    """Recreate ``reconcile_bench.tutorial_progress`` (SPEC DDL) and COPY ``csv_path`` in."""
    from psycopg import sql

    from reconcile.db import connect
    from reconcile.demo.data import BACKEND_COLUMNS
    from reconcile.quoting import qualified_table
    from reconcile.sources.backend import create_table

    target = qualified_table(SCHEMA, "tutorial_progress")
    columns = sql.SQL(", ").join(map(sql.Identifier, BACKEND_COLUMNS))
    with connect(url) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
        create_table(conn, SCHEMA, "tutorial_progress")
        stamps = sql.SQL(", ").join(map(sql.Identifier, BACKEND_COLUMNS[9:]))
        copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, FORCE_NULL ({}))").format(
            target, columns, stamps
        )  # the csv module quotes None as "": NULL in a timestamp column
        with conn.cursor().copy(copy) as stream, open(csv_path, "rb") as data:
            while block := data.read(1 << 20):
                stream.write(block)
        conn.commit()
        conn.autocommit = True  # VACUUM runs outside a transaction
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(target))


def _database(workdir: Path) -> tuple[str, Callable[[], None]]:
    """``$RECONCILE_BENCH_DATABASE_URL``, or a fresh embedded PostgreSQL in ``workdir``."""
    if url := os.environ.get("RECONCILE_BENCH_DATABASE_URL"):
        return url, lambda: None
    from reconcile.demo.embedded import start_embedded

    server = start_embedded(workdir / "pgdata")
    return server.url, server.stop


# --------------------------------------------------------------------------- the children


def _usage() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": own.ru_utime + own.ru_stime, "peak_rss_mib": own.ru_maxrss / 1024}


def _timed(work: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds of ``work()``, and its result."""
    cpu, start = _usage()["cpu"], time.perf_counter()
    out = work()
    return time.perf_counter() - start, _usage()["cpu"] - cpu, out


class _TreeMemory:
    """The peak resident memory of this process and all its descendants at once (Linux).

    ``getrusage`` gives each process's own peak; workers that run beside the parent need
    the sum at one instant, sampled from ``/proc`` every ``every`` seconds.
    """

    def __init__(self, every: float = 0.05) -> None:
        import threading

        self.peak, self.every = 0, every
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _TreeMemory:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()

    def _watch(self) -> None:
        while not self.done.wait(self.every):
            self.peak = max(self.peak, sum(map(self._resident, self._tree(os.getpid()))))

    def _tree(self, pid: int) -> list[int]:
        found, todo = [], [pid]
        while todo:
            found.append(todo.pop())
            for children in Path(f"/proc/{found[-1]}/task").glob("*/children"):
                try:
                    todo.extend(map(int, children.read_text().split()))
                except OSError:  # the task ended meanwhile
                    continue
        return found

    def _resident(self, pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self.page
        except (OSError, IndexError, ValueError):
            return 0


def child_pipeline(job: dict[str, Any]) -> dict[str, Any]:
    """The whole job, as ``reconcile run`` runs it (workers as ``--workers`` says)."""
    import inspect

    from reconcile.config import Config
    from reconcile.demo.data import DEFAULT_NOW
    from reconcile.pipeline import run_job

    imported = time.time()
    options: dict[str, Any] = {}
    takes = inspect.signature(run_job).parameters
    if "execution" in takes:
        from reconcile.partitions import Execution

        options["execution"] = Execution(workers=job["workers"])
        workers = str(job["workers"] or "default (this process)")
    else:
        workers = "1 (this run_job has no workers)"
    with _TreeMemory() as tree:
        wall, cpu, result = _timed(
            lambda: run_job(
                database_url=job["url"],
                exports=[Path(job["exports"])],
                out=Path(job["out"]),
                config=Config(schema=SCHEMA),
                now=DEFAULT_NOW,
                **options,
            )
        )
    workers_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "imported_at": imported,
        "run_job": wall,
        "run_job_cpu": cpu,
        "workers_cpu": workers_usage.ru_utime + workers_usage.ru_stime,
        "workers_peak_rss_mib": workers_usage.ru_maxrss / 1024,
        "tree_peak_rss_mib": max(tree.peak / 2**20, _usage()["peak_rss_mib"]),  # a sample may miss
        "timings": dict(result.timings),
        "workers": workers,
        "counts": {k: int(v) for k, v in result.counts.items()},
        "backend_rows": result.source.backend_rows,
        "local_records": result.source.local_records,
        "exports": result.source.exports_read,
        "files": result.source.files,
        **_usage(),
    }


def child_backend(job: dict[str, Any]) -> dict[str, Any]:
    """``load_backend`` against ``pandas.read_sql`` of the same table."""
    import pandas as pd
    import sqlalchemy

    from reconcile.db import parse_url
    from reconcile.sources.backend import load_backend

    url = parse_url(job["url"]).set(drivername="postgresql+psycopg")
    engine = sqlalchemy.create_engine(url)
    query = f'SELECT * FROM {SCHEMA}."tutorial_progress"'
    peer = _timed(lambda: len(pd.read_sql(query, engine)))
    ours = _timed(lambda: len(load_backend(job["url"], SCHEMA, "tutorial_progress").frame))
    assert peer[2] == ours[2], (peer[2], ours[2])
    return {"ours": ours[:2], "peer": peer[:2], "rows": ours[2], **_usage()}


def orjson_parse(paths: list[Path]) -> int:
    """Parse every export and every progress value with orjson alone; the values parsed.

    The floor under ``load_exports``: gunzip, split lines, ``orjson.loads`` each line (or
    the whole ``.json`` file) and each ``tutorial_progress_*`` value; nothing checked, typed
    or kept.
    """
    import orjson

    values = 0
    for path in paths:
        data = path.read_bytes()
        try:
            data = gzip.decompress(data) if path.suffix == ".gz" else data
            whole = path.name.removesuffix(".gz").endswith(".json")
            exports = orjson.loads(data) if whole else []
        except (OSError, EOFError, orjson.JSONDecodeError):
            continue  # a damaged file
        exports = exports if isinstance(exports, list) else [exports]
        for line in () if whole else data.splitlines():
            try:
                exports.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        for export in exports:
            storage = export.get("localStorage") if isinstance(export, dict) else None
            for key, value in storage.items() if isinstance(storage, dict) else ():
                if not (key.startswith("tutorial_progress_") and isinstance(value, str)):
                    continue
                try:
                    orjson.loads(value)
                except orjson.JSONDecodeError:
                    continue
                values += 1
    return values


def child_exports(job: dict[str, Any]) -> dict[str, Any]:
    """``load_exports`` against :func:`orjson_parse` of the same files."""
    from reconcile.sources.exports import iter_export_files, load_exports

    files = iter_export_files([Path(job["exports"])])
    peer = _timed(lambda: orjson_parse(files))
    ours = _timed(lambda: load_exports([Path(job["exports"])]).stats.progress_records)
    return {"ours": ours[:2], "peer": peer[:2], "values": peer[2], **_usage()}


def child_compare(job: dict[str, Any]) -> dict[str, Any]:
    """``merge_local`` + ``build_diff`` against datacompy's ``PandasCompare``, same frames.

    The frames: the backend as loaded, and the loaded local records merged one row per
    key (datacompy gets the merged frame, the easier task: reconcile's time includes the
    merge). No record gate: every loaded record and row is compared.
    """
    import pandas as pd

    from reconcile.compare.merge import merge_local
    from reconcile.compare.status import CheckedBackend, build_diff
    from reconcile.model import KEY, PROGRESS_COLUMNS
    from reconcile.sources.backend import load_backend
    from reconcile.sources.exports import load_exports

    backend = load_backend(job["url"], SCHEMA, "tutorial_progress").frame
    local = load_exports([Path(job["exports"])])
    merge = _timed(lambda: merge_local(local.records))
    merged = merge[2]
    checked = CheckedBackend(backend, pd.Series("", index=backend.index))
    diff = _timed(
        lambda: build_diff(checked, merged, quarantined=local.quarantine, foreign=local.foreign)
    )
    left, right = backend[list(PROGRESS_COLUMNS)], merged[list(PROGRESS_COLUMNS)]
    try:
        import datacompy
    except ImportError:  # an optional extra: the rest of the figures still count
        peer, version = None, None
    else:
        peer = _timed(lambda: datacompy.PandasCompare(left, right, join_columns=list(KEY)))[:2]
        version = datacompy.__version__
    return {
        "ours": (merge[0] + diff[0], merge[1] + diff[1]),
        "peer": peer,
        "keys": len(diff[2]),
        "datacompy": version,
        **_usage(),
    }


CHILDREN = {
    "pipeline": child_pipeline,
    "backend": child_backend,
    "exports": child_exports,
    "compare": child_compare,
}


def run_child(name: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run ``name`` in a fresh interpreter; its figures, and when it was started."""
    spawned = time.time()
    child = subprocess.run(
        [sys.executable, __file__, "--child", name, json.dumps(job)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if child.returncode:
        sys.exit(f"bench_run: error: the {name} child failed (exit {child.returncode})")
    return {**json.loads(child.stdout.splitlines()[-1]), "spawned_at": spawned}


# --------------------------------------------------------------------------- the table


def _commit() -> str:
    """The commit of the ``reconcile`` package measured; ``+uncommitted`` if it is edited."""
    import reconcile

    here = Path(reconcile.__file__).resolve().parent
    git = ["git", "-C", str(here)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "."],
        capture_output=True,
        text=True,
    )
    return head.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")


def _ratio(ours: float, peer: float) -> str:
    return f"{ours / peer:.2f}x" if peer > 0 else "n/a"


def report(manifest: dict[str, Any], runs: dict[str, Any], commit: str) -> str:
    """The Markdown tables of one run: the job's stages, then each peer beside its stage."""
    run, back, exp, cmp = (runs[k] for k in ("pipeline", "backend", "exports", "compare"))
    startup = run["imported_at"] - run["spawned_at"]
    rest = run["run_job"] - sum(run["timings"].values())
    peers = (
        ("`load_backend`", back, "`pandas.read_sql` (SQLAlchemy + psycopg)"),
        ("`load_exports`", exp, "orjson-only parse of every line and value"),
        ("`merge_local` + `build_diff`", cmp, f"datacompy {cmp['datacompy']} `PandasCompare`"),
    )
    rows = [
        f"| {ours} | {r['ours'][0]:.2f} | {peer} | {r['peer'][0]:.2f} | "
        f"**{_ratio(r['ours'][0], r['peer'][0])}** / {_ratio(r['ours'][1], r['peer'][1])} |"
        if r["peer"]
        else f"| {ours} | {r['ours'][0]:.2f} | datacompy not installed "
        "(`pip install -e '.[bench]'`) | | n/a |"
        for ours, r, peer in peers
    ]
    return "\n".join(
        [
            f"{manifest['keys']:,} keys over {manifest['users']:,} users (+ the demo's planted "
            f"ones): {run['backend_rows']:,} backend rows, {run['local_records']:,} local "
            f"records in {run['exports']:,} exports, {run['files']} files; commit {commit}, "
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, workers {run['workers']}, "
            f"load average {os.getloadavg()[0]:.2f}",
            "",
            "statuses: " + ", ".join(f"{k} {v:,}" for k, v in run["counts"].items() if v),
            "",
            "| `run_job` stage | seconds |",
            "|---|---:|",
            f"| start-up (interpreter + imports) | {startup:.2f} |",
            *(f"| `{name}` | {seconds:.2f} |" for name, seconds in run["timings"].items()),
            f"| rest of `run_job` (write, history, lock) | {rest:.2f} |",
            f"| **total** (start-up + `run_job`) | **{startup + run['run_job']:.2f}** |",
            f"| CPU (`run_job`; its worker processes) | {run['run_job_cpu']:.2f}; "
            f"{run['workers_cpu']:.2f} |",
            f"| **peak RSS**, all processes at once (sampled every 50 ms) | "
            f"**{run['tree_peak_rss_mib'] / 1024:.2f} GiB** |",
            f"| peak RSS of the run's process; of its largest worker | "
            f"{run['peak_rss_mib'] / 1024:.2f} GiB; {run['workers_peak_rss_mib'] / 1024:.2f} GiB |",
            "",
            "| on the same data, alone | seconds | peer | seconds | ratio (wall / CPU) |",
            "|---|---:|---|---:|---:|",
            *rows,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys to generate")
    parser.add_argument("--users", type=int, help="users (default: keys / 5)")
    parser.add_argument("--seed", type=int, default=20260120)
    parser.add_argument("--cache", type=Path, help="dataset cache folder")
    parser.add_argument("--workers", type=int, help="passed to run_job when it takes it")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child[0]](json.loads(args.child[1]))))
        return
    if args.keys < 1 or (args.users is not None and args.users < 1):
        parser.error("--keys and --users must be positive")
    users = args.users or max(1, args.keys // 5)
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    cache = args.cache or Path(xdg) / "reconcile-bench"
    for stop_on in (signal.SIGTERM, signal.SIGINT):  # clean up the server and the folders
        signal.signal(stop_on, lambda number, _: sys.exit(f"bench_run: stopped by signal {number}"))
    commit = _commit()  # the code measured: others may commit while this runs
    folder = dataset_folder(cache, args.keys, users, args.seed)
    manifest = json.loads((folder / "manifest.json").read_text())
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # the embedded server runs as an unprivileged user under root
        url, stop = _database(work)
        try:
            clock = time.perf_counter()
            load_table(url, folder / "backend.csv")
            print(f"database: COPY in {time.perf_counter() - clock:.1f} s", file=sys.stderr)
            job = {
                "url": url,
                "exports": str(folder / "exports"),
                "out": str(work / "out"),
                "workers": args.workers,
            }
            runs = {name: run_child(name, job) for name in CHILDREN}
        finally:
            stop()
    print(report(manifest, runs, commit))


if __name__ == "__main__":
    main()
