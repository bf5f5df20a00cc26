"""``bench/bench_run.py`` end to end on 2,000 keys, so that the benchmark cannot rot.

A smoke test, not a timing: it checks that the dataset is generated and cached, that
PostgreSQL takes it, and that every stage and every peer is measured and printed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_run.py"
PEERS = ("`pandas.read_sql`", "orjson-only parse", "`PandasCompare`")


def _bench(cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), "--keys", "2000", "--cache", str(cache)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _seconds(table: str, row: str) -> float:
    match = re.search(rf"^\| {re.escape(row)} \| \**([0-9.]+)", table, re.MULTILINE)
    assert match, f"no row {row!r} in:\n{table}"
    return float(match.group(1))


def test_bench_run_measures_every_stage_and_peer(tmp_path: Path) -> None:
    run = _bench(tmp_path)
    assert run.returncode == 0, run.stderr
    table = run.stdout
    (dataset,) = tmp_path.iterdir()
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["keys"] == 2000 and manifest["users"] == 400
    assert (dataset / "backend.csv").stat().st_size > 0
    assert f"{manifest['backend_rows']:,} backend rows" in table
    assert "in_sync" in table and "missing_in_backend" in table and "foreign_user" in table

    for stage in ("start-up (interpreter + imports)", "`load_backend`", "`load_exports`"):
        assert _seconds(table, stage) > 0
    assert _seconds(table, "**total** (start-up + `run_job`)") > 0
    assert re.search(
        r"^\| \*\*peak RSS\*\*, all processes .* \| \*\*0\.[1-9][0-9] GiB\*\* \|$", table, re.M
    )
    peers = [line for line in table.splitlines() if any(p in line for p in PEERS)]
    if importlib.util.find_spec("datacompy") is None:  # the optional `bench` extra
        assert len(peers) == 2 and "datacompy not installed" in table
    else:
        assert len(peers) == 3
    assert all(re.search(r"\*\*[0-9.]+x\*\* / [0-9.]+x \|$", line) for line in peers), peers


def test_the_dataset_is_generated_once_and_reused(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    folder = bench.dataset_folder(tmp_path, 300, 60, 7)
    stamp = (folder / "backend.csv").stat().st_mtime_ns
    assert bench.dataset_folder(tmp_path, 300, 60, 7) == folder
    assert (folder / "backend.csv").stat().st_mtime_ns == stamp
    other = bench.dataset_folder(tmp_path, 300, 60, 8)  # another seed: another dataset
    assert other != folder and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [folder.name, other.name]
    )
    lines = (folder / "exports" / "background" / "batch-0000.ndjson").read_bytes().splitlines()
    assert (folder / "exports" / "planted").is_dir() and len(lines) > 20
