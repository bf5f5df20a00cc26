"""The run folder's neighbours: the ``latest`` link, pruning, and the run lock."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from reconcile.db import libpq_url
from reconcile.errors import ConfigError
from reconcile.outputs.folder import LATEST, LOCK_NAME, point_latest, prune_runs, run_lock
from tests import small_fixture

RUNS = [f"20260120T0{n}0000Z-000{n}" for n in range(1, 6)]


def _completed(out: Path, run_id: str) -> Path:
    folder = out / run_id
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text("{}", encoding="utf-8")
    return folder


def test_latest_is_replaced_atomically_and_never_missing(tmp_path: Path) -> None:
    for run_id in RUNS[:2]:
        _completed(tmp_path, run_id)
    point_latest(tmp_path, RUNS[0])
    seen: set[str] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.add(os.readlink(tmp_path / LATEST))  # raises if ever missing

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(300):
        point_latest(tmp_path, RUNS[n % 2])
    stop.set()
    reader.join()
    assert seen == set(RUNS[:2])
    assert os.readlink(tmp_path / LATEST) == RUNS[1]  # relative: the folder may move
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*RUNS[:2], LATEST])


def test_prune_keeps_the_newest_runs_and_everything_else(tmp_path: Path) -> None:
    for run_id in RUNS:
        _completed(tmp_path, run_id)
    point_latest(tmp_path, RUNS[-1])
    others = ["history.jsonl", "history-snapshot.parquet", LOCK_NAME, "notes.txt"]
    for name in others:
        (tmp_path / name).write_text("x", encoding="utf-8")
    (tmp_path / "gx").mkdir()
    (tmp_path / "20260101T000000Z-abcd").mkdir()  # no summary.json: not a completed run
    (tmp_path / "my-pinned-run").mkdir()  # not a run id: never touched
    _completed(tmp_path, "my-pinned-run2")

    pruned = prune_runs(tmp_path, keep=2)

    assert pruned == [tmp_path / r for r in RUNS[:3]]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(
        [
            *RUNS[3:],
            LATEST,
            *others,
            "gx",
            "20260101T000000Z-abcd",
            "my-pinned-run",
            "my-pinned-run2",
        ]
    )
    assert prune_runs(tmp_path, keep=2) == []
    with pytest.raises(ConfigError):
        prune_runs(tmp_path, keep=0)


def test_prune_never_deletes_the_run_latest_points_to(tmp_path: Path) -> None:
    for run_id in RUNS[:3]:
        _completed(tmp_path, run_id)
    point_latest(tmp_path, RUNS[0])  # e.g. a clock set back
    assert prune_runs(tmp_path, keep=1) == [tmp_path / RUNS[1]]


def test_prune_waits_for_no_one_while_a_run_holds_the_lock(tmp_path: Path) -> None:
    for run_id in RUNS[:3]:
        _completed(tmp_path, run_id)
    with run_lock(tmp_path):
        assert prune_runs(tmp_path, keep=1) == []
    assert len(prune_runs(tmp_path, keep=1)) == 2


def _reconcile(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconcile", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lock_held(out: Path) -> bool:
    try:
        with (out / LOCK_NAME).open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, FileNotFoundError):
        return (out / LOCK_NAME).exists()
    return False


def _wait_for_lock(out: Path, job: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not _lock_held(out):
        assert job.poll() is None, job.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_second_run_exits_at_once_and_a_killed_runs_lock_is_recovered(
    database_url: str, tmp_path: Path
) -> None:
    small_fixture.write_backend(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    out = tmp_path / "out"
    args = ["run", "--database-url", database_url, "--exports", str(exports), "--out", str(out)]
    with psycopg.connect(libpq_url(database_url)) as holder:
        # The first run takes the lock, then waits for the table: a long read.
        holder.execute("LOCK TABLE tutorial_progress IN ACCESS EXCLUSIVE MODE")
        first = _reconcile(*args)
        _wait_for_lock(out, first)

        begin = time.monotonic()
        second = _reconcile(*args)
        stdout, stderr = second.communicate(timeout=120)
        assert second.returncode == 2 and stdout == ""
        assert stderr.startswith("reconcile: error: --out ") and stderr.count("\n") == 1
        assert "another reconcile run holds its lock" in stderr
        assert time.monotonic() - begin < 30  # at once: Python's start, not the first run's

        first.send_signal(signal.SIGKILL)  # no handler runs: only the kernel frees the lock
        first.communicate(timeout=60)
        assert (out / LOCK_NAME).exists() and not _lock_held(out)
        holder.rollback()

    third = _reconcile(*args)
    stdout, stderr = third.communicate(timeout=300)
    assert third.returncode == 1, stderr
    run_dir = Path(stdout.strip())
    assert (run_dir / "summary.json").exists()
    assert (out / LATEST).resolve() == run_dir.resolve()
