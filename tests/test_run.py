"""The nightly run end to end on a real PostgreSQL, with the small documented fixture."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from reconcile.config import Config
from reconcile.model import Status
from reconcile.outputs.artifacts import list_runs
from reconcile.pipeline import run_job
from tests import small_fixture
from tests.small_fixture import CASES


@pytest.fixture
def fixture_db(database_url: str, tmp_path: Path) -> tuple[str, Path]:
    small_fixture.write_backend(database_url)
    return database_url, small_fixture.write_exports(tmp_path / "exports")


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reconcile", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_every_key_gets_its_documented_status(fixture_db: tuple[str, Path], tmp_path: Path) -> None:
    url, exports = fixture_db
    result = run_job(database_url=url, exports=[exports], out=tmp_path / "out", config=Config())

    diff = pd.read_parquet(result.run_dir / "diff.parquet")
    got = {(u, t): s for u, t, s in zip(diff.user_id, diff.tutorial_id, diff.status, strict=True)}
    expected = {(c.user, c.tutorial): c.status for c in CASES}
    assert got == expected
    assert {c.status for c in CASES} == {s.value for s in Status}

    summary = json.loads((result.run_dir / "summary.json").read_text())
    for status in Status:
        assert summary["counts"][status.value] == sum(c.status == status for c in CASES)
    assert summary["counts"]["backend_rows"] == sum(c.backend is not None for c in CASES)
    # every local record is one progress key; the duplicate upload adds one more
    assert summary["counts"]["local_records"] == sum(len(c.local) for c in CASES) + 1
    assert summary["counts"]["quarantined"] == 1  # u-badlocal's 150 %
    own = {c.user for c in CASES if c.local and c.exporter is None and c.status != "invalid_local"}
    assert summary["counts"]["users_with_local_data"] == len(own)
    at_risk_users = {
        c.user for c in CASES if c.status in {"missing_in_backend", "local_ahead", "diverged"}
    }
    assert summary["at_risk"] == sum(
        c.status in {"missing_in_backend", "local_ahead", "diverged"} for c in CASES
    )
    assert summary["migration_success_rate"] == pytest.approx(
        (len(own) - len(at_risk_users)) / len(own), abs=1e-6
    )
    for name in ("run_id", "started_at", "finished_at", "checks"):
        assert name in summary
    assert summary["run_id"] == result.run_dir.name
    stages = {"load_backend", "load_exports", "validate_and_compare", "checks"}
    assert stages <= set(summary["timings_seconds"])

    cert = diff[diff.user_id == "u-cert"].iloc[0]
    assert bool(cert.certificate_claim)
    quarantine = pd.read_csv(result.run_dir / "quarantine.csv")
    assert list(quarantine.columns) == ["file", "line", "key", "user_id", "tutorial_id", "reason"]
    assert quarantine.loc[0, "key"] == f"tutorial_progress_{small_fixture.T}_u-badlocal"
    assert quarantine.loc[0, "file"].endswith((".ndjson", ".json", ".jsonl", ".json.gz"))
    assert quarantine.loc[0, "user_id"] == "u-badlocal"
    assert "completion" in quarantine.loc[0, "reason"]
    for name in ("index.html", "repair.sql", "rollback.sql", "review.sql"):
        assert (result.run_dir / name).is_file()


def test_exit_code_1_when_actionable_and_0_when_clean(
    fixture_db: tuple[str, Path], tmp_path: Path
) -> None:
    url, exports = fixture_db
    done = cli(
        "run", "--database-url", url, "--exports", str(exports), "--out", str(tmp_path / "o")
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""  # quiet for cron: stdout has the run folder, stderr nothing
    run_dir = Path(done.stdout.strip())
    assert (run_dir / "summary.json").is_file()

    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "one.json").write_text(json.dumps(small_fixture.exports([CASES[0]])[0]))
    import psycopg

    from reconcile.db import libpq_url

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("DELETE FROM tutorial_progress WHERE user_id <> 'u-sync'")
    done = cli(
        "run", "--exports", str(clean), "--out", str(tmp_path / "o2"), env={"DATABASE_URL": url}
    )
    assert done.returncode == 0, done.stderr


def test_exit_code_2_for_usage_errors(tmp_path: Path) -> None:
    bad_flag = cli("run", "--no-such-flag")
    assert bad_flag.returncode == 2
    assert bad_flag.stderr.count("\n") == 1 and "Traceback" not in bad_flag.stderr

    missing = cli(
        "run",
        "--database-url",
        "postgresql://u@localhost/db",
        "--exports",
        str(tmp_path / "nope"),
        "--out",
        str(tmp_path / "o"),
    )
    assert missing.returncode == 2
    assert "--exports" in missing.stderr and str(tmp_path / "nope") in missing.stderr
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_exit_code_3_for_an_unreachable_database(tmp_path: Path) -> None:
    exports = small_fixture.write_exports(tmp_path / "exports")
    once = tmp_path / "once.toml"  # one attempt: the default retries for 60 s
    once.write_text("[backend]\nretry_seconds = 0\n", encoding="utf-8")
    done = cli(
        "run",
        "--config",
        str(once),
        "--database-url",
        "postgresql://who:secret-pw@127.0.0.1:1/nodb",
        "--exports",
        str(exports),
        "--out",
        str(tmp_path / "o"),
    )
    assert done.returncode == 3
    assert done.stderr.startswith("reconcile: error: cannot connect")
    assert "secret-pw" not in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_missing_table_is_exit_3(database_url: str, tmp_path: Path) -> None:
    exports = small_fixture.write_exports(tmp_path / "exports")
    done = cli(
        "run",
        "--database-url",
        database_url,
        "--exports",
        str(exports),
        "--out",
        str(tmp_path / "o"),
    )
    assert done.returncode == 3
    assert "tutorial_progress" in done.stderr


def test_a_killed_run_leaves_no_run_folder(fixture_db: tuple[str, Path], tmp_path: Path) -> None:
    url, exports = fixture_db
    out = tmp_path / "out"
    # Slow the run down with many exports so that we can kill it part way.
    big = exports / "big.ndjson"
    line = json.dumps(small_fixture.exports([CASES[1]])[0])
    big.write_text((line + "\n") * 200_000)
    for sig in (signal.SIGKILL, signal.SIGTERM):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconcile",
                "run",
                "--database-url",
                url,
                "--exports",
                str(exports),
                "--out",
                str(out),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out / ".reconcile.lock").exists():
            time.sleep(0.05)
        time.sleep(1.0)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(sig)
        proc.wait(timeout=60)
        runs = [p for p in out.iterdir() if not p.name.startswith(".")]
        assert runs == [], f"{sig!r} left {runs}"
    # the next run sweeps what a SIGKILL left behind and completes
    big.unlink()
    result = run_job(database_url=url, exports=[exports], out=out, config=Config())
    assert [p.name for p in list_runs(out)] == [result.run_id]
    assert not list(out.glob(".tmp-*"))


def test_range_anomalies_do_not_spoil_the_night_for_history(
    fixture_db: tuple[str, Path], tmp_path: Path
) -> None:
    """The fixture's invalid_backend rows fail range checks; the night is still a baseline."""
    from reconcile.outputs.history_store import load_history

    url, exports = fixture_db
    out = tmp_path / "out"
    first = run_job(database_url=url, exports=[exports], out=out, config=Config())
    assert first.failed_checks  # range anomalies are reported ...
    past = load_history(out)
    assert [n["run_id"] for n in past.good_nights] == [first.run_id]  # ... yet it is a baseline
    assert past.snapshot_run_id == first.run_id


def test_an_unusable_out_folder_is_exit_2(tmp_path: Path) -> None:
    exports = small_fixture.write_exports(tmp_path / "exports")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = cli(
        "run",
        "--database-url",
        "postgresql://u@127.0.0.1:1/db",
        "--exports",
        str(exports),
        "--out",
        str(blocker / "out"),
    )
    assert done.returncode == 2
    assert done.stderr.startswith("reconcile: error: --out") and done.stderr.count("\n") == 1


def test_a_second_run_while_one_holds_the_lock_is_refused(tmp_path: Path) -> None:
    import fcntl

    exports = small_fixture.write_exports(tmp_path / "exports")
    out = tmp_path / "out"
    out.mkdir()
    with (out / ".reconcile.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = cli(
            "run",
            "--database-url",
            "postgresql://u@127.0.0.1:1/db",
            "--exports",
            str(exports),
            "--out",
            str(out),
        )
    assert done.returncode == 2
    assert "another reconcile run" in done.stderr


def test_foreign_records_say_whose_export_held_them(
    fixture_db: tuple[str, Path], tmp_path: Path
) -> None:
    """foreign.csv (and RunResult.foreign): the file and line of each set-aside record."""
    from reconcile.outputs.artifacts import load_run

    url, exports = fixture_db
    result = run_job(database_url=url, exports=[exports], out=tmp_path / "out", config=Config())
    foreign = load_run(result.run_dir).foreign
    guest = foreign[foreign["user_id"] == "u-guest"]
    assert len(guest) == 1
    assert guest["export_user_id"].tolist() == ["u-host"]
    assert Path(guest["file"].iloc[0]).is_relative_to(exports)
    assert int(guest["line"].iloc[0]) >= 1
    assert guest["key"].iloc[0].endswith("_u-guest")
    assert result.foreign.astype(str).equals(foreign.astype(str))
    assert result.summary["dashboard"]["health"]["total_records"] == result.source.backend_rows


def test_the_result_names_its_data_docs_where_they_are(
    fixture_db: tuple[str, Path], tmp_path: Path
) -> None:
    """docs_index points into the completed run folder, not the temporary one it was built in."""
    url, exports = fixture_db
    result = run_job(database_url=url, exports=[exports], out=tmp_path / "out", config=Config())
    assert result.docs_index is not None
    assert result.docs_index.is_file()
    assert result.docs_index.is_relative_to(result.run_dir)
    html = (result.run_dir / "index.html").read_text(encoding="utf-8")
    assert f'href="{result.docs_index.relative_to(result.run_dir).as_posix()}' in html
