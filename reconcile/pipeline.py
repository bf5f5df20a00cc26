"""One nightly run: load both sources, validate, compare, write the run folder."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd
import pyarrow as pa

from reconcile.compare.status import user_totals
from reconcile.config import Config
from reconcile.db import ConnectPolicy, parse_url, redact
from reconcile.errors import ConfigError
from reconcile.model import QUARANTINE_COLUMNS, QUARANTINE_NAMES, CheckResult
from reconcile.outputs import history_store
from reconcile.outputs.dashboard import guide_dashboard
from reconcile.outputs.folder import RunFolder, run_lock
from reconcile.outputs.result import RunResult, SourceInfo, foreign_frame
from reconcile.partitions import Execution, compare_partitions
from reconcile.repair.scripts import build_repair_scripts
from reconcile.sources.backend import BackendLoad, load_backend
from reconcile.sources.exports import ExportsLoad, iter_export_files, load_exports
from reconcile.validate import nights, records, suites, volume

log = logging.getLogger(__name__)
T = TypeVar("T")


def new_run_id(moment: datetime) -> str:
    """Sortable, file-name safe and unique: ``20260120T080000Z-3f9a``."""
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def run_job(
    *,
    database_url: str,
    exports: Sequence[Path],
    out: Path,
    config: Config,
    now: datetime | None = None,
    run_id: str | None = None,
    execution: Execution | None = None,
) -> RunResult:
    """Run the whole job and write ``<out>/<run-id>/``; return the run's result.

    ``now`` (the clock of the checks) and ``run_id`` (default :func:`new_run_id`) pin a
    run for reproducible outputs, as the golden-file tests do. ``execution`` says where
    the per-key work runs (:mod:`reconcile.partitions`; default: this process); the
    outputs are the same wherever it runs.

    Raises :class:`~reconcile.errors.ConfigError` for unusable arguments and
    :class:`~reconcile.errors.SourceError` when a source cannot be read; nothing is
    written in either case.
    """
    if run_id is not None and (Path(run_id).name != run_id or run_id.startswith(".")):
        raise ConfigError(f"run id {run_id!r}: not a plain folder name")
    parse_url(database_url)
    files = iter_export_files(exports)  # walked once; a missing path fails before the database
    # Checking the suites imports Great Expectations (~3 s): done beside the loading.
    gx_suites = _Background(suites.load_suites, config.expectations_dir)
    started = datetime.now(UTC)
    clock = now or started
    out = Path(out).absolute()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out: cannot create {out}: {exc.strerror}") from None
    execution = execution or Execution()
    stage = _Stages()
    with run_lock(out), gx_suites.first_error():
        run_id = run_id or new_run_id(started)
        with stage("load_backend"):
            backend = load_backend(
                database_url,
                config.schema,
                config.table,
                policy=replace(ConnectPolicy.of(config), before_retry=gx_suites.result),
            )
            stage.note(rows=len(backend.frame))
        with stage("load_exports"):
            local = load_exports(files, max_decompressed_bytes=config.max_decompressed_bytes)
            stage.note(files=local.stats.files, rows=local.stats.progress_records)
        with stage("validate_and_compare"):
            gated, diff = _validate_and_compare(backend, local, execution, now=clock, config=config)
            stage.note(rows=len(diff))
        past = history_store.load_history(out)
        with RunFolder(out, run_id) as folder:
            with stage("checks"):
                checks, docs, docs_pages = _checks(
                    backend, local, gated, past, gx_suites.result(), folder, clock, config
                )
            source, foreign, quarantine = (
                _source_info(database_url, exports, backend, local),
                _foreign(local.foreign),
                gated.quarantine,
            )
            # The local records are done with: freed here, the report and the files are
            # built in their memory (about 0.5 GiB at a million keys).
            del local, gated
            with stage("repair_sql"):
                scripts = build_repair_scripts(
                    diff, run_id=run_id, schema=config.schema, table=config.table
                )
            totals = user_totals(diff)
            result = RunResult(
                run_id=run_id,
                started_at=started,
                finished_at=datetime.now(UTC),
                source=source,
                diff=diff,
                quarantine=quarantine,
                totals=totals,
                checks=checks,
                run_dir=out / run_id,
                scripts=scripts,
                history_note=_history_note(past),
                # the pages are built in the temporary folder; the result names the final one
                docs_index=out / run_id / docs.relative_to(folder.path) if docs else None,
                docs_pages=docs_pages,
                timings=dict(stage.seconds),
                foreign=foreign,
                dashboard=guide_dashboard(backend.frame, totals),
                fail_on=config.fail_on,
            )
            with stage("write"):
                folder.write(result)
        suites.commit_night(out, run_id)
        history_store.record_night(
            out,
            run_id,
            _metrics(result),
            backend.frame,
            good=_good_night(result, suites.night_over_night_checks(gx_suites.result())),
            now=clock,
        )
    log.info("run %s written to %s", run_id, result.run_dir)
    return result


@dataclass(frozen=True)
class _Gated:
    """Both sources through the record gate: what passed, and the run's quarantine."""

    backend: records.RecordGate
    valid_local: pd.DataFrame
    quarantine: pd.DataFrame


def _validate_and_compare(
    backend: BackendLoad, local: ExportsLoad, execution: Execution, *, now: datetime, config: Config
) -> tuple[_Gated, pd.DataFrame]:
    """Record gate, merge and one status per key, per hash partition of ``user_id``.

    A key to repair whose repaired row the record gate would reject is a conflict.
    """
    compared = compare_partitions(
        backend.frame,
        local.records,
        local.quarantine,
        local.foreign,
        execution=execution,
        now=now,
        config=config,
    )
    gated = _Gated(
        backend=compared.backend_gate,
        valid_local=local.records[compared.local_gate.valid],
        quarantine=_quarantine(local.quarantine, local.records, compared.local_gate),
    )
    return gated, compared.diff


def _checks(
    backend: BackendLoad,
    local: ExportsLoad,
    gated: _Gated,
    past: nights.History,
    gx_suites: dict[str, Any],
    folder: RunFolder,
    now: datetime,
    config: Config,
) -> tuple[tuple[CheckResult, ...], Path | None, dict[str, str]]:
    """Great Expectations suites, night-over-night regressions and the local volume."""
    outcome = suites.run_checks(
        backend.frame,
        gated.valid_local,
        config=config,
        history=past,
        now=now,
        docs_dir=folder.path / "data-docs",
        suites=gx_suites,
        project=folder.final.parent,
        run_id=folder.final.name,
    )
    checks = (
        *outcome.checks,
        *nights.regression_checks(past, backend.frame),
        *volume.local_volume_checks(
            past,
            files=local.stats.files,
            exports=local.stats.exports,
            records=local.stats.progress_records,
            config=config,
        ),
    )
    return checks, outcome.docs_index, outcome.docs_pages


class _Background(Generic[T]):
    """``work(*args)`` on a daemon thread, started now; :meth:`result` waits for it.

    A daemon, so that a stopped run (SIGTERM, Ctrl-C) exits without waiting for it.
    """

    def __init__(self, work: Callable[..., T], *args: Any) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work, args), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[..., T], args: tuple[Any, ...]) -> None:
        try:
            self._value = work(*args)
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> T:
        """The work's value, or its exception raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    @contextlib.contextmanager
    def first_error(self) -> Iterator[None]:
        """Inside: an error of the block gives way to the work's own error, if it has one.

        A bad suite is a configuration error and says so even when the database is down
        too, as it did when the suites were checked before anything was read.
        """
        try:
            yield
        except Exception:
            self.result()
            raise


class _Stages:
    """Times each stage of a run, for the log (``-v``) and ``summary.json``.

    One log line per stage, with its seconds and what it counted (:meth:`note`: ``rows``,
    ``files``), also as fields of a JSON log line (``--log-format json``).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def note(self, **counts: int) -> None:
        """Counts of the current stage, for its log line."""
        self._counts.update(counts)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        begin = time.perf_counter()
        self._counts = {}
        yield
        # Arrow's allocator keeps what a stage freed (the backend's COPY text, a Parquet
        # table): about 0.5 GiB after loading a million rows, unless handed back here.
        pa.default_memory_pool().release_unused()
        self.seconds[name] = round(time.perf_counter() - begin, 3)
        counted = "".join(f", {n:,} {what}" for what, n in self._counts.items())
        log.info(
            "stage %s took %.2f s%s",
            name,
            self.seconds[name],
            counted,
            extra={"stage": name, "seconds": self.seconds[name], **self._counts},
        )


def _source_info(
    database_url: str, exports: Sequence[Path], backend: BackendLoad, local: ExportsLoad
) -> SourceInfo:
    return SourceInfo(
        database=redact(database_url),
        table=backend.table,
        exports=tuple(str(p) for p in exports),
        files=local.stats.files,
        exports_read=local.stats.exports,
        ignored_keys=local.stats.ignored_keys,
        foreign_records=local.stats.foreign_records,
        local_records=local.stats.progress_records,
        backend_rows=len(backend.frame),
    )


def _quarantine(
    loader: pd.DataFrame, local: pd.DataFrame, gate: records.RecordGate
) -> pd.DataFrame:
    """The run's quarantine: the loader's rejections plus the records the schema rejected.

    Renamed here, and only here, to SPEC 4's columns (:data:`~reconcile.model.QUARANTINE_NAMES`).
    """
    columns = list(QUARANTINE_COLUMNS)
    frames = [loader[columns]]
    if not gate.failures.empty:
        reasons = gate.reasons()
        reasons = reasons[reasons != ""]
        rejected = local.loc[reasons.index].assign(reason=reasons.to_numpy())
        frames.append(rejected[columns])
    frames = [f for f in frames if not f.empty] or frames[:1]
    out = pd.concat(frames, ignore_index=True).rename(columns=QUARANTINE_NAMES)
    out["line"] = out["line"].astype("Int64")
    return out


def _foreign(records: pd.DataFrame) -> pd.DataFrame:
    """The loader's foreign records under the run's names (``foreign.csv``)."""
    return foreign_frame(
        {
            "file": records["source_file"],
            "line": records["source_line"],
            "key": records["storage_key"],
            "user_id": records["user_id"],
            "tutorial_id": records["tutorial_id"],
            "export_user_id": records["export_user_id"],
        }
    )


def _good_night(result: RunResult, night_over_night: frozenset[str]) -> bool:
    """A night later nights may be compared with: no count, volume or regression check failed.

    Row-level range anomalies do not spoil a night (they are reported, and they would
    otherwise freeze the baseline until every bad row is fixed); a drop in row counts or
    progress that went backward does, so a re-run after the fix compares with the night
    before the trouble.
    """
    return not any(
        c.name in night_over_night or c.suite in (nights.HISTORY_SUITE, volume.SUITE)
        for c in result.failed_checks
    )


def _history_note(past: nights.History) -> str:
    if not past.nights:
        return "No history yet: this is the first night in this output folder."
    good = past.good_nights
    return (
        f"Compared with {len(past.nights)} earlier night(s); "
        f"{len(good)} of them good (no count, local volume or regression check failed; "
        "range anomalies do not spoil a night)."
    )


def _metrics(result: RunResult) -> dict[str, object]:
    """What the night-over-night history keeps of a run."""
    backend_users = result.diff.loc[result.diff["backend_id"].notna(), "user_id"].nunique()
    return {
        "run_id": result.run_id,
        "started_at": result.summary["started_at"],
        "backend_rows": result.source.backend_rows,
        "distinct_users": int(backend_users),
        "counts": result.counts,
        "checks": {c.name: c.unexpected_count for c in result.checks},
        "migration_success_rate": result.totals.migration_success_rate,
        "at_risk": result.totals.at_risk,
        **volume.local_volume(
            files=result.source.files,
            exports=result.source.exports_read,
            records=result.source.local_records,
        ),
    }
