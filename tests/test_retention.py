"""Retention: `reconcile run --keep N` keeps the newest N run folders and all the history."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from reconcile.config import Config
from reconcile.outputs.folder import LATEST
from reconcile.pipeline import run_job
from tests import small_fixture


def test_keep_prunes_old_runs_and_never_the_history(database_url: str, tmp_path: Path) -> None:
    small_fixture.write_backend(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    out = tmp_path / "out"
    old = [f"20260101T00000{n}Z-000{n}" for n in range(3)]
    for run_id in old:
        result = run_job(
            database_url=database_url, exports=[exports], out=out, config=Config(), run_id=run_id
        )
        assert os.readlink(out / LATEST) == run_id == result.run_dir.name
    history = (out / "history.jsonl").read_text(encoding="utf-8")
    assert len(history.splitlines()) == 3

    done = subprocess.run(
        [sys.executable, "-m", "reconcile", "run", "--database-url", database_url,
         "--exports", str(exports), "--out", str(out), "--keep", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip

    assert done.returncode == 1, done.stderr
    newest = Path(done.stdout.strip())
    runs = sorted(p.name for p in out.iterdir() if p.is_dir() and not p.is_symlink())
    assert [r for r in runs if r[0].isdigit()] == [old[-1], newest.name]
    assert (out / LATEST).resolve() == newest.resolve()
    kept = (out / "history.jsonl").read_text(encoding="utf-8")
    assert kept.startswith(history) and len(kept.splitlines()) == 4  # every night remembered
    assert (out / "history-snapshot.parquet").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]
