"""Time the compare stage (merge of local records + one status per key) on N keys.

    python bench/bench_compare.py --keys 1000000 [--mix realistic|random] [--datacompy]

``--mix realistic`` (default): ~N/5 users with 5 tutorials each, chapter lists, quiz
scores, timestamps; about 45% of keys backend-only, 40% in sync, the rest behind, ahead,
missing, diverged or in conflict, and a third of the local keys with a second browser.
``--mix random``: every key has a backend row and random chapter counts on both sides, so
most keys differ (a worst case for the text of the differences). Prints seconds per step
and peak RSS; with ``--datacompy`` (when datacompy is importable) also datacompy's
``PandasCompare`` on the same two frames and the ratio.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from reconcile.compare.merge import merge_local
from reconcile.compare.status import CheckedBackend, build_diff, user_totals
from reconcile.model import KEY, PROGRESS_COLUMNS, TIMESTAMP_COLUMNS
from reconcile.rules import completion

T0 = pd.Timestamp("2025-09-01", tz="UTC").value
DAY = 86_400 * 10**9
TUTORIALS = [(f"tutorial-{t:02d}", 6 + t % 10) for t in range(20)]


def chapters_of(tutorial: int, count: int) -> tuple[str, ...]:
    name = TUTORIALS[tutorial][0]
    return tuple(f"{name}/ch-{c:02d}" for c in range(1, count + 1))


def progress(
    users: np.ndarray, tutorials: np.ndarray, counts: np.ndarray, watch: np.ndarray, seed: int
) -> pd.DataFrame:
    """Progress rows: the first ``counts`` chapters, a quiz every 4 chapters, timestamps."""
    rng = np.random.default_rng(seed)
    n = len(users)
    totals = np.array([TUTORIALS[t][1] for t in range(len(TUTORIALS))])[tutorials]
    counts = np.minimum(counts, totals)
    started = T0 + rng.integers(0, 100, n) * DAY + rng.integers(0, DAY, n)
    last = started + rng.integers(0, 40 * DAY, n)
    completed = np.where(counts == totals, last, np.iinfo(np.int64).min)
    stamps = {
        "started_at": started,
        "completed_at": completed,
        "last_accessed_at": last,
    }
    frame = pd.DataFrame(
        {
            "user_id": pd.Series([f"user-{u:07d}" for u in users], dtype=object),
            "tutorial_id": pd.Series([TUTORIALS[t][0] for t in tutorials], dtype=object),
            "completed_chapters": pd.Series(
                [chapters_of(t, c) for t, c in zip(tutorials, counts, strict=True)], dtype=object
            ),
            "chapters_completed": pd.array(counts, dtype="Int64"),
            "total_chapters": pd.array(totals, dtype="Int64"),
            "completion_percentage": [
                completion(int(c), int(t)) for c, t in zip(counts, totals, strict=True)
            ],
            "quiz_scores": pd.Series(
                [{f"quiz-{q}": 60.0 + q for q in range(c // 4)} for c in counts], dtype=object
            ),
            "total_watch_time": pd.array(watch, dtype="Int64"),
            "certificate_earned": counts == totals,
            **{c: pd.to_datetime(v, utc=True) for c, v in stamps.items()},
        }
    )
    return frame[list(PROGRESS_COLUMNS)]


def realistic(keys: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    users = np.arange(keys) // 5
    tutorials = (users * 7 + np.arange(keys) % 5) % len(TUTORIALS)
    counts = rng.integers(0, 16, keys)
    watch = counts * 300 + rng.integers(0, 300, keys)
    kind = rng.choice(
        ["backend_only", "in_sync", "backend_ahead", "missing", "local_ahead", "diverged", "total"],
        p=[0.45, 0.40, 0.08, 0.03, 0.02, 0.01, 0.01],
        size=keys,
    )
    on_backend = kind != "missing"
    backend = progress(users[on_backend], tutorials[on_backend], counts[on_backend],
                       watch[on_backend], seed=1)  # fmt: skip
    backend["id"] = pd.array(range(1, len(backend) + 1), dtype="Int64")
    local_keys = kind != "backend_only"
    local_counts = counts + np.select(
        [kind == "backend_ahead", kind == "local_ahead"], [-2, 2], 0
    ).clip(-counts, None)
    local_watch = watch + np.select([kind == "diverged"], [500], 0)
    local_counts = np.where(kind == "diverged", np.maximum(local_counts - 1, 0), local_counts)
    local = progress(users[local_keys], tutorials[local_keys], local_counts[local_keys],
                     local_watch[local_keys], seed=1)  # fmt: skip
    local.loc[kind[local_keys] == "total", "total_chapters"] += 1
    second = local.sample(frac=1 / 3, random_state=3)  # an older snapshot in another browser
    second["completed_chapters"] = [c[: len(c) // 2] for c in second["completed_chapters"]]
    second["chapters_completed"] = [len(c) for c in second["completed_chapters"]]
    second["total_watch_time"] //= 2
    for column in TIMESTAMP_COLUMNS:
        second[column] = second[column] - pd.Timedelta(days=3)
    return backend, pd.concat([local, second], ignore_index=True)


def random_mix(keys: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    users = np.arange(keys)
    backend = progress(users, users % 20, rng.integers(0, 16, keys), np.full(keys, 600), 1)
    backend["id"] = pd.array(range(1, keys + 1), dtype="Int64")
    local_users = np.concatenate([users[::2], users[: keys // 10]])
    n = len(local_users)
    local = progress(local_users, local_users % 20, rng.integers(0, 16, n), np.full(n, 600), 2)
    return backend, local


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--mix", choices=("realistic", "random"), default="realistic")
    parser.add_argument("--datacompy", action="store_true")
    options = parser.parse_args()
    backend, local = (realistic if options.mix == "realistic" else random_mix)(options.keys)
    empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in KEY})
    checked = CheckedBackend(backend, pd.Series("", index=backend.index))
    inputs_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    begin = time.perf_counter()
    merged = merge_local(local)
    merged_at = time.perf_counter()
    diff = build_diff(checked, merged, quarantined=empty, foreign=empty)
    diff_at = time.perf_counter()
    totals = user_totals(diff)
    end = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    statuses = diff["status"].value_counts().to_dict()
    print(
        f"keys={len(diff)} local_records={len(local)} merge={merged_at - begin:.2f}s "
        f"diff={diff_at - merged_at:.2f}s totals={end - diff_at:.2f}s "
        f"total={end - begin:.2f}s peak_rss={rss:.0f}MiB (inputs {inputs_rss:.0f}MiB) "
        f"at_risk={totals.at_risk}\n"
        f"statuses={statuses}"
    )
    if options.datacompy:
        import datacompy

        start = time.perf_counter()
        datacompy.PandasCompare(backend, merged, join_columns=list(KEY)).report()
        took = time.perf_counter() - start
        print(f"datacompy={took:.2f}s compare/datacompy={(end - begin) / took:.2f}")


if __name__ == "__main__":
    main()
