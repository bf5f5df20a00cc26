"""Read browser localStorage exports into local progress records (SPEC 1.2).

Exports are untrusted: every file, line, export and record that cannot be read or typed
is quarantined with its file, line and reason, and never costs a good record beside it.
Only a missing top-level path is an error. Range checks (negative counts, percentages
over 100, future timestamps) are the schema's job, not this loader's.

Formats: ``*.json`` (one export or an array of exports), ``*.ndjson`` / ``*.jsonl`` (one
export a line, streamed), each optionally ``.gz``; directories are read recursively. Only
regular files are read, and no file may expand past a cap (see :func:`load_exports`).

A ``tutorial_progress_*`` key that cannot be a record (a flag such as
``tutorial_progress_migrated = true``, see :func:`_is_flag`) is an ignored key, like
``theme``: the quarantine holds only what a person must look at.
"""

from __future__ import annotations

import logging
import os
import threading
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from msgspec import UNSET

from reconcile.config import Config
from reconcile.errors import ConfigError
from reconcile.logs import Counter
from reconcile.model import (
    LOCAL_EXTRA_COLUMNS,
    PROGRESS_COLUMNS,
    QUARANTINE_COLUMNS,
    TIMESTAMP_COLUMNS,
)
from reconcile.sources._coerce import (
    NAT,
    FieldError,
    Progress,
    TypedProgress,
    coerce_progress,
    common_progress,
    decode_common,
    decode_typed,
    decode_value,
    epoch_ns_column,
    show,
    to_epoch_ns,
    typed_columns,
)
from reconcile.sources._memory import no_cyclic_gc
from reconcile.sources._readers import Reject, export_format, read_exports

log = logging.getLogger(__name__)

PROGRESS_PREFIX = "tutorial_progress_"
FOREIGN_COLUMNS = ("user_id", "tutorial_id", *LOCAL_EXTRA_COLUMNS)
RECORD_COLUMNS = (*PROGRESS_COLUMNS, *LOCAL_EXTRA_COLUMNS)
#: Position in a record row of each timestamp, by its field name in a progress value.
_STAMP_INDEXES = {
    field: RECORD_COLUMNS.index(column)
    for field, column in zip(
        ("startedAt", "completedAt", "lastAccessedAt"), TIMESTAMP_COLUMNS, strict=True
    )
}
_FILE_INDEX = RECORD_COLUMNS.index("source_file")  # then source_line, storage_key

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
    progress_records: int  # every tutorial_progress_* key in accepted envelopes, but flags
    ignored_keys: int  # other localStorage keys (e.g. "theme") and flags, counted, ignored
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
        try:  # a dangling link or a loop exists, to be quarantined when read
            is_dir, exists = path.is_dir(), os.path.lexists(path)
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
        self.records = _Records()
        self.foreign: list[tuple[Any, ...]] = []
        self.quarantine: list[tuple[Any, ...]] = []
        #: for each quarantine row, how many own records came before it
        self.quarantine_at: list[int] = []
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
        self.quarantine_at.append(len(self.records))


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
    records, progress = out.records, 0
    typed, typed_keys, before = records.typed, records.typed_keys, len(records.typed)
    for key, raw in storage.items():
        if key.startswith(PROGRESS_PREFIX):
            value = decode_typed(raw)
            if (
                value is not None
                and key == f"{PROGRESS_PREFIX}{value.tutorial_id}_{user}"
                and (value.user_id is UNSET or value.user_id == user)
            ):
                typed.append(value)
                typed_keys.append(key)
            elif (row := _common_record(key, raw, user, origin, exported_ns)) is not None:
                records.add(row)
            elif not _add_record(out, origin, (user, exported_ns), key, raw):
                continue  # a flag, not a record: an ignored key
            progress += 1
    if len(typed) > before:
        records.typed_exports.append((origin.file, origin.line, user, exported_ns))
        records.typed_counts.append(len(typed) - before)
    out.progress += progress
    out.ignored += len(storage) - progress
    if records.pending() >= _Records.CHUNK:
        records.flush(out.quarantine_at)


def _common_record(
    key: str, raw: object, user: str, origin: _Origin, exported_ns: int | None
) -> tuple[Any, ...] | None:
    """The row of an own record in the common case, else None (see :func:`_add_record`).

    The common case: :func:`decode_common` decodes the value, its ids spell the key and
    the envelope's user, and :func:`common_progress` types it. Everything else, every
    rejection included, is left to :func:`_add_record`, which alone words reasons.
    """
    value = decode_common(raw)
    if value is None:
        return None
    tutorial = value.get("tutorialId")
    if (
        type(tutorial) is not str
        or not tutorial
        or key != f"{PROGRESS_PREFIX}{tutorial}_{user}"
        or value.get("userId", user) != user
    ):
        return None
    typed = common_progress(value)
    if typed is None:
        return None
    return (user, tutorial, *typed, origin.file, origin.line, key, user, exported_ns)


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


def _is_flag(key: str, raw: object, envelope_user: str) -> bool:
    """Whether a progress key whose ids do not resolve is a flag the site writes, not a record.

    It is when nothing in it could be a lost record of this user: the key does not end
    with ``_<envelope userId>``, and the value holds no JSON object, nor text that tries
    to be one (``true``, ``"1"``, ``42``, ``null``, ``[1, 2]``, ``done``; not ``{"to``).
    """
    if key.endswith(f"_{envelope_user}"):
        return False
    if isinstance(raw, str):
        return "{" not in raw
    return not isinstance(raw, dict | list)


def _add_record(
    out: _Collector, origin: _Origin, envelope: tuple[str, int | None], key: str, raw: object
) -> bool:
    """Place one progress key that :func:`_common_record` left; False for a flag (ignored)."""
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
        if _is_flag(key, raw, envelope_user):
            return False
        out.reject(origin, problem or ids, key)
        return True
    tutorial, user = ids
    extra = (origin.file, origin.line, key, envelope_user, exported_ns)
    if user != envelope_user:  # a shared computer or a forged key: set aside, never repaired
        out.foreign.append((user, tutorial, *extra))
        return True
    typed = _typed(value, tutorial, user) if problem is None and value is not None else problem
    if isinstance(typed, Progress):
        out.records.add((user, tutorial, *typed, *extra))
    else:
        out.reject(origin, typed or "value is not an object", key, user, tutorial)
    return True


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


def _array(values: Sequence[Any], kind: str) -> np.ndarray:
    """One column as numpy: int64 for Int64 and ts (NaT for None), else its own dtype."""
    size = len(values)
    if kind in ("Int64", "ts"):
        try:
            return np.fromiter(values, dtype=np.int64, count=size)  # the common case: no None
        except TypeError:
            return np.fromiter((NAT if v is None else v for v in values), np.int64, size)
    if kind == "float64":
        return np.fromiter(values, dtype=np.float64, count=size)
    if kind == "bool":
        return np.fromiter(values, dtype=bool, count=size)
    # Python objects (str, tuple, dict, None), as the backend frame holds them.
    return np.fromiter(values, dtype=object, count=size)


def _frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """A frame of :func:`_array` columns, each in its canonical dtype."""
    data: dict[str, Any] = {}
    for name, array in columns.items():
        kind = _KINDS.get(name, "object")
        if kind == "Int64":
            missing = array == NAT
            data[name] = pd.arrays.IntegerArray(np.where(missing, 0, array), missing)
        elif kind == "ts":
            data[name] = pd.array(array.view("datetime64[ns]"), dtype=_UTC_NS)
        elif kind == "object":
            data[name] = pd.Series(array, dtype=object, copy=False)
        else:
            data[name] = array
    return pd.DataFrame(data, copy=False)


def _rows_frame(rows: list[tuple[Any, ...]], names: tuple[str, ...]) -> pd.DataFrame:
    values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return _frame(
        {n: _array(v, _KINDS.get(n, "object")) for n, v in zip(names, values, strict=True)}
    )


class _Records:
    """The own records, turned into columns a chunk at a time.

    Records come two ways, kept in reading order: :class:`TypedProgress` values that
    msgspec typed (``typed``, the rule), and row tuples (:data:`RECORD_COLUMNS`) of the
    other paths (``rows``, with their places in ``row_at``). A chunk is turned into
    columns and its timestamp texts parsed in bulk, so that the records do not all live
    at once as Python objects. A record whose text does not parse is dropped, and its
    reject queued for the quarantine at the place the per-record path
    (:func:`_add_record`) would have put it.
    """

    CHUNK = 8192

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []  # the chunk's other rows
        self.row_at: list[int] = []  # the place of each among all records
        self.typed: list[TypedProgress] = []  # the chunk's typed values
        self.typed_keys: list[str] = []
        #: (file, line, user, exported_ns) of each export with typed values, and how many
        self.typed_exports: list[tuple[str, int | None, str, int | None]] = []
        self.typed_counts: list[int] = []
        self.done = 0  # records in earlier chunks
        self.columns: list[list[np.ndarray]] = [[] for _ in RECORD_COLUMNS]  # chunk arrays
        self.dropped: list[int] = []  # records whose timestamp text does not parse
        self.rejects: list[tuple[int, tuple[Any, ...]]] = []  # (quarantine position, row)

    def __len__(self) -> int:
        return self.done + self.pending()

    def pending(self) -> int:
        return len(self.rows) + len(self.typed)

    def add(self, row: tuple[Any, ...]) -> None:
        self.row_at.append(len(self))
        self.rows.append(row)

    def flush(self, quarantine_at: list[int]) -> None:
        """Turn the gathered records into columns; ``quarantine_at`` as in :class:`_Collector`."""
        size = self.pending()
        if not size:
            return
        #: each source's columns, and the unit of its integer timestamps (ns, or ms)
        sources: list[tuple[Sequence[Sequence[Any]], int]] = [
            (list(zip(*self.rows, strict=True)) if self.rows else [], 1)
        ]
        if self.typed:
            sources.append((self._typed_columns(), 1_000_000))
        place = np.zeros(size, dtype=bool)  # True: a row of ``rows``
        place[np.asarray(self.row_at, dtype=np.int64) - self.done] = True
        where = [np.flatnonzero(place), np.flatnonzero(~place)]
        failed: set[int] = set()
        for index, (name, gathered) in enumerate(zip(RECORD_COLUMNS, self.columns, strict=True)):
            kind = _KINDS.get(name, "object")
            parts = []
            for (columns, unit), at in zip(sources, where, strict=False):
                if not columns:
                    continue
                if name in TIMESTAMP_COLUMNS:
                    ns, rejected = epoch_ns_column(columns[index], unit)
                    failed.update(at[rejected].tolist())
                    parts.append((at, ns))
                else:
                    parts.append((at, _array(columns[index], kind)))
            gathered.append(_place(parts, size))
        for row in sorted(failed):
            self._drop(row, sources, where, quarantine_at)
        self.done += size
        # in place: the reading loop holds these lists
        for gathered_list in (self.rows, self.row_at, self.typed, self.typed_keys):
            gathered_list.clear()
        self.typed_exports.clear()
        self.typed_counts.clear()

    def _typed_columns(self) -> list[Sequence[Any]]:  # numpy arrays are sequences too
        """The typed values as columns of :data:`RECORD_COLUMNS`."""
        exports = list(zip(*self.typed_exports, strict=True))
        counts = np.asarray(self.typed_counts)
        file, line, user, exported = (np.repeat(_array(c, "object"), counts) for c in exports)
        progress = typed_columns(self.typed)
        shared: dict[str, str] = {}  # a few tutorials over many records: one str each
        tutorials = [shared.setdefault(t, t) for t in map(_TUTORIAL_ID, self.typed)]
        return [user, tutorials, *progress, file, line, self.typed_keys, user, exported]  # type: ignore[list-item]

    def _drop(
        self,
        row: int,
        sources: list[tuple[Sequence[Sequence[Any]], int]],
        where: list[np.ndarray],
        quarantine_at: list[int],
    ) -> None:
        """Drop the chunk's ``row``, whose timestamp text does not parse, with its reject."""
        source = 0 if row in where[0] else 1
        rank = int(np.searchsorted(where[source], row))
        values = [column[rank] for column in sources[source][0]]
        reason = _stamp_reason(values)
        file, line, key = values[_FILE_INDEX : _FILE_INDEX + 3]
        place = bisect_right(quarantine_at, self.done + row)  # rejects made before it
        self.rejects.append((place, (file, _plain(line), key, values[0], values[1], reason)))
        self.dropped.append(self.done + row)

    def columns_read(self) -> dict[str, np.ndarray]:
        """Every record's column (:func:`_array` form), the dropped records left out."""
        columns: dict[str, np.ndarray] = {}
        for name, gathered in zip(RECORD_COLUMNS, self.columns, strict=True):
            kind = _KINDS.get(name, "object")
            columns[name] = np.concatenate(gathered) if gathered else _array((), kind)
        if self.dropped:
            keep = np.ones(self.done, dtype=bool)
            keep[self.dropped] = False
            columns = {name: array[keep] for name, array in columns.items()}
        return columns


_TUTORIAL_ID = attrgetter("tutorial_id")


def _place(parts: list[tuple[np.ndarray, np.ndarray]], size: int) -> np.ndarray:
    """One chunk column of the parts' arrays, each at its places."""
    if len(parts) == 1:
        return parts[0][1]
    out = np.empty(size, dtype=parts[0][1].dtype)
    for at, values in parts:
        out[at] = values
    return out


def _plain(value: Any) -> Any:
    """A numpy scalar as its Python value (the quarantine's rows hold Python values)."""
    return value.item() if isinstance(value, np.generic) else value


def _stamp_reason(record: Sequence[Any]) -> str:
    """Why :func:`coerce_progress` rejects a record whose timestamp text does not parse."""
    for field, index in _STAMP_INDEXES.items():  # in the order coerce_progress reads them
        if type(record[index]) is str:
            try:
                to_epoch_ns(field, record[index])
            except FieldError as exc:
                return str(exc)
    raise AssertionError(f"every timestamp of {record[_FILE_INDEX + 2]!r} parses")


def _with_rejects(
    quarantine: list[tuple[Any, ...]], rejects: list[tuple[int, tuple[Any, ...]]]
) -> list[tuple[Any, ...]]:
    """``quarantine`` with each ``(position, row)`` of ``rejects`` inserted, in order."""
    merged: list[tuple[Any, ...]] = []
    done = 0
    for at, row in rejects:
        merged.extend(quarantine[done:at])
        merged.append(row)
        done = at
    merged.extend(quarantine[done:])
    return merged


def _rejecter(out: _Collector, file: str) -> Reject:
    def reject(line: int | None, reason: str) -> None:
        out.reject(_Origin(file, line), reason)

    return reject


@dataclass(frozen=True)
class _Part:
    """What some files hold, read one after the other in one process (picklable)."""

    records: dict[str, np.ndarray]  # RECORD_COLUMNS, in :func:`_array` form
    foreign: list[tuple[Any, ...]]  # FOREIGN_COLUMNS rows
    quarantine: list[tuple[Any, ...]]  # QUARANTINE_COLUMNS rows, in reading order
    exports: int
    progress: int
    ignored: int


def _read_part(files: Sequence[Path], max_bytes: int, bar: Counter | None = None) -> _Part:
    """Read ``files`` in order; runs in this process or in a worker (:func:`_read_in_pool`).

    ``bar`` (this process only) advances a file at a time.
    """
    out = _Collector()
    with no_cyclic_gc():
        for path in files:
            file = str(path)
            for line, export in read_exports(path, _rejecter(out, file), max_bytes):
                _add_export(out, _Origin(file, line), export)
            if bar is not None:
                bar.update(1)
        out.records.flush(out.quarantine_at)
        return _Part(
            records=out.records.columns_read(),
            foreign=out.foreign,
            quarantine=_with_rejects(out.quarantine, out.records.rejects),
            exports=out.exports,
            progress=out.progress,
            ignored=out.ignored,
        )


# --------------------------------------------------------------------------- worker processes

#: Below this many bytes of exports (a gzipped file counted as :data:`_GZ_RATIO` times its
#: size), one process reads them sooner than a pool of workers starts and hands its parts
#: back. Measured on 2 cores: spawning a worker and importing the loader costs ~0.6 s of
#: CPU, and one process reads ~60 MB of NDJSON a second.
POOL_MIN_BYTES = 64 << 20
#: How much a gzipped export expands, about, for balancing the workers' shares.
_GZ_RATIO = 8
#: Each worker's share is cut into about this many tasks, so that a worker that finishes
#: first takes over more of the rest.
_TASKS_PER_WORKER = 16


def _weight(path: Path) -> int:
    """About how many bytes reading ``path`` parses (0 for what is not read)."""
    kind = export_format(path)
    try:
        size = path.stat().st_size if kind is not None and path.is_file() else 0
    except OSError:
        return 0
    return size * _GZ_RATIO if kind is not None and kind[1] else size


def _worker_count(workers: int | None, total_bytes: int, files: int) -> int:
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be 1 or more, not {workers}")
    if workers is None:
        workers = _cores() if total_bytes >= POOL_MIN_BYTES else 1
    return max(1, min(workers, files))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _tasks(files: list[Path], weights: list[int], workers: int) -> list[list[Path]]:
    """``files`` cut into runs of neighbours of about equal weight, in order."""
    target = max(1, sum(weights) // (workers * _TASKS_PER_WORKER))
    tasks: list[list[Path]] = [[]]
    size = 0
    for path, weight in zip(files, weights, strict=True):
        if tasks[-1] and size + weight > target:
            tasks.append([])
            size = 0
        tasks[-1].append(path)
        size += weight
    return tasks


def _read_in_pool(
    tasks: list[list[Path]], max_bytes: int, workers: int, bar: Counter
) -> list[_Part]:
    """Each task's part, in order, read by this process and ``workers - 1`` others.

    The tasks go one at a time to whoever is free first. This process reads too, rather
    than wait: its parts are not sent anywhere, and it starts while the workers boot.
    The workers die with this process (:mod:`reconcile.workers`).
    """
    from reconcile.workers import worker_pool  # only a read big enough needs it

    parts: list[_Part | None] = [None] * len(tasks)
    failures: list[BaseException] = []
    untaken = iter(range(len(tasks)))
    finished = threading.Condition()

    def take() -> int | None:
        with finished:
            return next(untaken, None) if not failures else None

    def send() -> None:  # to the pool; its callbacks run on the pool's result thread
        index = take()
        if index is not None:
            pool.apply_async(
                _read_task,
                (tasks[index], max_bytes),
                callback=partial(received, index),
                error_callback=failed,
            )

    def received(index: int, part: _Part) -> None:
        with finished:
            parts[index] = part
            bar.update(len(tasks[index]))
            finished.notify()
        send()

    def failed(error: BaseException) -> None:
        with finished:
            failures.append(error)
            finished.notify()

    with worker_pool(workers - 1) as pool:
        for _ in range(workers - 1):
            send()
        while (index := take()) is not None:
            parts[index] = _read_part(tasks[index], max_bytes)
            with finished:
                bar.update(len(tasks[index]))
        with finished:
            finished.wait_for(lambda: failures or None not in parts)
    if failures:
        raise failures[0]
    return parts  # type: ignore[return-value]  # every part is read


#: Object columns of few distinct values, sent back by a worker as one object per value.
_FEW_VALUES = ("tutorial_id", "completed_chapters")


def _read_task(files: Sequence[Path], max_bytes: int) -> _Part:
    """:func:`_read_part` in a worker, its part made cheap to send back.

    Equal tutorial ids and chapter lists (immutable text and tuples of text) become one
    object each, which pickle sends once: rebuilding a tuple per record costs the parent
    more than reading it did.
    """
    part = _read_part(files, max_bytes)
    for name in _FEW_VALUES:
        seen: dict[Any, Any] = {}
        values = part.records[name]
        part.records[name] = np.fromiter(
            (seen.setdefault(v, v) for v in values), dtype=object, count=len(values)
        )
    return part


def _join(parts: list[_Part]) -> _Part:
    """The parts as one, as if their files had been read one after the other."""
    if len(parts) == 1:
        return parts[0]
    filled = [p.records for p in parts if len(p.records[RECORD_COLUMNS[0]])] or [parts[0].records]
    return _Part(
        records={name: np.concatenate([r[name] for r in filled]) for name in RECORD_COLUMNS},
        foreign=[row for p in parts for row in p.foreign],
        quarantine=[row for p in parts for row in p.quarantine],
        exports=sum(p.exports for p in parts),
        progress=sum(p.progress for p in parts),
        ignored=sum(p.ignored for p in parts),
    )


def load_exports(
    paths: Sequence[Path],
    *,
    max_decompressed_bytes: int = Config.max_decompressed_bytes,
    workers: int | None = None,
) -> ExportsLoad:
    """Read every export under ``paths``: own records, foreign records, quarantine.

    ``max_decompressed_bytes`` (``Config.max_decompressed_bytes``) caps what one file may
    expand to once gunzipped, the size of a plain ``.json`` file and the length of a plain
    NDJSON line, so that memory stays bounded whatever the input: the exports read before
    the cap are kept, the rest of the file is quarantined with the reason.

    ``workers`` processes read the files, each a run of neighbouring files at a time, and
    the result is the same whatever their number: ``1`` reads in this process, ``None``
    (the default) on every core when there are at least :data:`POOL_MIN_BYTES` to read,
    else in this process.
    """
    files = iter_export_files(paths)
    weights = [_weight(path) for path in files]
    count = _worker_count(workers, sum(weights), len(files))
    bar = Counter(desc="exports", unit="file", total=len(files))  # a terminal's only
    try:
        if count == 1:
            read = _read_part(files, max_decompressed_bytes, bar)
        else:
            tasks = _tasks(files, weights, count)
            log.debug("exports: %d files in %d tasks on %d workers", len(files), len(tasks), count)
            read = _join(_read_in_pool(tasks, max_decompressed_bytes, count, bar))
    finally:
        bar.close()
    with no_cyclic_gc():
        frames = (
            _frame(read.records),
            _rows_frame(read.foreign, FOREIGN_COLUMNS),
            _rows_frame(read.quarantine, QUARANTINE_COLUMNS),
        )
    stats = ExportStats(
        files=len(files),
        exports=read.exports,
        progress_records=read.progress,
        ignored_keys=read.ignored,
        foreign_records=len(read.foreign),
    )
    log.info(
        "exports: %d files, %d exports, %d progress records (%d kept, %d foreign, %d quarantined)",
        stats.files,
        stats.exports,
        stats.progress_records,
        len(frames[0]),
        stats.foreign_records,
        len(frames[2]),
    )
    return ExportsLoad(*frames, stats=stats)
