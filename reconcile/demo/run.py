"""``reconcile demo``: an embedded PostgreSQL and an exports folder full of realistic trouble.

:func:`build_dataset` makes the data (pure, seeded), :func:`load_backend_rows` puts the
backend side into a table, :func:`write_exports` writes the browsers' side in every accepted
format plus the damaged files a real collector produces, and :func:`run_demo` does all of it
and runs the nightly job on the result.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from psycopg import sql

from reconcile.config import Config
from reconcile.db import connect
from reconcile.demo import cases
from reconcile.demo.data import BACKEND_COLUMNS, DEFAULT_NOW, Builder, DemoDataset, background
from reconcile.demo.embedded import start_embedded
from reconcile.errors import ConfigError
from reconcile.quoting import qualified_table
from reconcile.sources.backend import create_table

if TYPE_CHECKING:
    from reconcile.outputs.result import RunResult

__all__ = ["DemoDataset", "build_dataset", "load_backend_rows", "run_demo", "write_exports"]

log = logging.getLogger(__name__)

#: A file in the demo's exports folder that says the demo may delete it.
MARKER = ".reconcile-demo"

#: PostgreSQL types of :data:`~reconcile.demo.data.BACKEND_COLUMNS`, for COPY.
_COPY_TYPES = (
    "text", "text", "text[]", "int4", "int4", "numeric", "jsonb", "int4", "bool",
    "timestamptz", "timestamptz", "timestamptz", "timestamptz", "timestamptz",
)  # fmt: skip

#: Where the ordinary exports go, one batch file each in turn.
_BATCHES = (
    "collector-eu/batch-{:04d}.ndjson",
    "collector-eu/batch-{:04d}.jsonl",
    "collector-us/batch-{:04d}.ndjson.gz",
    "collector-us/archive/batch-{:04d}.json.gz",
    "uploads/batch-{:04d}.json",
)
_TIMESTAMPS = frozenset(BACKEND_COLUMNS[9:])
_SINGLES = 12  # exports uploaded one per file
_BATCH_SIZE = 250


def build_dataset(
    *, seed: int = 20260120, users: int = 3000, now: datetime | None = None
) -> DemoDataset:
    """``users`` ordinary users plus 75 planted ones. Pure and deterministic.

    ``now`` (default 2026-01-20T08:00Z) anchors every timestamp: all lie before it, except
    the planted 2099 anomaly.
    """
    if users < 0:
        raise ValueError("users must be 0 or more")
    builder = Builder(seed, now or DEFAULT_NOW)
    cases.plant(builder)
    background(builder, users)
    return builder.dataset()


# --------------------------------------------------------------------------- backend


def load_backend_rows(url: str, schema: str, table: str, rows: pd.DataFrame) -> None:
    """Drop and recreate ``schema.table`` (SPEC DDL) and fill it with ``rows`` by COPY."""
    target = qualified_table(schema, table)
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in BACKEND_COLUMNS)
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(target, columns)
    with connect(url) as conn:
        with conn.transaction():
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            create_table(conn, schema, table)
            with conn.cursor().copy(copy) as stream:
                stream.set_types(list(_COPY_TYPES))
                for record in _copy_rows(rows):
                    stream.write_row(record)
        conn.execute(sql.SQL("ANALYZE {}").format(target))
        conn.commit()
    log.info("demo: %d rows loaded into %s.%s", len(rows), schema, table)


def _copy_rows(rows: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    """Rows as the Python values COPY takes, converted a column at a time."""
    return zip(*(_copy_column(name, rows[name]) for name in BACKEND_COLUMNS), strict=True)


def _copy_column(name: str, values: pd.Series) -> list[Any]:
    """Decimal percentages, Python datetimes, plain ints and bools, None for NaT / NaN."""
    if name in _TIMESTAMPS:
        stamps = pd.to_datetime(values, utc=True)
        return [None if pd.isna(t) else t for t in stamps.dt.to_pydatetime()]
    if name == "completion_percentage":
        return [Decimal(str(v)) for v in values.tolist()]
    if name == "completed_chapters":
        return [[str(c) for c in chapters] for chapters in values.tolist()]
    if name in ("chapters_completed", "total_chapters", "total_watch_time"):
        return [int(v) for v in values.tolist()]
    if name == "certificate_earned":
        return [bool(v) for v in values.tolist()]
    return values.tolist()


# --------------------------------------------------------------------------- exports


def write_exports(folder: Path, dataset: DemoDataset) -> list[Path]:
    """Write the exports under ``folder`` in every accepted format, and the damaged files.

    Formats: single-object ``.json`` (pretty-printed), array ``.json`` and ``.json.gz``,
    ``.ndjson``, ``.jsonl`` (CRLF line ends) and ``.ndjson.gz``, in nested folders. Planted
    damage: a file of broken JSON, an array cut short, a truncated ``.ndjson.gz``, an NDJSON
    file with a broken line, a JSON-lines file with an invalid UTF-8 line, a JSON file that
    is no export, a text file that is no JSON, and one export uploaded twice. Returns the
    files written, sorted.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("written by `reconcile demo`; deleted by its next run\n")
    by_user = {e["userId"]: e for e in dataset.exports}
    damaged = _damaged_users()
    ordinary = [e for e in dataset.exports if e["userId"] not in damaged]
    random.Random(len(ordinary)).shuffle(ordinary)
    day = folder / min((e["exportedAt"][:10] for e in dataset.exports), default="exports")
    written = [_write(day / "singles" / f"export-{i:04d}.json", [e], single=True)
               for i, e in enumerate(ordinary[:_SINGLES], 1)]  # fmt: skip
    rest = ordinary[_SINGLES:]
    files = max(len(_BATCHES), math.ceil(len(rest) / _BATCH_SIZE))
    for i in range(files):
        chunk = rest[i * len(rest) // files : (i + 1) * len(rest) // files]
        written.append(_write(day / _BATCHES[i % len(_BATCHES)].format(i + 1), chunk))
    written.extend(_write_damage(folder / "incoming", by_user))
    (folder / "README.txt").write_text("Exports from the progress collector, 2026-01.\n")
    written.append(folder / "README.txt")
    return sorted(written)


def _damaged_users() -> set[str]:
    return {
        cases.BROKEN_FILE_USER, *cases.ARRAY_KEPT, cases.ARRAY_CUT_USER, cases.GZ_KEPT_USER,
        cases.GZ_CUT_USER, *cases.LINE_KEPT, cases.BROKEN_LINE_USER, *cases.UTF8_KEPT,
        cases.BAD_UTF8_USER,
    }  # fmt: skip


def _dumps(export: dict[str, Any] | list[dict[str, Any]], **options: Any) -> str:
    return json.dumps(export, ensure_ascii=False, **options)


def _write(path: Path, exports: Sequence[dict[str, Any]], *, single: bool = False) -> Path:
    """One export file; its name says the format (``.json`` files hold an array)."""
    name = path.name.removesuffix(".gz")
    if single:
        text = _dumps(exports[0], indent=2) + "\n"
    elif name.endswith(".json"):
        text = _dumps(list(exports)) + "\n"
    else:
        end = "\r\n" if name.endswith(".jsonl") else "\n"  # Windows collectors write CRLF
        text = "".join(_dumps(e) + end for e in exports)
    data = text.encode("utf-8")
    return _put(path, gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)


def _put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _write_damage(root: Path, by_user: dict[str, dict[str, Any]]) -> list[Path]:
    """The damaged files; each keeps or loses the exports :mod:`demo_cases` says."""
    line = {user: _dumps(export) for user, export in by_user.items()}
    broken = _dumps(by_user[cases.BROKEN_FILE_USER], indent=2)
    kept = [line[u] for u in cases.ARRAY_KEPT]
    cut = line[cases.ARRAY_CUT_USER]
    array = "[\n" + ",\n".join([*kept, cut[: len(cut) // 2]])
    agent = by_user[cases.BAD_UTF8_USER]["userAgent"] + " \u00c9dition"
    latin1 = _dumps({**by_user[cases.BAD_UTF8_USER], "userAgent": agent}).encode()
    latin1 = latin1.replace("\u00c9".encode(), b"\xc9")  # written as Latin-1 by a bad proxy
    before, after = (line[u].encode() for u in cases.UTF8_KEPT)
    broken_line = line[cases.BROKEN_LINE_USER]
    broken_lines = "\n".join(
        [
            line[cases.LINE_KEPT[0]],
            broken_line[: len(broken_line) // 2],
            line[cases.LINE_KEPT[1]],
            "",
        ]
    )
    status = {"collector": "progress-export", "version": "1.4.2", "batches": 7, "ok": True}
    paths = [
        _put(root / "damaged" / "broken-export.json", broken[: len(broken) * 2 // 3].encode()),
        _put(root / "damaged" / "truncated-array.json", array.encode()),
        _put(root / "damaged" / "truncated.ndjson.gz", _truncated_gzip(by_user)),
        _put(root / "damaged" / "broken-line.ndjson", broken_lines.encode()),
        _put(root / "damaged" / "latin1-line.jsonl", b"\n".join([before, latin1, after, b""])),
        _put(root / "collector-status.json", _dumps(status).encode()),
        _write(root / "retry" / "upload-again.json", [by_user[cases.DUPLICATE_USER]], single=True),
    ]
    return paths


def _truncated_gzip(by_user: dict[str, dict[str, Any]]) -> bytes:
    """Two lines gzipped, the file cut halfway: the short first line survives, the second not.

    The second export carries 48 KB of incompressible cache data (as real ones do), so the
    cut lands well inside it.
    """
    rng = random.Random("truncated-gzip")
    cache = rng.randbytes(36_000).hex()[:48_000]
    second = dict(by_user[cases.GZ_CUT_USER])
    second["localStorage"] = {**second["localStorage"], "ainative:thumbnail-cache": cache}
    text = _dumps(by_user[cases.GZ_KEPT_USER]) + "\n" + _dumps(second) + "\n"
    data = gzip.compress(text.encode(), mtime=0)
    return data[: len(data) // 2]


# --------------------------------------------------------------------------- the demo


def run_demo(workdir: Path, out: Path, *, users: int = 3000, seed: int = 20260120) -> RunResult:
    """Start an embedded PostgreSQL in ``workdir``, load the demo data, run the job into ``out``.

    Running it again in the same ``workdir`` recreates the table and the exports folder.
    """
    workdir, out = workdir.resolve(), out.resolve()  # the report path printed is absolute
    exports = workdir / "exports"
    if exports.exists():
        if not (exports / MARKER).exists():
            raise ConfigError(
                f"--workdir: {exports} exists and was not written by `reconcile demo`; "
                "choose another --workdir"
            )
        shutil.rmtree(exports)
    clock = time.perf_counter()
    dataset = build_dataset(seed=seed, users=users)
    write_exports(exports, dataset)
    elapsed = time.perf_counter() - clock
    log.info("demo: %d exports built and written in %.1f s", len(dataset.exports), elapsed)
    from reconcile.pipeline import run_job  # the demo drives the whole job

    server = start_embedded(workdir / "pgdata")
    try:
        config = Config()
        load_backend_rows(server.url, config.schema, config.table, dataset.backend)
        clock = time.perf_counter()
        result = run_job(database_url=server.url, exports=[exports], out=out, config=config)
        log.info("demo: the job ran in %.1f s", time.perf_counter() - clock)
        return result
    finally:
        server.stop()
