"""The run folder: written complete into a hidden temporary folder, then renamed into place.

A run that fails or is killed leaves no ``<out>/<run-id>/``; at most a hidden
``.tmp-<run-id>`` that the next run removes (under the lock, so never a live one).
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


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` so two runs never write the same history."""
    try:
        handle = (out / LOCK_NAME).open("a+")
    except OSError as exc:
        raise ConfigError(f"--out: cannot write in {out}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockError(f"--out {out}: another reconcile run holds its lock") from None
        _sweep_stale(out)
        yield
    finally:
        handle.close()


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
        docs = result.docs_index.relative_to(self.path) if result.docs_index else None
        (self.path / REPORT).write_text(render_report(result, docs_link=docs), encoding="utf-8")
