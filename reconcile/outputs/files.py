"""Files that survive a crash: written whole or not at all, and on disk before we go on.

A file that replaces another (``history.jsonl``, ``history-snapshot.parquet``) is written
into a hidden temporary file beside it, flushed to disk, then renamed over it: a reader,
or the next run after a crash or a kill, sees the old file or the new one, never half of
either. The run folder is made durable the same way, as a whole (see ``folder.py``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    write_atomic_with(path, lambda temp: temp.write_bytes(data))


def write_atomic_with(path: Path, write: Callable[[Path], object]) -> None:
    """Replace ``path`` atomically with the file that ``write(temp)`` writes at ``temp``.

    For writers that want a path rather than bytes (Parquet). ``temp`` is a hidden file
    in the same folder (so the rename stays on one file system); it is removed when
    ``write`` fails.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    temp = Path(name)
    try:
        write(temp)
        fsync_file(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_file(path: Path) -> None:
    """Flush one file's content to disk."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root``, then ``root``'s own entries."""
    for path in root.rglob("*"):
        if path.is_file():
            fsync_file(path)
        elif path.is_dir():
            fsync_dir(path)
    fsync_dir(root)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (new names, renames) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
