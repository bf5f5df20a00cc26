"""``apply_repair``: dry runs, real counts, the errors a person gets, and convergence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from reconcile.config import Config
from reconcile.errors import ConfigError, SourceError
from reconcile.model import AT_RISK
from reconcile.repair.apply import apply_repair, render_apply_report
from tests.repair.test_scripts import (
    BACKUP,
    HOSTILE_IDS,
    TABLE,
    _scenario,
    connect,
    diff_row,
    dump,
    make_table,
    progress,
    relations,
    rows_by_key,
    write_run,
)


@pytest.fixture
def run_dir(database_url: str, tmp_path: Path) -> Path:
    """The scenario of test_repair: 2 inserts, 2 merges (one key in sync is not written)."""
    return write_run(tmp_path / "run", _scenario(database_url))


def test_dry_run_changes_nothing_and_reports_what_would_happen(
    database_url: str, run_dir: Path
) -> None:
    before, tables = dump(database_url), relations(database_url)
    report = apply_repair(database_url, run_dir, dry_run=True, config=Config())
    assert dump(database_url) == before
    assert relations(database_url) == tables  # not even the backup table
    assert (report.inserted, report.merged, report.unchanged) == (2, 2, 0)
    assert report.dry_run
    assert report.samples["inserted"] == [("new1", "t"), ("new2", "t")]
    assert report.samples["merged"] == [("ahead", "t"), ("div", "t")]
    text = render_apply_report(report)
    assert "DRY RUN" in text and "would insert" in text and '"new1"' in text


def test_apply_reports_the_numbers_the_sql_produced(database_url: str, run_dir: Path) -> None:
    first = apply_repair(database_url, run_dir / "repair.sql", dry_run=False, config=Config())
    assert (first.inserted, first.merged, first.unchanged) == (2, 2, 0)
    assert len(rows_by_key(database_url)) == 5
    assert first.backup_table == f'"public"."{BACKUP}"'
    text = render_apply_report(first)
    assert "inserted" in text and "rollback.sql" in text and "DRY RUN" not in text
    second = apply_repair(database_url, run_dir, dry_run=False, config=Config())
    assert (second.inserted, second.merged, second.unchanged) == (0, 0, 4)
    assert "left alone" in render_apply_report(second)


def test_hostile_sample_ids_print_on_one_line(database_url: str, tmp_path: Path) -> None:
    make_table(database_url)
    rows = [diff_row(h, "t", "missing_in_backend", local=progress(["c1"])) for h in HOSTILE_IDS]
    folder = write_run(tmp_path, rows)
    report = apply_repair(database_url, folder, dry_run=True, config=Config())
    assert sorted(u for u, _ in report.samples["inserted"]) == sorted(HOSTILE_IDS)[:5]
    text = render_apply_report(report)
    assert len(text.splitlines()) == 1 + 1 + 3 + 5 + 1
    assert all(line.isprintable() for line in text.splitlines())


def test_a_repair_for_another_table_is_refused(database_url: str, tmp_path: Path) -> None:
    make_table(database_url)
    folder = write_run(tmp_path, [], table="other_progress")
    with pytest.raises(ConfigError, match=r'other_progress.*"public"\."tutorial_progress"'):
        apply_repair(database_url, folder, dry_run=False, config=Config())
    with pytest.raises(ConfigError, match="targets"):
        config = replace(Config(), schema="elsewhere", table="other_progress")
        apply_repair(database_url, folder, dry_run=False, config=config)


def test_missing_or_foreign_files_are_config_errors(tmp_path: Path) -> None:
    url = "postgresql://nobody@/db?host=/nonexistent"
    with pytest.raises(ConfigError, match=r"no repair\.sql"):
        apply_repair(url, tmp_path, dry_run=False, config=Config())
    with pytest.raises(ConfigError, match="file not found"):
        apply_repair(url, tmp_path / "nope.sql", dry_run=False, config=Config())
    (tmp_path / "repair.sql").write_text("DELETE FROM tutorial_progress;\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not a reconcile repair\.sql"):
        apply_repair(url, tmp_path, dry_run=False, config=Config())


def test_apply_runs_only_what_the_run_wrote(database_url: str, run_dir: Path) -> None:
    """The statements come from the run's diff, never from splicing the file's text."""
    before = dump(database_url)
    repair = run_dir / "repair.sql"
    original = repair.read_text(encoding="utf-8")
    edited = original.replace("COMMIT;", "DELETE FROM tutorial_progress;\nCOMMIT;")
    repair.write_text(edited, encoding="utf-8")
    with pytest.raises(ConfigError, match="edited by hand"):
        apply_repair(database_url, run_dir, dry_run=False, config=Config())
    assert dump(database_url) == before
    repair.write_text(original, encoding="utf-8")
    (run_dir / "diff.parquet").unlink()
    with pytest.raises(ConfigError, match=r"no diff\.parquet beside it.*psql"):
        apply_repair(database_url, repair, dry_run=False, config=Config())
    assert dump(database_url) == before


def test_an_unreachable_database_is_a_source_error(tmp_path: Path) -> None:
    folder = write_run(tmp_path, [])
    with pytest.raises(SourceError, match="cannot connect") as caught:
        apply_repair(
            "postgresql://nobody:secret@/db?host=/nonexistent-socket-dir",
            folder,
            dry_run=False,
            config=Config(),
        )
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_lock_timeout_rolls_everything_back(database_url: str, run_dir: Path) -> None:
    before = dump(database_url)
    with connect(database_url) as app:
        app.execute("BEGIN")
        app.execute(f"SELECT * FROM {TABLE} WHERE user_id = 'div' FOR UPDATE")
        with pytest.raises(SourceError, match=r"rolled back.*lock timeout"):
            config = replace(Config(), lock_timeout_seconds=1)
            apply_repair(database_url, run_dir, dry_run=False, config=config)
        app.execute("ROLLBACK")
    assert dump(database_url) == before
    assert ("public", BACKUP, "r") not in relations(database_url)


def test_a_failing_repair_on_a_missing_table_is_a_source_error(
    database_url: str, tmp_path: Path
) -> None:
    folder = write_run(tmp_path, [diff_row("u", "t", "missing_in_backend", local=progress(["c"]))])
    with pytest.raises(SourceError, match="does not exist"):
        apply_repair(database_url, folder, dry_run=False, config=Config())


def test_run_apply_run_converges(database_url: str, tmp_path: Path) -> None:
    """Run, apply its repair, run again: nothing at risk, and the next repair is empty."""
    from reconcile.pipeline import run_job
    from tests import small_fixture

    small_fixture.write_backend(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    first = run_job(
        database_url=database_url, exports=[exports], out=tmp_path / "out", config=Config()
    )
    assert first.summary["at_risk"] > 0
    report = apply_repair(database_url, first.run_dir, dry_run=False, config=Config())
    assert report.inserted + report.merged == first.summary["at_risk"]
    second = run_job(
        database_url=database_url, exports=[exports], out=tmp_path / "out", config=Config()
    )
    assert second.summary["at_risk"] == 0
    assert all(second.summary["counts"][s.value] == 0 for s in AT_RISK)
    # The second run's repair has nothing to do.
    again = apply_repair(database_url, second.run_dir, dry_run=False, config=Config())
    assert (again.inserted, again.merged) == (0, 0)
    with connect(database_url) as conn:
        certificates = conn.execute(
            f"SELECT count(*) FROM {TABLE} WHERE certificate_earned"
        ).fetchone()
    assert certificates == (0,)
