"""Atomic writes: a file beside the runs is replaced whole or left as it was."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reconcile.outputs.files import write_atomic, write_atomic_with


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "history.jsonl"
    target.write_bytes(b"old\n")

    write_atomic(target, b"old\nnew\n")

    assert target.read_bytes() == b"old\nnew\n"
    assert [p.name for p in tmp_path.iterdir()] == ["history.jsonl"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "history-snapshot.parquet"
    target.write_bytes(b"the last good night")

    def half_then_fail(temp: Path) -> None:
        temp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic_with(target, half_then_fail)

    assert target.read_bytes() == b"the last good night"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_write_atomic_with_takes_a_parquet_writer(tmp_path: Path) -> None:
    target = tmp_path / "snapshot.parquet"
    table = pa.table({"user_id": ["u-1", "o'hara\n=1+1"]})

    write_atomic_with(target, lambda temp: pq.write_table(table, temp, compression="zstd"))

    assert pq.read_table(target).equals(table)
