"""Time the record gate and the Great Expectations checks on 1,000,000 backend rows.

Not a test: run it by hand, e.g. ``python bench/bench_validation.py --rows 1000000``.
Prints seconds for each step and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd


def build_backend(rows: int, *, seed: int = 0) -> pd.DataFrame:
    """``rows`` backend rows, 4 tutorials per user, 1 in 1,000 with completion 150%."""
    rng = np.random.default_rng(seed)
    user = np.arange(rows) // 4
    tutorial = np.arange(rows) % 4 + (user % 50) * 4  # 200 tutorials, keys unique
    total = 8 + tutorial % 8  # one total per tutorial
    done = rng.integers(0, total + 1)
    chapter_names = [f"ch-{i:02d}" for i in range(16)]
    chapters = [tuple(chapter_names[:n]) for n in done.tolist()]
    quiz = [{"q1": 80.0, "q2": 95.0} if n > 2 else {} for n in done.tolist()]
    now = datetime(2026, 1, 20, tzinfo=UTC)
    created = pd.Timestamp(now) - pd.to_timedelta(rng.integers(3600, 90 * 86400, rows), unit="s")
    updated = created + pd.to_timedelta(rng.integers(0, 3600, rows), unit="s")
    pct = np.round(100 * done / total, 2)
    frame = pd.DataFrame(
        {
            "user_id": pd.Series([f"u-{u}" for u in user.tolist()], dtype=object),
            "tutorial_id": pd.Series([f"t-{t}" for t in tutorial.tolist()], dtype=object),
            "completed_chapters": pd.Series(chapters, dtype=object),
            "chapters_completed": pd.array(done, dtype="Int64"),
            "total_chapters": pd.array(total, dtype="Int64"),
            "completion_percentage": pct,
            "quiz_scores": pd.Series(quiz, dtype=object),
            "total_watch_time": pd.array(done * 300, dtype="Int64"),
            "certificate_earned": pct == 100,
            "started_at": created,
            "completed_at": pd.Series(updated).where(pct == 100),
            "last_accessed_at": updated,
            "id": pd.array(np.arange(1, rows + 1), dtype="Int64"),
            "created_at": created,
            "updated_at": updated,
        }
    )
    for column in ("started_at", "completed_at", "last_accessed_at", "created_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[ns, UTC]")
    bad = rng.choice(rows, size=max(1, rows // 1000), replace=False)
    frame.loc[bad, "completion_percentage"] = 150.0
    return frame


def _peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 1024 / 1024


@contextmanager
def _timer(label: str) -> Iterator[Callable[[str], None]]:
    """Print wall and CPU seconds of the block (CPU time is steadier on a busy machine)."""
    notes: list[str] = []
    wall, cpu = time.perf_counter(), time.process_time()
    yield notes.append
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label}: {wall:.2f} s wall, {cpu:.2f} s CPU" + "".join(f" ({n})" for n in notes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="calls of each step")
    args = parser.parse_args()

    started = time.perf_counter()
    from reconcile.config import Config
    from reconcile.outputs.history_store import load_history, record_night
    from reconcile.sources.backend import empty_backend_frame
    from reconcile.validate.nights import History, regression_checks
    from reconcile.validate.records import validate_backend
    from reconcile.validate.suites import run_checks

    print(f"import: {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    backend = build_backend(args.rows)
    print(f"build {len(backend):,} rows: {time.perf_counter() - started:.2f} s")
    print(f"peak RSS after build: {_peak_rss_mib():.0f} MiB")
    config = Config()
    now = datetime(2026, 1, 20, tzinfo=UTC) + timedelta(hours=1)

    for attempt in range(1, args.repeat + 1):
        with _timer(f"validate_backend #{attempt}") as note:
            gate = validate_backend(backend, now=now, config=config)
            note(f"{int((~gate.valid).sum()):,} invalid rows, {len(gate.failures):,} failures")
    print(f"peak RSS after validate_backend: {_peak_rss_mib():.0f} MiB")

    local = empty_backend_frame().drop(columns=["id", "created_at", "updated_at"])
    with tempfile.TemporaryDirectory() as docs:
        for attempt in range(1, args.repeat + 1):
            label = "includes importing GX" if attempt == 1 else "GX imported"
            with _timer(f"run_checks #{attempt} ({label}, Data Docs built)") as note:
                outcome = run_checks(
                    backend,
                    local,
                    config=config,
                    history=History.empty(),
                    now=now,
                    docs_dir=Path(docs) / str(attempt),
                )
                failed = [c.name for c in outcome.checks if not c.success]
                note(f"{len(outcome.checks)} checks, failed: {failed}")
        print(f"peak RSS after run_checks: {_peak_rss_mib():.0f} MiB")

        # Not asked for, but the same night also does these (history.py).
        out = Path(docs) / "out"
        with _timer("record_night (good: metrics line + snapshot)"):
            record_night(out, "bench-1", {}, backend, good=True, now=now)
        with _timer("load_history"):
            history = load_history(out)
        with _timer("regression_checks"):
            regression_checks(history, backend)
    print(f"peak RSS: {_peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
