"""An empty or shrunken local side through the whole job: a failed check, exit 1, in the report.

The backend is clean (every row valid) and the exports, when there are any, match it: the
only thing that can fail is the local volume, so exit 1 is the volume checks' doing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconcile.cli import main
from reconcile.outputs.history_store import load_history
from reconcile.pipeline import _history_note
from reconcile.validate.nights import History
from tests.test_nights import in_sync_export, insert_clean_rows

VOLUME = ("local.files_min", "local.exports_min", "local.records_min")


def write_exports(folder: Path, users: int) -> Path:
    """One NDJSON file with one in-sync export (two progress records) for each of ``users``."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    lines = [json.dumps(in_sync_export(f"u{i:03d}")) for i in range(users)]
    (folder / "uploads.ndjson").write_text("\n".join(lines) + "\n")
    return folder


def run(
    url: str, exports: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict, Path]:
    code = main(
        ["run", "--database-url", url, "--exports", str(exports), "--out", str(out), *extra]
    )
    run_dir = Path(capsys.readouterr().out.strip())
    return code, json.loads((run_dir / "summary.json").read_text()), run_dir


def failed(summary: dict) -> dict[str, dict]:
    return {c["name"]: c for c in summary["checks"] if not c["success"]}


def report_row(run_dir: Path, name: str) -> str:
    """The report's row for check ``name`` (the checks table has one row per check)."""
    html = (run_dir / "index.html").read_text(encoding="utf-8")
    (row,) = [r for r in html.split("<tr>") if f'<td class="id">{name}</td>' in r]
    return row


@pytest.fixture
def empty_exports(database_url: str, tmp_path: Path) -> tuple[str, Path]:
    """A clean backend of 10 users and an exports folder with nothing in it."""
    insert_clean_rows(database_url, 10)
    (tmp_path / "exports").mkdir()
    return database_url, tmp_path / "exports"


def test_an_exports_folder_with_no_files_is_a_failed_check(
    empty_exports: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, summary, run_dir = run(*empty_exports, tmp_path / "out", capsys)

    assert code == 1 and summary["exit_code"] == 1
    assert set(failed(summary)) == set(VOLUME)  # nothing else is wrong
    files = failed(summary)["local.files_min"]
    assert files["suite"] == "local_volume" and files["unexpected_count"] == 1
    assert files["details"].startswith("0 export files, expected at least 1 (floor 1;")
    for name in VOLUME:
        assert "FAIL" in report_row(run_dir, name)
    (recorded,) = load_history(tmp_path / "out").nights
    assert (recorded["local_files"], recorded["local_exports"], recorded["local_records"]) == (
        0,
        0,
        0,
    )
    assert recorded["good"] is False  # an empty night is never the baseline


def test_files_with_no_progress_records_are_a_failed_check(
    empty_exports: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, exports = empty_exports
    envelope = {"userId": "u000", "exportedAt": "2026-01-01T12:00:00Z"}
    (exports / "a.json").write_text(json.dumps({**envelope, "localStorage": {"theme": "dark"}}))
    (exports / "b.ndjson").write_text(
        json.dumps({**envelope, "localStorage": {"lang": "en", "tutorial_prefs": "{}"}}) + "\n"
    )
    code, summary, run_dir = run(url, exports, tmp_path / "out", capsys)

    assert code == 1
    assert set(failed(summary)) == {"local.records_min"}
    assert failed(summary)["local.records_min"]["details"].startswith(
        "0 local progress records, expected at least 1"
    )
    assert summary["source"]["files"] == 2 and summary["source"]["exports_read"] == 2
    assert summary["source"]["ignored_keys"] == 3
    assert "FAIL" in report_row(run_dir, "local.records_min")
    assert "pass" in report_row(run_dir, "local.files_min")


def test_a_sharp_drop_fails_against_the_last_good_night(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    insert_clean_rows(database_url, 500)
    exports, out = tmp_path / "exports", tmp_path / "out"

    # Night 1: 500 exports, 1000 records, all in sync: nothing to do, every check passes.
    code, first, _ = run(database_url, write_exports(exports, 500), out, capsys)
    assert (code, failed(first)) == (0, {})
    assert first["counts"]["local_records"] == 1000

    # Night 2: only 150 exports (300 records) came: a failed check, and not a good night.
    code, second, run_dir = run(database_url, write_exports(exports, 150), out, capsys)
    assert code == 1
    assert set(failed(second)) == {"local.exports_min", "local.records_min"}
    assert failed(second)["local.records_min"]["details"] == (
        f"300 local progress records, expected at least 500 (floor 1; last good night "
        f"{first['run_id']} had 1000, a drop of at most 50% allows 500)"
    )
    assert "FAIL" in report_row(run_dir, "local.records_min")
    assert [n["good"] for n in load_history(out).nights] == [True, False]

    # Night 3: a normal night again (900 records): compared with night 1, not night 2.
    code, third, _ = run(database_url, write_exports(exports, 450), out, capsys)
    assert (code, failed(third)) == (0, {})
    records = next(c for c in third["checks"] if c["name"] == "local.records_min")
    assert f"last good night {first['run_id']} had 1000" in records["details"]
    assert "2 earlier night(s); 1 of them good" in third["history"]
    assert [n["good"] for n in load_history(out).nights] == [True, False, True]


def test_the_floors_can_be_turned_off(
    empty_exports: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deployment where an empty night is normal sets the floors to 0."""
    config = tmp_path / "reconcile.toml"
    config.write_text("[checks]\nmin_export_files = 0\nmin_exports = 0\nmin_local_records = 0\n")
    code, summary, _ = run(*empty_exports, tmp_path / "out", capsys, "--config", str(config))
    assert (code, failed(summary)) == (0, {})


def test_the_history_note_says_what_a_good_night_is() -> None:
    past = History(nights=({"run_id": "a", "good": True}, {"run_id": "b", "good": False}))
    note = _history_note(past)
    assert note.startswith("Compared with 2 earlier night(s); 1 of them good")
    assert "all checks passed" not in note  # a good night may have failed range checks
    assert "no count, local volume or regression check failed" in note
    assert "range anomalies do not spoil a night" in note
