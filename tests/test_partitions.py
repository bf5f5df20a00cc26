"""Hash partitions of user_id: the same outputs in one partition, in many, on Dask; and
worker processes that never outlive the run."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from reconcile.config import Config
from reconcile.db import libpq_url, parse_url
from reconcile.demo.run import build_dataset, load_backend_rows, write_exports
from reconcile.outputs.folder import LOCK_NAME
from reconcile.partitions import Execution, partition_of
from reconcile.pipeline import run_job
from reconcile.sources.exports import load_exports
from tests.sources.test_exports import export, key, ndjson, progress

pytestmark = pytest.mark.slow

FILES = ("diff.parquet", "repair.sql", "rollback.sql", "review.sql", "quarantine.csv")


@pytest.fixture(scope="module")
def demo_db(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The demo's data (every status, hostile ids, broken files) in a database of its own."""
    name = f"t_parts_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = parse_url(server_url).set(database=name).render_as_string(hide_password=False)
    dataset = build_dataset(users=300)
    exports = tmp_path_factory.mktemp("exports")
    write_exports(exports, dataset)
    config = Config()
    load_backend_rows(url, config.schema, config.table, dataset.backend)
    return url, exports


def _run(url: str, exports: Path, out: Path, execution: Execution, now: datetime) -> Path:
    result = run_job(
        database_url=url,
        exports=[exports],
        out=out,
        config=Config(),
        now=now,
        run_id="20260120T080000Z-0001",
        execution=execution,
    )
    return result.run_dir


def _outputs(run_dir: Path) -> dict[str, bytes]:
    files = {name: (run_dir / name).read_bytes() for name in FILES}
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    summary.pop("timings_seconds")
    summary.pop("finished_at")
    summary.pop("started_at")
    files["summary.json"] = json.dumps(summary, sort_keys=True).encode()
    return files


def test_one_partition_many_and_dask_give_the_same_files(
    demo_db: tuple[str, Path], tmp_path: Path
) -> None:
    from distributed import LocalCluster

    url, exports = demo_db
    now = datetime.now(UTC)
    one = _outputs(_run(url, exports, tmp_path / "one", Execution(workers=1, partitions=1), now))
    seven = _outputs(
        _run(url, exports, tmp_path / "seven", Execution(workers=2, partitions=7), now)
    )
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False) as cluster:
        on_dask = _outputs(
            _run(
                url, exports, tmp_path / "dask", Execution(scheduler=cluster.scheduler_address), now
            )
        )
    diff = pd.read_parquet(tmp_path / "one" / "20260120T080000Z-0001" / "diff.parquet")
    assert diff["status"].nunique() == 10  # the demo holds every status
    for name in one:
        assert seven[name] == one[name], f"{name} differs with 7 partitions"
        assert on_dask[name] == one[name], f"{name} differs on Dask"


def test_a_users_partition_is_stable_and_shared_by_all_their_keys(tmp_path: Path) -> None:
    """A user whose records are spread over many export files lands in one partition."""
    user = "o'hara\"; <b>_u-1"
    for n in range(6):
        ndjson(
            tmp_path / f"upload-{n}.ndjson",
            export(user, {key(f"t{n}", user): progress(f"t{n}", user)}),
        )
    records = load_exports([tmp_path]).records
    assert len(records) == 6 and records["source_file"].nunique() == 6
    assert len(set(partition_of(records["user_id"], 7))) == 1
    # The hash is fixed: a user's partition does not change between runs or machines.
    ids = pd.Series(["u1", "u2", "é日本😀", "x" * 100])
    assert partition_of(ids, 7).tolist() == [2, 3, 6, 0]
    assert partition_of(ids, 1).tolist() == [0, 0, 0, 0]
    # Any text, even a lone surrogate Python's json lets through, or a missing id.
    odd = pd.Series(["a\ud800b", None, "a\ud800b", float("nan")], dtype=object)
    parts = partition_of(odd, 7)
    assert parts[0] == parts[2] and parts.min() >= 0 and parts.max() < 7


def _children(pid: int) -> dict[int, str]:
    """Descendant processes of ``pid`` (pid: command line), from /proc."""
    found: dict[int, str] = {}
    parents = {pid}
    for _ in range(3):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid in parents and int(entry.name) not in found:
                found[int(entry.name)] = cmd
        parents |= set(found)
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _workers_of(run: subprocess.Popen[bytes], *, timeout: float) -> list[int]:
    """The pool workers of ``run`` once two of them are up (their other helpers too)."""
    deadline = time.monotonic() + timeout
    found: dict[int, str] = {}
    while time.monotonic() < deadline and run.poll() is None:
        found = {p: c for p, c in _children(run.pid).items() if "multiprocessing" in c}
        if sum("spawn_main" in c for c in found.values()) >= 2:
            return list(found)
        time.sleep(0.05)
    raise AssertionError(f"no two workers seen: {found}")


def _survivors(pids: list[int], *, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killing_the_run_leaves_no_worker_lock_or_run_folder(
    demo_db: tuple[str, Path], tmp_path: Path, sig: signal.Signals
) -> None:
    url, exports = demo_db
    out = tmp_path / "out"
    command = [sys.executable, "-m", "reconcile", "run", "--database-url", url]
    command += ["--exports", str(exports), "--out", str(out), "--workers", "2"]
    command += ["--partitions", "4"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        workers = _workers_of(run, timeout=120)
        assert run.poll() is None, "the run ended before its workers could be seen"
        run.send_signal(sig)
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert _survivors(workers, timeout=20) == [], "a worker outlived the run"
    with (out / LOCK_NAME).open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody holds the lock
    assert [p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")] == []
    if sig == signal.SIGTERM:
        assert run.returncode == 128 + signal.SIGTERM
        assert not any(p.name.startswith(".tmp-") for p in out.iterdir())
    assert os.path.isdir(out)


_BUSY_POOL = """
import multiprocessing, os, sys, time
from reconcile.workers import die_with_parent

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(2, initializer=die_with_parent, initargs=(os.getpid(),))
    pool.map_async(time.sleep, [600, 600], chunksize=1)
    time.sleep(600)
"""


def test_a_busy_worker_dies_with_a_killed_run(tmp_path: Path) -> None:
    """A worker in the middle of a task never reads its pipe again: the kernel kills it."""
    script = tmp_path / "busy_pool.py"
    script.write_text(_BUSY_POOL, encoding="utf-8")
    run = subprocess.Popen([sys.executable, str(script)])
    try:
        workers = _workers_of(run, timeout=60)
        time.sleep(2)  # the workers are sleeping inside their task now
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    survivors = _survivors(workers, timeout=10)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], "a busy worker outlived the killed run"
