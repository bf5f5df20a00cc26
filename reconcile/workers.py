"""Worker processes that never outlive the run.

The workers are started fresh (``spawn``: they inherit no open file, so never the run's
lock, and import only what their tasks need) and ask the kernel to kill them when the
run's process dies (``PR_SET_PDEATHSIG``), so a run stopped by SIGTERM, SIGINT or SIGKILL
leaves no worker behind. Used by the partitions (:mod:`reconcile.partitions`) and the
exports loader (:mod:`reconcile.sources.exports`).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.pool import Pool


def die_with_parent(parent: int) -> None:
    """In a worker: be killed by the kernel when the run's process dies, however it dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown still applies
        pass
    if os.getppid() != parent:  # the run died before the line above took effect
        os._exit(1)


@contextmanager
def worker_pool(workers: int) -> Iterator[Pool]:
    """A pool of ``workers`` fresh processes that die with this one.

    Leaving the block, by its end or by an exception (SIGTERM, Ctrl-C), terminates them.
    """
    context = multiprocessing.get_context("spawn")
    with _main_not_rerun():
        pool = context.Pool(workers, initializer=die_with_parent, initargs=(os.getpid(),))
    with pool:
        yield pool


@contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Start workers without running the caller's main script in them again.

    ``spawn`` re-imports the ``__main__`` module in each new process so that tasks defined
    there can be found; a script that calls the run at top level, with no ``if __name__ ==
    "__main__"`` guard, would then start the run again in every worker, forever. The tasks
    here all live in ``reconcile``, so the workers are started while ``__main__`` is a
    bare stand-in, which they need not import.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main
