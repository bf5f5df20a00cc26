"""Time a 100,000-key repair: half inserts, half merges (not a test).

    python bench/bench_repair.py [--keys 100000]

Uses ``$RECONCILE_BENCH_DATABASE_URL`` (its database must allow CREATE DATABASE) or starts
an embedded PostgreSQL in a temporary folder. Loads the backend rows, builds the scripts,
then applies repair.sql with ``psql -v ON_ERROR_STOP=1 -f`` on one fresh database and with
``apply_repair`` on another, and applies it once more (a no-op). Prints seconds.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from reconcile.config import Config
from reconcile.db import libpq_url, parse_url
from reconcile.model import DIFF_COLUMNS, PROGRESS_FIELDS, Action, Status
from reconcile.repair.apply import apply_repair
from reconcile.repair.scripts import build_repair_scripts
from reconcile.sources.backend import create_table

T0 = pd.Timestamp("2026-01-01T10:00:00Z")


@contextmanager
def server() -> Iterator[str]:
    url = os.environ.get("RECONCILE_BENCH_DATABASE_URL")
    if url:
        yield url
        return
    from reconcile.demo.embedded import start_embedded

    folder = Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    folder.chmod(0o755)  # the embedded server may run as another user
    embedded = start_embedded(folder / "pgdata")
    try:
        yield embedded.url
    finally:
        embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(url: str, name: str, keys: int) -> str:
    """A new database holding ``keys`` backend rows (user ``b<i>``, chapters c1, c2)."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    target = parse_url(url).set(database=name).render_as_string(hide_password=False)
    buffer = io.StringIO()
    for i in range(keys):
        buffer.write(
            f'b{i}\ttut-{i % 50}\t{{c1,c2}}\t2\t10\t20.00\t{{"q1": 60}}\t120\tf\t'
            "2025-12-01 10:00:00+00\t\\N\t2026-01-10 10:00:00+00\n"
        )
    with psycopg.connect(libpq_url(target), autocommit=True) as conn:
        create_table(conn, "public", "tutorial_progress")
        copy = (
            "COPY tutorial_progress (user_id, tutorial_id, completed_chapters, chapters_completed,"
            " total_chapters, completion_percentage, quiz_scores, total_watch_time,"
            " certificate_earned, started_at, completed_at, last_accessed_at) FROM STDIN"
        )
        with conn.cursor().copy(copy) as stream:
            stream.write(buffer.getvalue())
        conn.execute("ANALYZE tutorial_progress")
    return target


def diff(keys: int) -> pd.DataFrame:
    """``keys`` repairs: the even half merges into existing rows, the odd half inserts."""
    base: dict[str, Any] = dict.fromkeys(DIFF_COLUMNS)
    rows = []
    for i in range(keys):
        merge = i % 2 == 0
        status = Status.LOCAL_AHEAD if merge else Status.MISSING_IN_BACKEND
        row = dict(base)
        row.update(
            user_id=f"b{i}" if merge else f"new-{i}",
            tutorial_id=f"tut-{i % 50}",
            status=status.value,
            action=(Action.MERGE if merge else Action.INSERT).value,
            reason="",
            certificate_claim=False,
        )
        local = {
            "completed_chapters": ("c1", "c2", "c3", f"extra'{i}"),
            "chapters_completed": 4,
            "total_chapters": 10,
            "completion_percentage": 40.0,
            "quiz_scores": {"q1": 80.0, "q2": 55.5},
            "total_watch_time": 300,
            "certificate_earned": False,
            "started_at": T0 - pd.Timedelta(days=40),
            "completed_at": pd.NaT,
            "last_accessed_at": T0 + pd.Timedelta(days=i % 7),
        }
        row.update({f"local_{f}": local[f] for f in PROGRESS_FIELDS})
        rows.append(row)
    return pd.DataFrame(rows, columns=list(DIFF_COLUMNS))


def timed(label: str, action: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = action()
    print(f"{label:<44}{time.perf_counter() - start:8.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    keys = parser.parse_args().keys
    work = Path(tempfile.mkdtemp(prefix="reconcile-bench-out-"))
    with server() as url:
        frame = timed(f"build a diff of {keys} keys", lambda: diff(keys))
        scripts = timed(
            "build_repair_scripts",
            lambda: build_repair_scripts(
                frame, run_id="bench", schema="public", table="tutorial_progress"
            ),
        )
        path = work / "repair.sql"
        path.write_text(scripts.repair, encoding="utf-8")
        size = path.stat().st_size / 1e6
        print(f"repair.sql: {size:.1f} MB, counts {scripts.counts}")

        target = timed(
            "load backend rows (psql database)", lambda: fresh_database(url, "bench_psql", keys)
        )
        command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path), libpq_url(target)]
        done = timed(
            "psql -v ON_ERROR_STOP=1 -f repair.sql",
            lambda: subprocess.run(command, capture_output=True, text=True),
        )
        if done.returncode:
            raise SystemExit(done.stderr)
        print(done.stdout.strip())

        target = timed(
            "load backend rows (apply database)", lambda: fresh_database(url, "bench_apply", keys)
        )
        report = timed(
            "apply_repair", lambda: apply_repair(target, work, dry_run=False, config=Config())
        )
        print(f"  inserted {report.inserted}, merged {report.merged}, unchanged {report.unchanged}")
        again = timed(
            "apply_repair again (changes nothing)",
            lambda: apply_repair(target, work, dry_run=False, config=Config()),
        )
        print(f"  inserted {again.inserted}, merged {again.merged}, unchanged {again.unchanged}")
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            for name in ("bench_psql", "bench_apply"):
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
