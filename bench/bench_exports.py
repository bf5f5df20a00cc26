"""Time ``load_exports`` on a million realistic progress records (not a test).

    python bench/bench_exports.py [--records 1000000] [--dir DIR] [--profile]

Writes NDJSON exports into a temporary folder (or reuses ``--dir`` when it already holds
them): one export a line, ~5 progress keys each plus a ``theme`` key, values
``JSON.stringify``'d as the browser does, ISO timestamps and some epoch milliseconds, and
~1% bad records (broken JSON, wrong types, disagreeing ids, foreign keys, broken lines).
Generation is not measured: the load runs in a fresh child process, so that its peak RSS
(``resource.getrusage``) is the loader's alone. Prints one summary line: wall seconds,
records/s, CPU seconds, peak RSS, and the load average (the machine may be busy with
other work, which stretches the wall time but hardly the CPU time); then the CPU seconds of
the floor, an orjson-only parse of every line and value, and the loader's ratio to it.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

KEYS_PER_EXPORT = 5
EXPORTS_PER_FILE = 20_000
TUTORIALS = [
    "intro-to-rag",
    "vector_dbs-101",
    "prompt-engineering",
    "fine_tuning",
    "evals-basics",
    "agents-201",
    "embeddings",
    "python_for-ml",
    "sql-basics",
    "llm-ops",
]
T0_MS = 1_760_000_000_000  # 2025-10-09
DAY_MS = 86_400_000


def _iso(ms: int) -> str:
    """``Date.prototype.toISOString()``: millisecond precision, ``Z``."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _progress(rng: random.Random, tutorial: str, user: str) -> dict[str, Any]:
    total = rng.randint(8, 20)
    done = rng.randint(5, min(10, total))
    chapters = [f"ch-{i}" for i in rng.sample(range(1, total + 1), done)]
    started = T0_MS + rng.randrange(90 * DAY_MS)
    accessed = started + rng.randrange(30 * DAY_MS)
    value: dict[str, Any] = {
        "tutorialId": tutorial,
        "userId": user,
        "completedChapters": chapters,
        "chaptersCompleted": done,
        "totalChapters": total,
        "completionPercentage": round(100 * done / total, 2),
        "quizScores": {f"quiz-{q}": rng.choice([50, 75, 80, 92.5, 100]) for q in range(1, 4)}
        if rng.random() < 0.5
        else {f"quiz-{q}": rng.randint(0, 100) for q in range(1, 3)},
        "totalWatchTime": rng.randint(60, 20_000),
        "certificateEarned": done == total,
        "startedAt": _iso(started),
        # Some client builds wrote Date.now() instead of an ISO string.
        "lastAccessedAt": accessed if rng.random() < 0.2 else _iso(accessed),
    }
    if done == total:
        value["completedAt"] = _iso(accessed)
    return value


def _bad_value(rng: random.Random, value: dict[str, Any], user: str) -> tuple[str, object]:
    """A broken record (~1%): the key's tutorial, and the raw localStorage value."""
    kind = rng.randrange(8)
    tutorial = value["tutorialId"]
    if kind == 0:
        return tutorial, json.dumps(value)[:-7]  # truncated JSON
    if kind == 1:
        return tutorial, "null"
    if kind == 2:
        value["chaptersCompleted"] = "several"
    elif kind == 3:
        value["startedAt"] = "last tuesday"
    elif kind == 4:
        value["tutorialId"] = "someone-else"
    elif kind == 5:
        del value["totalChapters"]
    elif kind == 6:
        value["quizScores"] = {"quiz-1": "NaN?"}
    else:
        value["totalWatchTime"] = 1e30
    return tutorial, json.dumps(value)


def _export(rng: random.Random, n: int, records: int) -> tuple[bytes, int]:
    user = f"u-{n}" if n % 7 else f"user_{n}-x"
    storage: dict[str, object] = {"theme": rng.choice(["dark", "light"])}
    keys = min(KEYS_PER_EXPORT, records)
    for tutorial in rng.sample(TUTORIALS, keys):
        value = _progress(rng, tutorial, user)
        roll = rng.random()
        owner = user
        if roll < 0.01:
            tutorial, raw = _bad_value(rng, value, user)
        elif roll < 0.012:  # a shared computer: another user's key
            owner = f"u-{rng.randrange(10**6)}"
            value["userId"] = owner
            raw = json.dumps(value)
        elif roll < 0.02:  # older builds: numbers as strings, double-encoded
            value["totalChapters"] = str(value["totalChapters"])
            raw = json.dumps(json.dumps(value))
        else:
            raw = json.dumps(value, separators=(",", ":"))
        storage[f"tutorial_progress_{tutorial}_{owner}"] = raw
    envelope = {
        "userId": user,
        "exportedAt": _iso(T0_MS + 100 * DAY_MS + n),
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
        "localStorage": storage,
    }
    line = orjson.dumps(envelope)
    if rng.random() < 0.0005:
        line = line[: len(line) // 2]  # a line cut short by the collector
    return line + b"\n", keys


def generate(folder: Path, records: int, seed: int = 1) -> None:
    """Write exports holding ``records`` progress keys into ``folder``, streamed."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = n = 0
    while written < records:
        with open(folder / f"exports-{n // EXPORTS_PER_FILE:04d}.ndjson", "wb") as out:
            for _ in range(EXPORTS_PER_FILE):
                if written >= records:
                    break
                line, keys = _export(rng, n, records - written)
                out.write(line)
                written += keys
                n += 1
    (folder / "records.txt").write_text(str(records))


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def orjson_floor(folder: Path) -> float:
    """CPU seconds of the floor: orjson parses every line, and every value of every line."""
    started = _cpu(resource.getrusage(resource.RUSAGE_SELF))
    for path in sorted(folder.glob("*.ndjson")):
        with open(path, "rb") as lines:
            for line in lines:
                try:
                    storage = orjson.loads(line)["localStorage"]
                except orjson.JSONDecodeError:
                    continue
                for value in storage.values():
                    with contextlib.suppress(orjson.JSONDecodeError):
                        orjson.loads(value)
    return _cpu(resource.getrusage(resource.RUSAGE_SELF)) - started


def measure(folder: Path, profile: bool) -> dict[str, Any]:
    """Load ``folder`` once (in this process) and return the figures, the floor's last."""
    from reconcile.sources.exports import load_exports

    profiler = cProfile.Profile() if profile else None
    cpu_before = _cpu(resource.getrusage(resource.RUSAGE_SELF))
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    load = load_exports([folder])
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF)
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    return {
        "seconds": seconds,
        "records": load.stats.progress_records,
        "kept": len(load.records),
        "foreign": len(load.foreign),
        "quarantined": len(load.quarantine),
        "cpu_seconds": _cpu(own) - cpu_before,
        "peak_rss_mb": own.ru_maxrss / 1024,
        "floor_cpu_seconds": orjson_floor(folder),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, help="reuse (or create and keep) this folder")
    parser.add_argument("--profile", action="store_true", help="cProfile the load (slower)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.profile)))
        return

    folder = args.dir or Path(tempfile.mkdtemp(prefix="reconcile-bench-exports-"))
    marker = folder / "records.txt"
    try:
        if not (marker.exists() and marker.read_text() == str(args.records)):
            shutil.rmtree(folder, ignore_errors=True)
            started = time.perf_counter()
            generate(folder, args.records)
            print(f"generated in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        command = [sys.executable, __file__, "--measure", str(folder)]
        command += ["--profile"] if args.profile else []
        child = subprocess.run(
            command,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        result = json.loads(child.stdout.splitlines()[-1])
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"load_exports: {result['records']:,} records in {result['seconds']:.2f}s"
        f" ({result['records'] / result['seconds']:,.0f} records/s);"
        f" kept {result['kept']:,}, foreign {result['foreign']:,},"
        f" quarantined {result['quarantined']:,}; CPU {result['cpu_seconds']:.1f}s;"
        f" peak RSS {result['peak_rss_mb']:,.0f} MB; load average {load}"
    )
    floor = result["floor_cpu_seconds"]
    print(
        f"orjson-only parse of every line and value: CPU {floor:.1f}s;"
        f" load_exports / floor (CPU): {result['cpu_seconds'] / floor:.2f}x"
    )


if __name__ == "__main__":
    main()
