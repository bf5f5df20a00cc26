"""Exports read on worker processes: the same frames as one process, and no worker left
behind when the run dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from reconcile.demo.run import build_dataset, write_exports
from reconcile.sources import exports
from reconcile.sources.exports import ExportsLoad, iter_export_files, load_exports
from tests.sources.test_exports import export, key, line, ndjson, progress, write
from tests.test_partitions import _survivors, _workers_of

USER = "o'hara\"; <b>_u-1"


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's exports (every format, damaged files, bad and foreign records) and a user
    spread over many files, with timestamps that do not parse among good records."""
    root = tmp_path_factory.mktemp("exports")
    write_exports(root, build_dataset(users=400))
    for n in range(12):
        records = {key(f"t{n}", USER): progress(f"t{n}", USER)}
        if n % 3 == 0:  # text that only the bulk timestamp parse rejects
            records[key(f"bad{n}", USER)] = progress(f"bad{n}", USER, startedAt="2026-13-45")
        if n % 4 == 0:  # somebody else's record in this user's export
            records[key(f"t{n}", "u-2")] = progress(f"t{n}", "u-2")
        body = export(USER, records)
        if n % 2:
            write(root / "spread" / f"upload-{n:02d}.ndjson.gz", line(body))
        else:
            ndjson(root / "spread" / f"upload-{n:02d}.ndjson", body, b"{broken")
    write(root / "spread" / "upload-05.json", "")  # quarantined whole, between the others
    return root


def _same(one: ExportsLoad, other: ExportsLoad) -> None:
    for name in ("records", "foreign", "quarantine"):
        left, right = getattr(one, name), getattr(other, name)
        pd.testing.assert_frame_equal(left, right, check_exact=True)
        assert left.dtypes.to_dict() == right.dtypes.to_dict()
    assert one.stats == other.stats


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_read_what_one_process_reads(many_files: Path, workers: int) -> None:
    files = iter_export_files([many_files])
    alone = load_exports(files, workers=1)
    tasks = exports._tasks(files, [exports._weight(f) for f in files], workers)
    assert len(tasks) > workers  # the files are shared out, not read by one of them
    _same(load_exports(files, workers=workers), alone)
    # The dataset holds what the parts must put back together in order.
    assert len(files) > 30 and {".gz", ".json", ".ndjson", ".jsonl"} <= {f.suffix for f in files}
    assert alone.records["user_id"].eq(USER).sum() == 12
    assert alone.records.loc[alone.records["user_id"] == USER, "source_file"].nunique() == 12
    assert alone.stats.foreign_records >= 3 and len(alone.foreign) >= 3
    reasons = alone.quarantine["reason"]
    assert reasons.str.contains("startedAt").sum() == 4  # dropped by the bulk parse
    assert reasons.str.contains("not valid JSON").sum() >= 6
    assert alone.quarantine["source_line"].isna().any()  # a whole file quarantined


def test_the_default_reads_a_small_input_in_this_process(
    many_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pool(*args: object) -> None:
        raise AssertionError("a pool was started for a small input")

    monkeypatch.setattr(exports, "_read_in_pool", no_pool)
    load_exports([many_files])
    assert exports._worker_count(None, exports.POOL_MIN_BYTES - 1, 50) == 1
    assert exports._worker_count(None, exports.POOL_MIN_BYTES, 50) == exports._cores()
    assert exports._worker_count(None, exports.POOL_MIN_BYTES, 1) == 1
    assert exports._worker_count(8, 0, 3) == 3
    with pytest.raises(ValueError, match="workers must be 1 or more"):
        exports._worker_count(0, 0, 3)


def test_the_default_uses_the_pool_for_a_big_input(
    many_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "POOL_MIN_BYTES", 1)
    monkeypatch.setattr(exports, "_cores", lambda: 2)
    _same(load_exports([many_files]), load_exports([many_files], workers=1))


# The slow reader (each export takes a while, and a file under the marks folder says who
# began) is installed in every process, workers included, as a ``sitecustomize`` module:
# workers do not run the caller's script (reconcile.workers).
_SLOW_READ = """
import os, sys, time
from pathlib import Path

if os.environ.get("SLOW_READ_MARKS"):
    from reconcile.sources import exports

    marks = Path(os.environ["SLOW_READ_MARKS"])
    read = exports.read_exports

    def slow_read(path, reject, max_bytes):
        (marks / str(os.getpid())).touch()
        for item in read(path, reject, max_bytes):
            time.sleep(0.5)  # a task outlasts the wait for survivors below
            yield item

    exports.read_exports = slow_read
"""
_RUN = """
import signal, sys
from pathlib import Path
from reconcile.sources import exports

signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # as the CLI
exports.load_exports([Path(sys.argv[1])], workers=3)
sys.exit(3)  # the reading was to be killed first
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killing_the_parent_while_the_pool_reads_leaves_no_worker(
    many_files: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    script, marks, site = tmp_path / "slow_read.py", tmp_path / "marks", tmp_path / "site"
    script.write_text(_RUN, encoding="utf-8")
    marks.mkdir()
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SLOW_READ, encoding="utf-8")
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "SLOW_READ_MARKS": str(marks)}
    run = subprocess.Popen([sys.executable, str(script), str(many_files)], env=env)
    try:
        workers = _workers_of(run, timeout=60)
        deadline = time.monotonic() + 60
        while not {str(p) for p in workers} & {m.name for m in marks.iterdir()}:
            assert time.monotonic() < deadline and run.poll() is None, "no worker began reading"
            time.sleep(0.05)
        assert run.poll() is None, "the read ended before the run could be killed"
        run.send_signal(sig)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    survivors = _survivors(workers, timeout=10)
    for pid in survivors:
        subprocess.run(["kill", "-9", str(pid)], check=False)
    assert survivors == [], "a worker outlived the killed run"
    assert run.returncode == (128 + sig if sig == signal.SIGTERM else -sig)
