"""The run folder: written complete into a hidden temporary folder, then renamed into place.

A run that fails or is killed leaves no ``<out>/<run-id>/``; at most a hidden
``.tmp-<run-id>`` that the next run removes (under the lock, so never a live one).
Each completed run is then pointed to by the symbolic link ``<out>/latest``, replaced
atomically; :func:`prune_runs` keeps the newest N run folders and never the history.

The lock is ``flock`` on ``<out>/.reconcile.lock``: the kernel releases it when its holder
dies, however it dies (``kill -9`` included), so there is no stale lock to clean up.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import orjson

from reconcile.errors import ConfigError, LockError
from reconcile.model import (
    DIFF,
    FOREIGN,
    QUARANTINE,
    REPAIR,
    REPORT,
    REVIEW,
    ROLLBACK,
    SUMMARY,
)
from reconcile.outputs.csv_safe import write_csv
from reconcile.outputs.diff_file import write_diff
from reconcile.outputs.files import fsync_dir, fsync_tree
from reconcile.outputs.report.html import render_report
from reconcile.outputs.result import RunResult

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
LOCK_NAME = ".reconcile.lock"
#: ``<out>/latest``: a relative symbolic link to the newest completed run folder.
LATEST = "latest"
_LATEST_TMP = ".latest.tmp"


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` so two runs never write the same history.

    Raises :class:`~reconcile.errors.LockError` at once when another run holds it.
    """
    try:
        handle = (out / LOCK_NAME).open("a+")
    except OSError as exc:
        raise ConfigError(f"--out: cannot write in {out}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockError(
                f"--out {out}: another reconcile run holds its lock; this run did nothing"
            ) from None
        _sweep_stale(out)
        yield
    finally:
        handle.close()


def point_latest(out: Path, run_id: str) -> None:
    """Make ``<out>/latest`` point to ``run_id``: a new link renamed over the old one.

    A reader sees the previous run or this one, never a missing or half-made link.
    """
    staged = out / _LATEST_TMP
    staged.unlink(missing_ok=True)
    staged.symlink_to(run_id, target_is_directory=True)
    try:
        os.replace(staged, out / LATEST)
    except OSError as exc:  # e.g. a real folder named ``latest``
        staged.unlink(missing_ok=True)
        log.warning("cannot point %s to %s: %s", out / LATEST, run_id, exc.strerror)
        return
    fsync_dir(out)


def prune_runs(out: Path, keep: int) -> list[Path]:
    """Delete the oldest completed run folders of ``out`` beyond the newest ``keep``.

    Only folders named like a run id and holding ``summary.json`` are run folders; the
    history (``history*``, the snapshot), Great Expectations' folder, the lock, anything
    else and the run ``latest`` points to are never touched. Returns the deleted folders,
    oldest first. Takes the run lock; when a run holds it, prunes nothing (the next
    pruning catches up).
    """
    from reconcile.outputs.artifacts import list_runs

    if keep < 1:
        raise ConfigError(f"--keep {keep}: keep at least 1 run")
    out = Path(out)
    try:
        with run_lock(out):
            latest = out / LATEST
            current = latest.resolve() if latest.is_symlink() else None
            runs = [p for p in list_runs(out) if not p.is_symlink() and (p / SUMMARY).is_file()]
            doomed = [p for p in runs[: max(0, len(runs) - keep)] if p.resolve() != current]
            for folder in doomed:
                hidden = folder.with_name(f"{TMP_PREFIX}pruned-{folder.name}")
                os.rename(folder, hidden)  # gone at once; a kill leaves it to the next sweep
                shutil.rmtree(hidden, ignore_errors=True)
            if doomed:
                fsync_dir(out)
    except LockError:
        log.warning("not pruning %s: another reconcile run holds its lock", out)
        return []
    for folder in doomed:
        log.info("pruned %s", folder)
    return doomed


def _sweep_stale(out: Path) -> None:
    for stale in out.glob(f"{TMP_PREFIX}*"):
        log.warning("removing %s left by an interrupted run", stale)
        shutil.rmtree(stale, ignore_errors=True)


class RunFolder:
    """Context manager: a temporary folder that becomes ``<out>/<run_id>`` on success only."""

    def __init__(self, out: Path, run_id: str) -> None:
        self.final = out / run_id
        self.path = out / f"{TMP_PREFIX}{run_id}"

    def __enter__(self) -> RunFolder:
        self.path.mkdir(parents=True)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            fsync_tree(self.path)
            os.rename(self.path, self.final)
            fsync_dir(self.final.parent)
            point_latest(self.final.parent, self.final.name)
        else:
            shutil.rmtree(self.path, ignore_errors=True)

    def write(self, result: RunResult) -> None:
        """Write every artifact of the run, each rendered from the one result."""
        (self.path / SUMMARY).write_bytes(
            orjson.dumps(result.summary, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        )
        write_diff(result.diff, self.path / DIFF)
        write_csv(result.quarantine, self.path / QUARANTINE)
        write_csv(result.foreign, self.path / FOREIGN)
        (self.path / REPAIR).write_text(result.scripts.repair, encoding="utf-8")
        (self.path / ROLLBACK).write_text(result.scripts.rollback, encoding="utf-8")
        (self.path / REVIEW).write_text(result.scripts.review, encoding="utf-8")
        docs = result.docs_index.relative_to(result.run_dir) if result.docs_index else None
        (self.path / REPORT).write_text(render_report(result, docs_link=docs), encoding="utf-8")
