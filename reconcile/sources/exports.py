"""Read browser localStorage exports into local progress records (SPEC 1.2).

Exports are untrusted: every file, line, export and record that cannot be read or typed
is quarantined with its file, line and reason, and never costs a good record beside it.
Only a missing top-level path is an error. Range checks (negative counts, percentages
over 100, future timestamps) are the schema's job, not this loader's.

Formats: ``*.json`` (one export or an array of exports), ``*.ndjson`` / ``*.jsonl`` (one
export a line, streamed), each optionally ``.gz``; directories are read recursively.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from reconcile.errors import ConfigError
from reconcile.model import LOCAL_EXTRA_COLUMNS, PROGRESS_COLUMNS, QUARANTINE_COLUMNS
from reconcile.sources._coerce import (
    FieldError,
    Progress,
    coerce_progress,
    decode_value,
    show,
    to_epoch_ns,
)
from reconcile.sources._readers import Reject, export_format, read_exports

log = logging.getLogger(__name__)

PROGRESS_PREFIX = "tutorial_progress_"
FOREIGN_COLUMNS = ("user_id", "tutorial_id", *LOCAL_EXTRA_COLUMNS)
RECORD_COLUMNS = (*PROGRESS_COLUMNS, *LOCAL_EXTRA_COLUMNS)

_NAT = np.iinfo(np.int64).min
_UTC_NS = pd.DatetimeTZDtype("ns", "UTC")
_KINDS = {
    "chapters_completed": "Int64",
    "total_chapters": "Int64",
    "total_watch_time": "Int64",
    "source_line": "Int64",
    "completion_percentage": "float64",
    "certificate_earned": "bool",
    "started_at": "ts",
    "completed_at": "ts",
    "last_accessed_at": "ts",
    "exported_at": "ts",
}


@dataclass(frozen=True)
class ExportStats:
    """Counts of what the exports held."""

    files: int  # files read (after directory expansion)
    exports: int  # envelopes accepted
    progress_records: int  # every tutorial_progress_* key in accepted envelopes
    ignored_keys: int  # other localStorage keys (e.g. "theme"), counted, ignored
    foreign_records: int  # progress keys whose user is not the envelope's user


@dataclass(frozen=True, eq=False)
class ExportsLoad:
    """The exports as typed frames: own records, foreign records and the quarantine."""

    records: pd.DataFrame  # PROGRESS_COLUMNS + LOCAL_EXTRA_COLUMNS
    foreign: pd.DataFrame  # FOREIGN_COLUMNS; user_id is the key's user
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS
    stats: ExportStats


class _Origin(NamedTuple):
    file: str
    line: int | None


# --------------------------------------------------------------------------- files


def _walk(root: Path) -> Iterator[Path]:
    """Export files under ``root``, and any directory that could not be listed."""
    unreadable: list[Path] = []

    def on_error(error: OSError) -> None:
        log.warning("exports: cannot list %s: %s", error.filename, error.strerror)
        unreadable.append(Path(error.filename or root))

    for folder, subfolders, names in os.walk(root, onerror=on_error):
        subfolders.sort()
        for name in sorted(names):
            path = Path(folder, name)
            if export_format(path) is None:
                log.debug("exports: skipping %s: not a .json/.ndjson/.jsonl(.gz) file", path)
            else:
                yield path
    yield from unreadable


def _identity(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def iter_export_files(paths: Sequence[Path]) -> list[Path]:
    """The export files named by ``paths``, directories expanded recursively, sorted.

    A file named explicitly is kept whatever its suffix (it is quarantined later if its
    type is unknown); inside directories only export suffixes are read. A file reached
    twice (a folder and a file in it) is read once.
    """
    found: dict[Path, Path] = {}
    for path in map(Path, paths):
        try:
            is_dir, exists = path.is_dir(), path.exists()
        except OSError:
            is_dir, exists = False, True  # unreadable: quarantined when read
        if not exists:
            raise ConfigError(f"--exports: path not found: {path}")
        for file in _walk(path) if is_dir else (path,):
            found.setdefault(_identity(file), file)
    return sorted(found.values())


# --------------------------------------------------------------------------- records


class _Collector:
    """Rows gathered as tuples; the frames are built once at the end."""

    def __init__(self) -> None:
        self.records: list[tuple[Any, ...]] = []
        self.foreign: list[tuple[Any, ...]] = []
        self.quarantine: list[tuple[Any, ...]] = []
        self.exports = self.progress = self.ignored = 0

    def reject(
        self,
        origin: _Origin,
        reason: str,
        key: str | None = None,
        user: str | None = None,
        tutorial: str | None = None,
    ) -> None:
        self.quarantine.append((origin.file, origin.line, key, user, tutorial, reason))


def _envelope_problem(export: object) -> str | None:
    if not isinstance(export, dict):
        return f"export is a JSON {type(export).__name__}, not an object"
    user = export.get("userId")
    if user is None:
        return "export has no userId"
    if not isinstance(user, str) or not user:
        return f"export userId is not a non-empty string: {show(user)}"
    if "\x00" in user:
        return f"export userId contains a NUL character: {show(user)}"
    storage = export.get("localStorage")
    if not isinstance(storage, dict):
        return f"export localStorage is not an object: {show(storage)}"
    return None


def _add_export(out: _Collector, origin: _Origin, export: object) -> None:
    problem = _envelope_problem(export)
    if problem is not None:
        user = export.get("userId") if isinstance(export, dict) else None
        out.reject(origin, problem, user=user if isinstance(user, str) and user else None)
        return
    assert isinstance(export, dict)
    user, storage = export["userId"], export["localStorage"]
    try:
        exported_ns = to_epoch_ns("exportedAt", export.get("exportedAt"))
    except FieldError as exc:
        log.debug("exports: %s line %s: %s (kept as unknown)", origin.file, origin.line, exc)
        exported_ns = None
    out.exports += 1
    for key, raw in storage.items():
        if key.startswith(PROGRESS_PREFIX):
            out.progress += 1
            _add_record(out, origin, (user, exported_ns), key, raw)
        else:
            out.ignored += 1


def _resolve_key(
    rest: str, envelope_user: str, value: dict[str, Any] | None
) -> tuple[str, str] | str:
    """``(tutorial, user)`` of a key's ``<tutorialId>_<userId>`` part, else the reason."""
    value = value or {}
    tutorial, value_user = value.get("tutorialId"), value.get("userId")
    prefix = f"{tutorial}_" if isinstance(tutorial, str) and tutorial else None
    if prefix and rest.startswith(prefix) and len(rest) > len(prefix):
        return rest[: len(prefix) - 1], rest[len(prefix) :]
    for user in (envelope_user, value_user):
        if isinstance(user, str) and user and rest.endswith("_" + user):
            if len(rest) == len(user) + 1:
                return "key has an empty tutorial id"
            return rest[: -len(user) - 1], user
    return "key does not match the ids in its value or envelope"


def _ids_problem(value: dict[str, Any], tutorial: str, user: str) -> str | None:
    value_tutorial, value_user = value.get("tutorialId"), value.get("userId")
    if value_tutorial is not None and value_tutorial != tutorial:
        return f"tutorialId in value disagrees with key: {show(value_tutorial)} != {show(tutorial)}"
    if value_user is not None and value_user != user:
        return (
            f"userId in value disagrees with key and envelope: {show(value_user)} != {show(user)}"
        )
    if "\x00" in tutorial:
        return (
            f"tutorial id contains a NUL character, which PostgreSQL cannot store: {show(tutorial)}"
        )
    return None


def _add_record(
    out: _Collector, origin: _Origin, envelope: tuple[str, int | None], key: str, raw: object
) -> None:
    envelope_user, exported_ns = envelope
    value: dict[str, Any] | None = None
    try:
        value = decode_value(raw)
    except FieldError as exc:
        problem: str | None = str(exc)
    else:
        problem = None
    ids = _resolve_key(key[len(PROGRESS_PREFIX) :], envelope_user, value)
    if isinstance(ids, str):
        out.reject(origin, problem or ids, key)
        return
    tutorial, user = ids
    extra = (origin.file, origin.line, key, envelope_user, exported_ns)
    if user != envelope_user:  # a shared computer or a forged key: set aside, never repaired
        out.foreign.append((user, tutorial, *extra))
        return
    typed = _typed(value, tutorial, user) if problem is None and value is not None else problem
    if isinstance(typed, Progress):
        out.records.append((user, tutorial, *typed, *extra))
    else:
        out.reject(origin, typed or "value is not an object", key, user, tutorial)


def _typed(value: dict[str, Any], tutorial: str, user: str) -> Progress | str:
    """The typed progress of an own record, or why it is quarantined."""
    problem = _ids_problem(value, tutorial, user)
    if problem is not None:
        return problem
    try:
        return coerce_progress(value)
    except FieldError as exc:
        return str(exc)


# --------------------------------------------------------------------------- frames


def _column(values: Sequence[Any], kind: str) -> Any:
    if kind == "Int64":
        missing = np.array([v is None for v in values], dtype=bool)
        data = np.array([0 if v is None else v for v in values], dtype=np.int64)
        return pd.arrays.IntegerArray(data, missing)
    if kind == "float64":
        return np.array(values, dtype=np.float64)
    if kind == "bool":
        return np.array(values, dtype=bool)
    if kind == "ts":  # epoch nanoseconds, None for unknown
        ns = np.array([_NAT if v is None else v for v in values], dtype=np.int64)
        return pd.array(ns.view("datetime64[ns]"), dtype=_UTC_NS)
    # Python objects (str, tuple, dict, None), as the backend frame holds them.
    return pd.Series(list(values), dtype=object)


def _frame(rows: list[tuple[Any, ...]], columns: tuple[str, ...]) -> pd.DataFrame:
    """One frame from row tuples, each column in its canonical dtype (also when empty)."""
    transposed: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else []
    values = transposed or [() for _ in columns]
    return pd.DataFrame(
        {
            name: _column(col, _KINDS.get(name, "object"))
            for name, col in zip(columns, values, strict=True)
        }
    )


def _rejecter(out: _Collector, file: str) -> Reject:
    def reject(line: int | None, reason: str) -> None:
        out.reject(_Origin(file, line), reason)

    return reject


def load_exports(paths: Sequence[Path], *, now: datetime | None = None) -> ExportsLoad:
    """Read every export under ``paths``: own records, foreign records, quarantine.

    ``now`` is accepted for the pipeline's single clock; nothing here depends on it
    (future timestamps are a range check, done by the schema).
    """
    files = iter_export_files(paths)
    out = _Collector()
    for path in files:
        file = str(path)
        for line, export in read_exports(path, _rejecter(out, file)):
            _add_export(out, _Origin(file, line), export)
    stats = ExportStats(
        files=len(files),
        exports=out.exports,
        progress_records=out.progress,
        ignored_keys=out.ignored,
        foreign_records=len(out.foreign),
    )
    log.info(
        "exports: %d files, %d exports, %d progress records (%d kept, %d foreign, %d quarantined)",
        stats.files,
        stats.exports,
        stats.progress_records,
        len(out.records),
        stats.foreign_records,
        len(out.quarantine),
    )
    return ExportsLoad(
        records=_frame(out.records, RECORD_COLUMNS),
        foreign=_frame(out.foreign, FOREIGN_COLUMNS),
        quarantine=_frame(out.quarantine, QUARANTINE_COLUMNS),
        stats=stats,
    )
