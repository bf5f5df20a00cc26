"""Time the pure comparison (merge of local records + one status per key) on N keys.

    python bench/bench_compare.py --keys 1000000

Synthetic frames: every key has a backend row; half the keys have one local record and
a tenth a second browser, chapter sets drawn at random (so most keys differ: a worst
case for the per-key work). Prints seconds per step and peak RSS.
"""

from __future__ import annotations

import argparse
import random
import resource
import time

import pandas as pd

from reconcile.compare.merge import merge_local
from reconcile.compare.status import CheckedBackend, build_diff, user_totals
from reconcile.model import PROGRESS_COLUMNS
from reconcile.rules import completion

CHAPTERS = [f"ch-{i:02d}" for i in range(10)]


def frame(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    n = len(rows)
    nat = pd.Series([pd.NaT] * n, dtype="datetime64[ns, UTC]")
    out = pd.DataFrame(
        {
            "user_id": [u for u, _, _ in rows],
            "tutorial_id": ["intro-to-rag"] * n,
            "completed_chapters": [tuple(CHAPTERS[:c]) for _, c, _ in rows],
            "chapters_completed": pd.array([c for _, c, _ in rows], dtype="Int64"),
            "total_chapters": pd.array([10] * n, dtype="Int64"),
            "completion_percentage": [completion(c, 10) for _, c, _ in rows],
            "quiz_scores": [{"q1": float(10 * c)} for _, c, _ in rows],
            "total_watch_time": pd.array([w for _, _, w in rows], dtype="Int64"),
            "certificate_earned": [False] * n,
            "started_at": nat,
            "completed_at": nat,
            "last_accessed_at": nat,
        }
    )
    return out[list(PROGRESS_COLUMNS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    keys = parser.parse_args().keys
    rng = random.Random(7)
    backend = frame([(f"u{i}", rng.randint(0, 10), 600) for i in range(keys)])
    backend["id"] = pd.array(range(1, keys + 1), dtype="Int64")
    local = frame(
        [(f"u{i}", rng.randint(0, 10), 600) for i in range(0, keys, 2)]
        + [(f"u{i}", rng.randint(0, 10), 600) for i in range(0, keys // 10)]
    )
    empty = pd.DataFrame({"user_id": [], "tutorial_id": []})
    checked = CheckedBackend(backend, pd.Series("", index=backend.index))

    begin = time.perf_counter()
    merged = merge_local(local)
    merged_at = time.perf_counter()
    diff = build_diff(checked, merged, quarantined=empty, foreign=empty)
    diff_at = time.perf_counter()
    totals = user_totals(diff)
    end = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"keys={keys} local_records={len(local)} merge={merged_at - begin:.2f}s "
        f"diff={diff_at - merged_at:.2f}s totals={end - diff_at:.2f}s "
        f"total={end - begin:.2f}s peak_rss={rss:.0f}MiB at_risk={totals.at_risk}"
    )


if __name__ == "__main__":
    main()
