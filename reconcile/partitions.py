"""Hash partitions of ``user_id``: the per-key work of a run, on all cores or a Dask cluster.

Every key of a user lands in the same partition (a stable hash of ``user_id``), so the
record gate, the merge, the statuses and the per-user figures are exact per partition,
and putting the partitions back together gives the same frames, in the same order, as one
partition would: the output files do not depend on the number of partitions or on where
they ran. Table-level work (Great Expectations, night over night, the repair SQL, the
report) runs once, in the parent, on the combined result.

Three ways to run the partitions (:class:`Execution`):

* in this process, one after the other (small inputs, tests);
* a pool of worker processes on this machine (``--workers N``) that die with the run
  (:mod:`reconcile.workers`): a run stopped by SIGTERM, SIGINT or SIGKILL leaves no
  worker behind;
* an existing Dask cluster (``--scheduler ADDRESS``), for a run bigger than one machine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import pandas as pd

from reconcile.compare.merge import merge_local
from reconcile.compare.status import CheckedBackend, build_diff
from reconcile.config import Config
from reconcile.errors import ConfigError
from reconcile.model import KEY, QUARANTINE_COLUMNS
from reconcile.validate import records
from reconcile.workers import worker_pool

log = logging.getLogger(__name__)

#: The siphash key of the partition hash: fixed, so a user's partition never changes.
_HASH_KEY: Final = "reconcile-parts!"


@dataclass(frozen=True)
class Execution:
    """Where the partitions run: ``workers`` processes here, or the Dask ``scheduler``.

    ``partitions`` defaults to the number of workers (one per worker process, two per
    Dask worker). The default is this process alone: the partitions travel to worker
    processes pickled, and on 1,000,000 keys pickling them costs the run more than the
    workers save (measured: 44.7 s for this stage on 2 workers, 10.9 s in this process;
    ``bench/bench_run.py --workers``). Workers pay once each reads its own partition.
    """

    workers: int | None = None
    partitions: int | None = None
    scheduler: str | None = None


@dataclass(frozen=True)
class PartitionTask:
    """One partition's share of the run (frames keep the labels of the whole frames)."""

    backend: pd.DataFrame
    local: pd.DataFrame
    loader_quarantine: pd.DataFrame
    foreign: pd.DataFrame
    now: datetime
    config: Config


@dataclass(frozen=True)
class PartitionResult:
    """What one partition found: both record gates and its rows of the diff."""

    backend_gate: records.RecordGate
    local_gate: records.RecordGate
    diff: pd.DataFrame


@dataclass(frozen=True)
class Compared:
    """The combined partitions: the same values one partition would have given."""

    backend_gate: records.RecordGate
    local_gate: records.RecordGate
    diff: pd.DataFrame


def partition_of(user_ids: pd.Series, partitions: int) -> np.ndarray:
    """The partition (0 .. partitions - 1) of each user id: a stable siphash of its text."""
    if partitions <= 1:
        return np.zeros(len(user_ids), dtype=np.int64)
    text = user_ids.astype(object).where(user_ids.notna(), "").to_numpy(dtype=object)
    try:
        hashed = pd.util.hash_array(text, hash_key=_HASH_KEY, categorize=False)
    except UnicodeEncodeError:  # a lone surrogate (Python's json lets one through)
        text = np.array([_encodable(str(v)) for v in text], dtype=object)
        hashed = pd.util.hash_array(text, hash_key=_HASH_KEY, categorize=False)
    return (hashed % np.uint64(partitions)).astype(np.int64)


def _encodable(text: str) -> str:
    """``text`` itself when it is valid UTF-8 text, else a stable stand-in that is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "\x00" + text.encode("utf-8", "surrogatepass").hex()
    return text


def run_partition(task: PartitionTask) -> PartitionResult:
    """Record gate, merge and statuses of one partition (pure; runs in any process)."""
    backend_gate = records.validate_backend(task.backend, now=task.now, config=task.config)
    local_gate = records.validate_local(task.local, now=task.now, config=task.config)
    quarantined = pd.concat(
        [task.loader_quarantine[list(KEY)], task.local.loc[~local_gate.valid, list(KEY)]],
        ignore_index=True,
    )
    diff = build_diff(
        CheckedBackend(task.backend, backend_gate.reasons(), backend_gate.checks()),
        merge_local(task.local[local_gate.valid]),
        quarantined=quarantined,
        foreign=task.foreign,
        gate=lambda rows: records.validate_backend(
            rows, now=task.now, config=task.config
        ).reasons(),
    )
    return PartitionResult(backend_gate=backend_gate, local_gate=local_gate, diff=diff)


def split(
    backend: pd.DataFrame,
    local: pd.DataFrame,
    loader_quarantine: pd.DataFrame,
    foreign: pd.DataFrame,
    *,
    partitions: int,
    now: datetime,
    config: Config,
) -> list[PartitionTask]:
    """The run's frames cut into ``partitions`` tasks by the hash of ``user_id``.

    One partition is the frames as they are: no hashing, no copy of a million rows.
    """
    if partitions == 1:
        quarantine = loader_quarantine[list(QUARANTINE_COLUMNS)]
        return [PartitionTask(backend, local, quarantine, foreign, now=now, config=config)]
    parts = {
        name: partition_of(frame["user_id"], partitions)
        for name, frame in (
            ("backend", backend),
            ("local", local),
            ("quarantine", loader_quarantine),
            ("foreign", foreign),
        )
    }
    return [
        PartitionTask(
            backend=backend[parts["backend"] == p],
            local=local[parts["local"] == p],
            loader_quarantine=loader_quarantine[parts["quarantine"] == p][list(QUARANTINE_COLUMNS)],
            foreign=foreign[parts["foreign"] == p],
            now=now,
            config=config,
        )
        for p in range(partitions)
    ]


def combine(
    results: Sequence[PartitionResult], backend: pd.DataFrame, local: pd.DataFrame
) -> Compared:
    """The partitions put back together, in the order of the whole frames."""
    if len(results) == 1:  # already in that order: build_diff sorts by key
        only = results[0]
        return Compared(backend_gate=only.backend_gate, local_gate=only.local_gate, diff=only.diff)
    diff = pd.concat([r.diff for r in results], ignore_index=True)
    diff = diff.sort_values(list(KEY), kind="stable").reset_index(drop=True)
    return Compared(
        backend_gate=_gate([r.backend_gate for r in results], backend.index),
        local_gate=_gate([r.local_gate for r in results], local.index),
        diff=diff,
    )


def _gate(gates: Sequence[records.RecordGate], index: pd.Index) -> records.RecordGate:
    """One record gate from the partitions' gates: failures in the whole frame's order."""
    valid = pd.concat([g.valid for g in gates]).reindex(index, fill_value=True)
    failures = pd.concat([g.failures for g in gates], ignore_index=True)
    if not failures.empty:
        order = index.get_indexer(failures["row"])
        failures = failures.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    return records.RecordGate(valid=valid.rename("valid"), failures=failures)


# --------------------------------------------------------------------------- running them


def compare_partitions(
    backend: pd.DataFrame,
    local: pd.DataFrame,
    loader_quarantine: pd.DataFrame,
    foreign: pd.DataFrame,
    *,
    execution: Execution,
    now: datetime,
    config: Config,
) -> Compared:
    """Gate, merge and compare every partition where ``execution`` says; combine them."""
    rows = len(backend) + len(local)
    runner, partitions = _runner(execution)
    tasks = split(
        backend, local, loader_quarantine, foreign, partitions=partitions, now=now, config=config
    )
    log.info("compare: %d rows in %d partition(s)", rows, partitions)
    return combine(runner(tasks), backend, local)


Runner = Callable[[list[PartitionTask]], list[PartitionResult]]


def _runner(execution: Execution) -> tuple[Runner, int]:
    if execution.scheduler:
        return _dask_runner(execution)
    workers = execution.workers or 1
    partitions = execution.partitions or workers
    if workers == 1 or partitions == 1:
        return _in_process, partitions
    return (lambda tasks: _in_pool(tasks, min(workers, partitions))), partitions


def _in_process(tasks: list[PartitionTask]) -> list[PartitionResult]:
    return [run_partition(t) for t in tasks]


def _in_pool(tasks: list[PartitionTask], workers: int) -> list[PartitionResult]:
    """The tasks on ``workers`` fresh processes that die with this one."""
    with worker_pool(workers) as pool:
        return pool.map(run_partition, tasks, chunksize=1)


def _dask_runner(execution: Execution) -> tuple[Runner, int]:
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs Dask: pip install 'dask[distributed]'") from None
    try:
        client = Client(execution.scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"--scheduler {execution.scheduler}: cannot connect: {exc}") from None
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    partitions = execution.partitions or 2 * workers

    def run(tasks: list[PartitionTask]) -> list[PartitionResult]:
        try:
            futures = client.map(run_partition, tasks, pure=False)
            return list(client.gather(futures))
        finally:
            client.close()

    return run, partitions
