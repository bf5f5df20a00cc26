"""Run a run's repair against the database, for real or as a dry run (SPEC 4).

SQL is data: the repair is built again from the run's ``diff.parquet`` by the same pure
function that wrote ``repair.sql`` (:func:`~reconcile.repair.scripts.build_repair_scripts`),
checked to be byte for byte the file on disk (so what runs is what a person reviewed),
and its statements run in a transaction of ours: the configured ``lock_timeout`` and
``statement_timeout`` apply (``SET LOCAL``) and a dry run rolls everything back. The
numbers reported are the ones the SQL itself recorded in its temporary result table,
read before the transaction ends. An edited ``repair.sql`` is not applied here: run it
with ``psql``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from reconcile.config import Config
from reconcile.db import connect, redact
from reconcile.errors import ConfigError, SourceError
from reconcile.model import DIFF
from reconcile.outputs.diff_file import read_diff
from reconcile.quoting import read_header, show, target_display
from reconcile.repair.scripts import INPUT_TABLE, RESULT_TABLE, build_repair_scripts

log = logging.getLogger(__name__)

REPAIR_FILE = "repair.sql"
SAMPLE_SIZE = 5
#: Outcomes as reported: the keys of ``ApplyReport.samples``.
OUTCOMES = ("inserted", "merged", "unchanged")

_COUNTS = sql.SQL("""
SELECT COALESCE(r.outcome, 'unchanged') AS outcome, count(*)
  FROM pg_temp.{input} AS i
  LEFT JOIN pg_temp.{result} AS r ON r.user_id = i.user_id AND r.tutorial_id = i.tutorial_id
 GROUP BY 1
""")

_SAMPLES = sql.SQL("""
SELECT outcome, user_id, tutorial_id
  FROM (SELECT COALESCE(r.outcome, 'unchanged') AS outcome, i.user_id, i.tutorial_id,
               row_number() OVER (PARTITION BY COALESCE(r.outcome, 'unchanged')
                                  ORDER BY i.n) AS rank
          FROM pg_temp.{input} AS i
          LEFT JOIN pg_temp.{result} AS r
            ON r.user_id = i.user_id AND r.tutorial_id = i.tutorial_id) AS s
 WHERE rank <= {limit}
 ORDER BY outcome, rank
""")


@dataclass(frozen=True)
class ApplyReport:
    """What one application of a repair did (or, in a dry run, would do)."""

    inserted: int
    merged: int
    unchanged: int
    dry_run: bool
    #: Up to :data:`SAMPLE_SIZE` ``(user_id, tutorial_id)`` per outcome of :data:`OUTCOMES`.
    samples: dict[str, list[tuple[str, str]]]
    source: Path = Path(REPAIR_FILE)
    run_id: str = ""
    table: str = ""
    backup_table: str = ""
    database: str = ""
    seconds: float = 0.0


def apply_repair(url: str, target: Path, *, dry_run: bool, config: Config) -> ApplyReport:
    """Run the repair of ``target`` (a run folder or its ``repair.sql``) in one transaction.

    Raises :class:`ConfigError` when the file is missing, is not a reconcile repair, was
    made for another table than ``config``'s, or is not what the run's ``diff.parquet``
    gives; :class:`SourceError` when the database cannot be reached or the repair fails
    (it is then rolled back entirely).
    """
    path = _repair_path(Path(target))
    text = _read(path)
    header = read_header(text)
    _check_target(path, header, config)
    body = _statements(path, text, header, config)
    started = time.monotonic()
    with connect(url, autocommit=True) as conn:
        conn.execute("SET client_encoding TO 'UTF8'")
        conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        try:
            counts, samples = _run(conn, body, config, dry_run=dry_run)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SourceError(
                f"{path}: the repair failed and was rolled back, nothing changed: {first}"
            ) from None
    report = ApplyReport(
        inserted=counts.get("inserted", 0),
        merged=counts.get("merged", 0),
        unchanged=counts.get("unchanged", 0),
        dry_run=dry_run,
        samples=samples,
        source=path,
        run_id=header.get("run id", ""),
        table=header.get("target table", ""),
        backup_table=header.get("backup table", ""),
        database=redact(url),
        seconds=time.monotonic() - started,
    )
    log.info(
        "%s %s: %d inserted, %d merged, %d unchanged",
        "dry run of" if dry_run else "applied",
        path,
        report.inserted,
        report.merged,
        report.unchanged,
    )
    return report


def _run(
    conn: psycopg.Connection, body: str, config: Config, *, dry_run: bool
) -> tuple[dict[str, int], dict[str, list[tuple[str, str]]]]:
    names = {"input": sql.Identifier(INPUT_TABLE), "result": sql.Identifier(RESULT_TABLE)}
    with conn.transaction() as tx:
        for name, seconds in (
            ("lock_timeout", config.lock_timeout_seconds),
            ("statement_timeout", config.statement_timeout_seconds),
        ):
            conn.execute("SELECT set_config(%s, %s, true)", (name, f"{seconds}s"))
        conn.execute(body.encode("utf-8"))
        rows = conn.execute(_COUNTS.format(**names)).fetchall()
        counts = {str(outcome): int(n) for outcome, n in rows}
        samples: dict[str, list[tuple[str, str]]] = {o: [] for o in OUTCOMES}
        query = _SAMPLES.format(**names, limit=sql.Literal(SAMPLE_SIZE))
        for outcome, user_id, tutorial_id in conn.execute(query):
            samples.setdefault(str(outcome), []).append((user_id, tutorial_id))
        if dry_run:
            raise psycopg.Rollback(tx)  # leaves the block quietly, everything undone
    return counts, samples


def _repair_path(target: Path) -> Path:
    if target.is_dir():
        path = target / REPAIR_FILE
        if not path.is_file():
            raise ConfigError(f"{target}: no {REPAIR_FILE} in this folder (is it a run folder?)")
        return path
    if not target.is_file():
        raise ConfigError(f"{target}: file not found; pass a run folder or its {REPAIR_FILE}")
    return target


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def _check_target(path: Path, header: dict[str, str], config: Config) -> None:
    made_for = header.get("target table")
    if made_for is None or "format" not in header:
        raise ConfigError(f"{path}: not a reconcile repair.sql (no '-- target table:' header)")
    expected = target_display(config.schema, config.table)
    if made_for != expected:
        raise ConfigError(
            f"{path} repairs {made_for} but the configuration targets {expected}; "
            "pass the --config the run used"
        )


def _statements(path: Path, text: str, header: dict[str, str], config: Config) -> str:
    """The repair's statements, built again from the run's diff and checked against ``text``."""
    diff_path = path.parent / DIFF
    if not diff_path.is_file():
        raise ConfigError(
            f"{path}: no {DIFF} beside it; apply needs the run folder the repair came from "
            f"(or run the file with psql -v ON_ERROR_STOP=1 -f {path.name})"
        )
    try:
        diff = read_diff(diff_path)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{diff_path}: cannot read: {exc}") from None
    scripts = build_repair_scripts(
        diff, run_id=header.get("run id", ""), schema=config.schema, table=config.table
    )
    if scripts.repair != text:
        raise ConfigError(
            f"{path} is not what the run's {DIFF} gives (edited by hand?); apply runs only "
            "what a run wrote: run an edited file with psql -v ON_ERROR_STOP=1 -f"
        )
    return scripts.statements


def render_apply_report(report: ApplyReport) -> str:
    """The terminal summary of :func:`apply_repair` (what the CLI prints)."""
    verb = {"inserted": "insert", "merged": "merge", "unchanged": "leave alone"}
    lines = [f"repair {report.source} -> {report.table or '?'} (run {report.run_id or '?'})"]
    if report.dry_run:
        lines.append("DRY RUN: the transaction was rolled back; nothing was changed.")
    for outcome in OUTCOMES:
        count = getattr(report, outcome)
        label = f"would {verb[outcome]}" if report.dry_run else _done(outcome)
        lines.append(f"  {label:<18}{count:>9}")
        for user_id, tutorial_id in report.samples.get(outcome, [])[:SAMPLE_SIZE]:
            lines.append(f"      user_id {show(user_id)}, tutorial_id {show(tutorial_id)}")
    if not report.dry_run and (report.inserted or report.merged):
        lines.append(
            f"backup: {report.backup_table}; undo with "
            "psql -v ON_ERROR_STOP=1 -f rollback.sql (from the same run folder)"
        )
    lines.append(f"({report.seconds:.1f} s)")
    return "\n".join(lines)


def _done(outcome: str) -> str:
    return {"inserted": "inserted", "merged": "merged", "unchanged": "left alone"}[outcome]
