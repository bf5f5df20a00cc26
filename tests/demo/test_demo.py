"""`reconcile demo`: the seeded data, its loading, its export files and the whole demo run."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from reconcile.db import libpq_url
from reconcile.demo.data import DEFAULT_NOW, FAR_FUTURE
from reconcile.demo.run import build_dataset, load_backend_rows, run_demo, write_exports
from reconcile.model import Status
from reconcile.sources.backend import load_backend

SMALL = 120  # ordinary users for the fast tests; the planted ones come on top
ALL_STATUSES = {s.value for s in Status}

_DIGEST = """
import hashlib, json
from reconcile.demo.run import build_dataset
d = build_dataset(users={users})
blob = json.dumps([d.exports, sorted(map(list, d.expected.items())),
                   sorted(map(list, d.background.items()))], sort_keys=True)
print(hashlib.sha256(blob.encode() + d.backend.to_json(date_unit="us").encode()).hexdigest())
"""


@pytest.fixture(scope="module")
def dataset():
    return build_dataset(users=SMALL)


def _digest(users: int, hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    code = _DIGEST.format(users=users)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


# --------------------------------------------------------------------------- the dataset


def test_same_seed_same_data(dataset) -> None:
    again = build_dataset(users=SMALL)
    assert again.exports == dataset.exports
    assert again.expected == dataset.expected
    assert again.background == dataset.background
    pd.testing.assert_frame_equal(again.backend, dataset.backend)
    other = build_dataset(users=SMALL, seed=7)
    assert other.exports != dataset.exports


def test_same_data_in_every_process() -> None:
    """No dependence on string hashing (set order) or the wall clock."""
    assert _digest(40, "1") == _digest(40, "2")


def test_every_status_is_planted(dataset) -> None:
    assert set(dataset.expected.values()) == ALL_STATUSES
    assert set(dataset.notes) == set(dataset.expected)
    assert not set(dataset.expected) & set(dataset.background)


def test_backend_rows_are_plausible(dataset) -> None:
    rows = dataset.backend
    assert not rows.duplicated(["user_id", "tutorial_id"]).any()
    stamps = rows[["started_at", "completed_at", "last_accessed_at", "created_at", "updated_at"]]
    planted_future = rows["user_id"].eq("p-bad-future")
    past = stamps[~planted_future].stack()
    assert past.max() < pd.Timestamp(DEFAULT_NOW)
    assert past.min() >= pd.Timestamp("2025-09-01", tz=UTC)
    assert stamps[planted_future].stack().max() == pd.Timestamp(FAR_FUTURE)
    normal = rows[~rows["user_id"].str.startswith("p-bad-")]
    expected_pct = (100 * normal["chapters_completed"] / normal["total_chapters"]).round(2)
    assert (normal["completion_percentage"] == expected_pct).all()
    assert (normal["updated_at"] >= normal["created_at"]).all()
    assert (normal["total_watch_time"] > 0).all()
    assert all(e["exportedAt"] < "2026-01-20T08:00:00.000Z" for e in dataset.exports)


def test_a_healthy_but_imperfect_migration() -> None:
    """Default size: most keys are in sync, behind or backend-only; the rate misses 90%."""
    full = build_dataset()
    intended = {**full.background, **full.expected}
    counts = pd.Series(intended).value_counts()
    assert counts[["in_sync", "backend_ahead", "backend_only"]].sum() > 0.9 * len(intended)
    local_users = {u for (u, _), s in intended.items() if s not in _NO_LOCAL}
    lost = {u for (u, _), s in intended.items() if s in _AT_RISK}
    rate = 1 - len(lost) / len(local_users)
    assert 0.85 <= rate < 0.90
    assert len({u for u, _ in intended}) > 3000


_NO_LOCAL = {"backend_only", "foreign_user", "invalid_local"}
_AT_RISK = {"missing_in_backend", "local_ahead", "diverged"}


def test_hostile_ids_are_planted(dataset) -> None:
    users = {u for u, _ in dataset.expected}
    tutorials = {t for _, t in dataset.expected}
    for needle in ("'", '"', "\\", "$$", ";", "<script>", "DROP TABLE", "\n", "🦄", "\u202e"):
        assert any(needle in u for u in users), needle
    assert any("'" in t and "$$" in t for t in tutorials)


# --------------------------------------------------------------------------- the files


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def test_exports_in_every_format(tmp_path: Path, dataset) -> None:
    paths = write_exports(tmp_path / "exports", dataset)
    assert all(p.is_file() for p in paths)
    names = [p.name for p in paths]
    for suffix in (".ndjson", ".jsonl", ".ndjson.gz", ".json.gz"):
        assert any(n.endswith(suffix) for n in names), suffix
    plain_json = [p for p in paths if p.name.endswith(".json") and "damaged" not in p.parts]
    shapes = {type(json.loads(p.read_text(encoding="utf-8"))).__name__ for p in plain_json}
    assert {"dict", "list"} <= shapes  # single exports and arrays
    assert max(len(p.relative_to(tmp_path / "exports").parts) for p in paths) >= 4  # nested
    assert b"\r\n" in next(_read(p) for p in paths if p.name.endswith(".jsonl"))

    holders: dict[str, int] = {}
    for path in (p for p in paths if "damaged" not in p.parts):
        holders[path.name] = _read(path).count(b'"userId": "p-duplicate-upload"')
    assert sum(1 for n in holders.values() if n) == 2  # uploaded twice


def test_damaged_files_are_damaged(tmp_path: Path, dataset) -> None:
    root = tmp_path / "exports"
    write_exports(root, dataset)
    damaged = root / "incoming" / "damaged"
    with pytest.raises(json.JSONDecodeError):
        json.loads((damaged / "broken-export.json").read_text(encoding="utf-8"))
    with pytest.raises(EOFError):
        gzip.decompress((damaged / "truncated.ndjson.gz").read_bytes())
    lines = (damaged / "broken-line.ndjson").read_text(encoding="utf-8").splitlines()
    assert [_parses(line) for line in lines] == [True, False, True]
    raw = (damaged / "latin1-line.jsonl").read_bytes().splitlines()
    assert [_utf8(line) for line in raw] == [True, False, True]
    status = json.loads((root / "incoming" / "collector-status.json").read_text(encoding="utf-8"))
    assert "userId" not in status


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --------------------------------------------------------------------------- the backend


def test_load_backend_rows_round_trip(database_url: str, dataset) -> None:
    rows = dataset.backend
    load_backend_rows(database_url, "demo schema", "tutorial progress", rows)
    load_backend_rows(database_url, "demo schema", "tutorial progress", rows)  # drop + create
    loaded = load_backend(database_url, "demo schema", "tutorial progress").frame
    assert len(loaded) == len(rows)
    assert set(zip(loaded["user_id"], loaded["tutorial_id"], strict=True)) == set(
        zip(rows["user_id"], rows["tutorial_id"], strict=True)
    )
    hostile = loaded[loaded["user_id"] == "line\nbreak\r\ttab"]
    assert hostile.empty  # missing_in_backend: no row on purpose
    for user in ("semi;colon; SELECT 1;", "p-bad-percent", "p-numbers-as-strings"):
        got = loaded[loaded["user_id"] == user].iloc[0]
        want = rows[rows["user_id"] == user].iloc[0]
        assert got["completed_chapters"] == tuple(sorted(want["completed_chapters"]))
        assert got["quiz_scores"] == want["quiz_scores"]
        assert got["completion_percentage"] == want["completion_percentage"]
        assert got["last_accessed_at"] == want["last_accessed_at"]
    with psycopg.connect(libpq_url(database_url)) as conn:
        future = conn.execute(
            'SELECT last_accessed_at FROM "demo schema"."tutorial progress" WHERE user_id = %s',
            ("p-bad-future",),
        ).fetchone()
    assert future is not None and future[0].year == 2099


# --------------------------------------------------------------------------- the demo


@pytest.mark.slow
def test_run_demo_end_to_end(tmp_path: Path) -> None:
    workdir, out = tmp_path / "work", tmp_path / "reports"
    result = run_demo(workdir, out, users=300)
    counts = result.summary["counts"]
    assert {s: counts[s] for s in ALL_STATUSES if counts[s] == 0} == {}
    assert 0.8 < result.summary["migration_success_rate"] < 0.95
    dataset = build_dataset(users=300)
    diff = pd.read_parquet(
        result.run_dir / "diff.parquet", columns=["user_id", "tutorial_id", "status"]
    )
    got = dict(
        zip(zip(diff["user_id"], diff["tutorial_id"], strict=True), diff["status"], strict=True)
    )
    wrong = {
        k: (want, got.get(k), dataset.notes.get(k, ""))
        for k, want in {**dataset.background, **dataset.expected}.items()
        if got.get(k) != want
    }
    assert wrong == {}
    assert set(got) == set(dataset.expected) | set(dataset.background)

    again = run_demo(workdir, out, users=300)
    assert again.run_dir != result.run_dir
    assert again.summary["counts"] == counts


def test_run_demo_keeps_a_foreign_exports_folder(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "mine.json").write_text("{}")
    from reconcile.errors import ConfigError

    with pytest.raises(ConfigError, match="--workdir"):
        run_demo(tmp_path, tmp_path / "out", users=1)
    assert (tmp_path / "exports" / "mine.json").exists()


def _demo(cwd: Path, *args: str) -> tuple[Path, dict]:
    """Run `reconcile demo ARGS` in ``cwd``; return the report it names and its summary."""
    done = subprocess.run(
        [sys.executable, "-m", "reconcile", "demo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    reports = re.findall(r"(\S+index\.html)", done.stdout)
    assert reports, done.stdout
    report = Path(reports[-1]) if Path(reports[-1]).is_absolute() else cwd / reports[-1]
    assert report.is_file()
    return report, json.loads((report.parent / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_readme_demo_command(tmp_path: Path) -> None:
    """`reconcile demo` exactly as the README shows it, in an empty folder."""
    report, summary = _demo(tmp_path)
    assert report.is_relative_to(tmp_path / "reports")
    assert 0.85 <= summary["migration_success_rate"] < 0.90  # the default 3000 users
    assert all(summary["counts"][s] > 0 for s in ALL_STATUSES)


@pytest.mark.slow
def test_demo_command_with_folders(tmp_path: Path) -> None:
    """`reconcile demo --workdir <tmp>/demo --out <tmp>/reports`, run from elsewhere."""
    (tmp_path / "cwd").mkdir()
    args = ["--workdir", str(tmp_path / "demo"), "--out", str(tmp_path / "reports")]
    report, _ = _demo(tmp_path / "cwd", *args, "--users", "300")
    assert report.is_relative_to(tmp_path / "reports")
    assert (tmp_path / "demo" / "exports" / "README.txt").is_file()
    assert list((tmp_path / "cwd").iterdir()) == []
