"""Time ``load_backend`` on a million backend rows against a plain COPY (not a test).

    python bench/bench_backend.py [--rows 1000000] [--pgdata DIR] [--repeat 3]

Fills the SPEC's ``tutorial_progress`` table of an embedded PostgreSQL (kept in
``--pgdata`` between runs, refilled only when ``--rows`` changes): ~7 chapter ids and 2-3
quiz scores a row, 1 row in 20 count-only (empty array, positive count), a third of
``completed_at`` null. Then, in this process, for each repeat: the floor, a plain
``COPY (SELECT * ...) TO STDOUT (FORMAT csv)`` read by ``pyarrow.csv.read_csv``, and
``load_backend`` itself. Prints the best wall and CPU seconds of each, their ratio and the
peak RSS (of the whole process: the last figure is the larger of the two).
"""

from __future__ import annotations

import argparse
import io
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
from psycopg import sql

from reconcile.db import connect
from reconcile.demo.embedded import start_embedded
from reconcile.quoting import qualified_table
from reconcile.sources.backend import create_table, load_backend

SCHEMA, TABLE = "public", "tutorial_progress"

_FILL = """
INSERT INTO {table} (user_id, tutorial_id, completed_chapters, chapters_completed,
    total_chapters, completion_percentage, quiz_scores, total_watch_time, certificate_earned,
    started_at, completed_at, last_accessed_at, created_at, updated_at)
SELECT 'u-' || (n / 5), 'tutorial-' || (n %% 5) || '-' || (n %% 37),
       CASE WHEN n %% 20 = 0 THEN '{{}}'::text[]
            ELSE ARRAY(SELECT 'ch-' || c FROM generate_series(1, 3 + n %% 8) AS c) END,
       3 + n %% 8, 12, round(100 * (3 + n %% 8) / 12.0, 2),
       CASE WHEN n %% 2 = 0 THEN jsonb_build_object('quiz-1', n %% 101, 'quiz-2', 92.5)
            ELSE jsonb_build_object('quiz-1', 80, 'quiz-2', n %% 97, 'quiz-3', 75) END,
       n %% 20000, n %% 3 = 0,
       t, CASE WHEN n %% 3 = 0 THEN t + interval '9 days' END, t + interval '10 days',
       t, t + interval '10 days 1 second'
  FROM generate_series(1, %s) AS n,
       LATERAL (SELECT timestamptz '2025-10-01 00:00:00+00' + n * interval '1.234567 s') AS s(t)
"""


def fill(url: str, rows: int) -> None:
    """(Re)create the table with ``rows`` rows, unless it holds that many already."""
    table = qualified_table(SCHEMA, TABLE)
    with connect(url) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{TABLE}",)).fetchone()
        if exists and exists[0] is not None:
            count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
            if count and count[0] == rows:
                return
            conn.execute(sql.SQL("DROP TABLE {}").format(table))
        create_table(conn, SCHEMA, TABLE)
        started = time.perf_counter()
        conn.execute(sql.SQL(_FILL).format(table=table), (rows,))
        conn.commit()
    with connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))
    print(f"filled {rows:,} rows in {time.perf_counter() - started:.1f}s")


def plain_copy(url: str) -> Any:
    """The floor: every column as PostgreSQL prints it, parsed by pyarrow."""
    copy = sql.SQL("COPY (SELECT * FROM {}) TO STDOUT (FORMAT csv)").format(
        qualified_table(SCHEMA, TABLE)
    )
    buffer = io.BytesIO()
    with connect(url) as conn, conn.cursor().copy(copy) as stream:
        for chunk in stream:
            buffer.write(chunk)
    buffer.seek(0)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
    )


def best(label: str, repeat: int, run: Callable[[], Any]) -> float:
    """Run ``repeat`` times; print and return the best wall time (and its CPU time)."""
    figures = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        figures.append((time.perf_counter() - wall, time.process_time() - cpu))
        del result
    wall, cpu = min(figures)
    print(f"{label}: {wall:.2f}s wall, {cpu:.2f}s CPU (best of {repeat})")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pgdata", type=Path, default=Path("/tmp/reconcile-bench-backend"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = start_embedded(args.pgdata)
    try:
        fill(server.url, args.rows)
        floor = best("plain COPY csv -> pyarrow", args.repeat, lambda: plain_copy(server.url))
        load = best(
            "load_backend", args.repeat, lambda: load_backend(server.url, SCHEMA, TABLE).frame
        )
    finally:
        server.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"load_backend / plain COPY: {load / floor:.2f}x; peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
